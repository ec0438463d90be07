//! Little helpers to read and write TDS primitive encodings (little-endian integers, UTF-16LE
//! strings with 1- or 2-byte character counts) without panicking on short input: every read
//! of client bytes is checked, because a malformed request must become a TDS error.

/// A read past the end of the input (the message is truncated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Truncated;

/// A cursor over client bytes.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        let end = self.pos.checked_add(n).ok_or(Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16_le(&mut self) -> Result<u16, Truncated> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// `n` UTF-16LE code units (lossy: SQL Server stores UCS-2 and accepts lone surrogates).
    pub(crate) fn utf16(&mut self, units: usize) -> Result<String, Truncated> {
        let bytes = self.bytes(units.checked_mul(2).ok_or(Truncated)?)?;
        Ok(utf16_lossy(bytes))
    }

    /// B_VARCHAR: a 1-byte character count, then UTF-16LE.
    pub(crate) fn b_varchar(&mut self) -> Result<String, Truncated> {
        let units = usize::from(self.u8()?);
        self.utf16(units)
    }
}

/// Decodes UTF-16LE bytes (an odd trailing byte is ignored by the callers' length checks).
pub(crate) fn utf16_lossy(bytes: &[u8]) -> String {
    let units = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

/// Appends UTF-16LE code units.
pub(crate) fn put_utf16(out: &mut Vec<u8>, s: &str) {
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// Appends a B_VARCHAR (truncated to 255 code units, which only server-chosen names reach).
pub(crate) fn put_b_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(255).collect();
    out.push(u8::try_from(units.len()).unwrap_or(u8::MAX));
    for unit in units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// Appends a US_VARCHAR (truncated to 65535 code units).
pub(crate) fn put_us_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(usize::from(u16::MAX)).collect();
    out.extend_from_slice(&u16::try_from(units.len()).unwrap_or(u16::MAX).to_le_bytes());
    for unit in units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_checked() {
        let mut r = Reader::new(&[1, 2, 0, 3]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16_le(), Ok(2));
        assert_eq!(r.u32_le(), Err(Truncated));
        assert_eq!(r.remaining(), 1);
        let mut out = Vec::new();
        put_b_varchar(&mut out, "hé");
        assert_eq!(Reader::new(&out).b_varchar(), Ok("hé".to_owned()));
    }
}
