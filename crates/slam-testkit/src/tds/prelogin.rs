//! PRELOGIN (MS-TDS 2.2.6.5): the first message of every connection, where client and server
//! exchange versions and agree on encryption before the TLS handshake and LOGIN7.

use super::wire::Reader;

/// `ENCRYPTION` option values.
pub(crate) mod encrypt {
    pub(crate) const OFF: u8 = 0x00;
    pub(crate) const ON: u8 = 0x01;
    pub(crate) const NOT_SUP: u8 = 0x02;
    pub(crate) const REQ: u8 = 0x03;
}

const VERSION: u8 = 0x00;
const ENCRYPTION: u8 = 0x01;
const INSTOPT: u8 = 0x02;
const THREADID: u8 = 0x03;
const MARS: u8 = 0x04;
const TERMINATOR: u8 = 0xFF;

/// The version the fake claims: SQL Server 2022 RTM (16.0.1000).
pub(crate) const SERVER_VERSION: [u8; 4] = [16, 0, 0x03, 0xE8];

/// What the fake needs from the client's PRELOGIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientPrelogin {
    /// The `ENCRYPTION` byte without the client-certificate bit (absent means `OFF`).
    pub encryption: u8,
    pub instance: Option<String>,
    pub mars: bool,
}

/// Parses the option table. Unknown options are skipped (SQL Server ignores them too).
pub(crate) fn parse(payload: &[u8]) -> Result<ClientPrelogin, String> {
    let mut table = Reader::new(payload);
    let mut out = ClientPrelogin { encryption: encrypt::OFF, instance: None, mars: false };
    loop {
        let token = table.u8().map_err(|_| "PRELOGIN option table has no terminator".to_owned())?;
        if token == TERMINATOR {
            return Ok(out);
        }
        let (offset, len) = match (table.bytes(2), table.bytes(2)) {
            (Ok(o), Ok(l)) => {
                (usize::from(u16::from_be_bytes([o[0], o[1]])), usize::from(u16::from_be_bytes([l[0], l[1]])))
            }
            _ => return Err("PRELOGIN option table truncated".to_owned()),
        };
        let data = payload
            .get(offset..offset.saturating_add(len))
            .ok_or_else(|| format!("PRELOGIN option 0x{token:02X} points outside the message"))?;
        match token {
            ENCRYPTION => {
                let byte = *data.first().ok_or("PRELOGIN ENCRYPTION option is empty")?;
                out.encryption = byte & 0x0F;
            }
            INSTOPT => {
                let name: Vec<u8> = data.iter().copied().take_while(|&b| b != 0).collect();
                if !name.is_empty() {
                    out.instance = Some(String::from_utf8_lossy(&name).into_owned());
                }
            }
            MARS => out.mars = data.first().is_some_and(|&b| b != 0),
            _ => {}
        }
    }
}

/// Builds the server's answer: VERSION, ENCRYPTION, INSTOPT (0x00: the instance is valid),
/// THREADID (empty, as SQL Server sends it) and MARS (always off).
pub(crate) fn response(encryption: u8) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&SERVER_VERSION);
    data.extend_from_slice(&[0, 0]); // sub-build
    let options: [(u8, &[u8]); 5] =
        [(VERSION, &data[..]), (ENCRYPTION, &[encryption]), (INSTOPT, &[0x00]), (THREADID, &[]), (MARS, &[0x00])];
    let mut offset = options.len() * 5 + 1;
    let mut table = Vec::new();
    let mut body = Vec::new();
    for (token, value) in options {
        table.push(token);
        table.extend_from_slice(&u16::try_from(offset).unwrap_or(u16::MAX).to_be_bytes());
        table.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        body.extend_from_slice(value);
        offset += value.len();
    }
    table.push(TERMINATOR);
    table.extend(body);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_own_response_shape() {
        let resp = response(encrypt::ON);
        let parsed = parse(&resp).unwrap();
        assert_eq!(parsed, ClientPrelogin { encryption: encrypt::ON, instance: None, mars: false });
        assert!(parse(&[0x01, 0x00]).is_err());
        assert!(parse(&[0x01, 0x00, 0x40, 0x00, 0x01, 0xFF]).is_err());
    }
}
