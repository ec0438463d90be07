//! Key names: the `@key_name` parameter, which becomes a file name.
//!
//! A key name is joined to the keys directory and quoted into T-SQL in hints, so
//! only `[A-Za-z0-9._-]` is accepted, and anything Windows would treat specially is
//! refused before any file is touched.

use std::fmt;

/// Longest accepted key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 64;

/// Device names Windows resolves in every directory, with or without an extension.
const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹",
    "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²",
    "LPT³", "CONIN$", "CONOUT$",
];

/// Characters Windows forbids in file names (besides control characters).
const WINDOWS_FORBIDDEN: &[char] = &['<', '>', ':', '"', '/', '\\', '|', '?', '*'];

/// Why a key name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyNameError {
    /// Empty or only white space.
    #[error("is empty")]
    Empty,
    /// Longer than [`MAX_KEY_NAME_CHARS`].
    #[error("is {0} characters long; the limit is {MAX_KEY_NAME_CHARS}")]
    TooLong(usize),
    /// Contains a path separator or a character Windows forbids in file names.
    #[error("contains `{0}`, which is not allowed in a file name")]
    ForbiddenChar(char),
    /// Contains a control character (shown as its code point).
    #[error("contains the control character U+{0:04X}")]
    ControlChar(u32),
    /// `.`/`..` or a name that starts with `.` (hidden, and our staging prefix).
    #[error("starts with `.`")]
    LeadingDot,
    /// Ends with `.` or a space, which Windows silently strips.
    #[error("ends with `.` or a space, which Windows would silently drop")]
    TrailingDotOrSpace,
    /// A Windows device name such as `CON` or `COM1`.
    #[error("is the Windows device name `{0}`")]
    Reserved(String),
}

/// A validated key name, safe to use as a file stem on Windows and Unix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyName(String);

impl KeyName {
    /// Validates `name`.
    pub fn parse(name: &str) -> Result<Self, KeyNameError> {
        if name.trim().is_empty() {
            return Err(KeyNameError::Empty);
        }
        let chars = name.chars().count();
        if chars > MAX_KEY_NAME_CHARS {
            return Err(KeyNameError::TooLong(chars));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(KeyNameError::ControlChar(u32::from(c)));
        }
        if let Some(c) = name.chars().find(|c| WINDOWS_FORBIDDEN.contains(c)) {
            return Err(KeyNameError::ForbiddenChar(c));
        }
        if name.starts_with('.') {
            return Err(KeyNameError::LeadingDot);
        }
        if name.ends_with('.') || name.ends_with(' ') {
            return Err(KeyNameError::TrailingDotOrSpace);
        }
        if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
            return Err(KeyNameError::ForbiddenChar(c));
        }
        // `NUL.txt` and `nul .pem` are the device too: compare the part before the
        // first dot, trimmed, case-insensitively.
        let stem = name.split('.').next().unwrap_or(name).trim_end();
        if let Some(reserved) = WINDOWS_RESERVED.iter().find(|r| r.eq_ignore_ascii_case(stem)) {
            return Err(KeyNameError::Reserved((*reserved).to_string()));
        }
        Ok(Self(name.to_string()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The spec's default when `@key_name` is NULL: this machine's host name.
    /// Returns the raw host name so the caller can report it if it is unusable.
    pub fn host_default() -> String {
        gethostname::gethostname().to_string_lossy().into_owned()
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for ok in ["acme-prod", "acme_full", "nto-partial", "SQLPROD01", "a", "acme.prod", &"x".repeat(64)] {
            assert_eq!(KeyName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn escapes_and_specials_are_refused() {
        let cases: &[(&str, KeyNameError)] = &[
            ("", KeyNameError::Empty),
            ("   ", KeyNameError::Empty),
            ("../etc/passwd", KeyNameError::ForbiddenChar('/')),
            ("..", KeyNameError::LeadingDot),
            (".hidden", KeyNameError::LeadingDot),
            ("a\\b", KeyNameError::ForbiddenChar('\\')),
            ("C:evil", KeyNameError::ForbiddenChar(':')),
            ("a*b", KeyNameError::ForbiddenChar('*')),
            ("tab\there", KeyNameError::ControlChar(9)),
            ("nl\n", KeyNameError::ControlChar(10)),
            ("trail.", KeyNameError::TrailingDotOrSpace),
            ("trail ", KeyNameError::TrailingDotOrSpace),
            ("CON", KeyNameError::Reserved("CON".into())),
            ("nul", KeyNameError::Reserved("NUL".into())),
            ("com1.pem", KeyNameError::Reserved("COM1".into())),
            ("Lpt9", KeyNameError::Reserved("LPT9".into())),
        ];
        for (name, expected) in cases {
            assert_eq!(KeyName::parse(name).as_ref(), Err(expected), "{name:?}");
        }
        assert_eq!(KeyName::parse(&"x".repeat(65)), Err(KeyNameError::TooLong(65)));
        // Letters outside ASCII, spaces and quotes would break T-SQL hints and file tools.
        assert_eq!(KeyName::parse("ÄcmeÜ"), Err(KeyNameError::ForbiddenChar('Ä')));
        assert_eq!(KeyName::parse("o'brien"), Err(KeyNameError::ForbiddenChar('\'')));
        assert_eq!(KeyName::parse("acme prod"), Err(KeyNameError::ForbiddenChar(' ')));
    }

    #[test]
    fn names_that_merely_contain_device_names_pass() {
        for ok in ["console", "com10", "nullable", "acme-con"] {
            assert!(KeyName::parse(ok).is_ok(), "{ok}");
        }
    }
}
