//! LOGIN7 (MS-TDS 2.2.6.4): the fixed header, then offset/length pairs pointing at UTF-16LE
//! strings. The password is never decoded: only its presence is kept, so it cannot leak into
//! recorded logins, panics or logs.

use super::wire::utf16_lossy;

/// TDS 7.4, what SQL Server 2012 and later speak.
pub(crate) const TDS_74: u32 = 0x7400_0004;
/// OptionFlags2 `fIntSecurity`: the client asks for SSPI (integrated) authentication.
const INTEGRATED_SECURITY: u8 = 0x80;
/// Length of the fixed part, up to and including `cbSSPILong`.
const FIXED_LEN: usize = 94;

/// A parsed LOGIN7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Login7 {
    pub tds_version: u32,
    pub packet_size: u32,
    pub integrated: bool,
    pub host_name: String,
    pub user: String,
    pub password_given: bool,
    pub app_name: String,
    pub server_name: String,
    pub database: String,
}

pub(crate) fn parse(payload: &[u8]) -> Result<Login7, String> {
    if payload.len() < FIXED_LEN {
        return Err(format!("LOGIN7 is {} bytes, shorter than its fixed part", payload.len()));
    }
    let u32_at = |at: usize| u32::from_le_bytes([payload[at], payload[at + 1], payload[at + 2], payload[at + 3]]);
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([payload[at], payload[at + 1]]));
    let declared = usize::try_from(u32_at(0)).unwrap_or(usize::MAX);
    if declared > payload.len() || declared < FIXED_LEN {
        return Err(format!("LOGIN7 declares {declared} bytes but carries {}", payload.len()));
    }
    // Strings: offset (bytes) and length (characters).
    let string = |at: usize, what: &str| -> Result<String, String> {
        let offset = u16_at(at);
        let chars = u16_at(at + 2);
        payload
            .get(offset..offset + chars * 2)
            .map(utf16_lossy)
            .ok_or_else(|| format!("LOGIN7 {what} points outside the message"))
    };
    let password_chars = u16_at(46);
    if payload.get(u16_at(44)..u16_at(44) + password_chars * 2).is_none() {
        return Err("LOGIN7 password points outside the message".to_owned());
    }
    Ok(Login7 {
        tds_version: u32_at(4),
        packet_size: u32_at(8),
        integrated: payload[25] & INTEGRATED_SECURITY != 0,
        host_name: string(36, "host name")?,
        user: string(40, "user name")?,
        password_given: password_chars > 0,
        app_name: string(48, "app name")?,
        server_name: string(52, "server name")?,
        database: string(68, "database")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login7(user: &str, password: &str, db: &str, integrated: bool) -> Vec<u8> {
        let fields = ["host", user, password, "app", "srv", "", "", "", db];
        let mut fixed = vec![0u8; FIXED_LEN];
        fixed[4..8].copy_from_slice(&TDS_74.to_le_bytes());
        fixed[8..12].copy_from_slice(&4096u32.to_le_bytes());
        fixed[25] = if integrated { INTEGRATED_SECURITY } else { 0 };
        let mut data = Vec::new();
        for (i, value) in fields.iter().enumerate() {
            let at = 36 + i * 4;
            let offset = u16::try_from(FIXED_LEN + data.len()).unwrap();
            fixed[at..at + 2].copy_from_slice(&offset.to_le_bytes());
            let chars = u16::try_from(value.encode_utf16().count()).unwrap();
            fixed[at + 2..at + 4].copy_from_slice(&chars.to_le_bytes());
            super::super::wire::put_utf16(&mut data, value);
        }
        fixed.extend(data);
        let len = u32::try_from(fixed.len()).unwrap();
        fixed[0..4].copy_from_slice(&len.to_le_bytes());
        fixed
    }

    #[test]
    fn parses_fields_without_the_password() {
        let parsed = parse(&login7("sa", "secret", "slam", false)).unwrap();
        assert_eq!(parsed.user, "sa");
        assert!(parsed.password_given);
        assert_eq!((parsed.app_name.as_str(), parsed.database.as_str()), ("app", "slam"));
        assert_eq!((parsed.host_name.as_str(), parsed.server_name.as_str()), ("host", "srv"));
        assert!(!format!("{parsed:?}").contains("secret"));
        let sspi = parse(&login7("", "", "", true)).unwrap();
        assert!(sspi.integrated && !sspi.password_given);
        let mut broken = login7("sa", "x", "db", false);
        broken.truncate(FIXED_LEN + 2);
        assert!(parse(&broken).is_err());
    }
}
