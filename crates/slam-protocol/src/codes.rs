//! Stable SLAM error numbers: the one place they are defined.
//!
//! A number, once shipped, never changes meaning: DBAs put them in `IF @rc = 50105`
//! checks and in runbooks. Ranges follow the design: 500xx general, 501xx keys,
//! 502xx connections, 503xx Salesforce, 504xx worker and transport. The catalogue in
//! `docs/errors.md` must list every code; a test in this crate enforces that.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $number:literal, $code:literal; )*) => {
        /// A stable SLAM error: a number for scripts and a symbolic code for people.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(into = "u32", try_from = "u32")]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in number order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The stable number (raised by the T-SQL side as the error state text and
            /// returned as the procedure's return code).
            pub const fn number(self) -> u32 {
                match self { $( ErrorCode::$variant => $number, )* }
            }

            /// The stable symbolic name, e.g. `SLAM_KEY_EXISTS`.
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The code with this number, if any.
            pub fn from_number(number: u32) -> Option<Self> {
                match number { $( $number => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

error_codes! {
    /// A bug or an unexpected condition inside SLAM; the message says what.
    Internal = 50001, "SLAM_INTERNAL";
    /// A parameter is missing, malformed or out of range.
    InvalidArgument = 50002, "SLAM_INVALID_ARGUMENT";
    /// The SLAM data directory does not exist.
    DataDirMissing = 50003, "SLAM_DATA_DIR_MISSING";
    /// The SLAM data directory exists but cannot be used (not a directory, not writable).
    DataDirUnusable = 50004, "SLAM_DATA_DIR_UNUSABLE";
    /// `@key_name` is not a safe file name.
    KeyNameInvalid = 50101, "SLAM_KEY_NAME_INVALID";
    /// `@cert_days` is outside 1..=3650.
    CertDaysInvalid = 50102, "SLAM_CERT_DAYS_INVALID";
    /// `@password` was given but empty.
    KeyPasswordEmpty = 50103, "SLAM_KEY_PASSWORD_EMPTY";
    /// A keypair with a still-valid certificate exists and `@force` was not set.
    KeyExists = 50104, "SLAM_KEY_EXISTS";
    /// No keypair with that name exists.
    KeyNotFound = 50105, "SLAM_KEY_NOT_FOUND";
    /// A key file could not be read or written.
    KeyFileIo = 50106, "SLAM_KEY_FILE_IO";
    /// A key file exists but is not a valid key or certificate.
    KeyFileCorrupt = 50107, "SLAM_KEY_FILE_CORRUPT";
    /// Generating the key, encrypting it or signing the certificate failed.
    KeyGenerationFailed = 50108, "SLAM_KEY_GENERATION_FAILED";
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> u32 {
        code.number()
    }
}

impl TryFrom<u32> for ErrorCode {
    type Error = String;
    fn try_from(number: u32) -> Result<Self, String> {
        ErrorCode::from_number(number).ok_or_else(|| format!("unknown SLAM error number {number}"))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number(), self.as_str())
    }
}

/// A failure as the user sees it: what went wrong and what to do about it.
///
/// Built at the edge of `slam-core` from each crate's own error enum; never
/// contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlamError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, naming the parameter or file involved.
    pub message: String,
    /// What to do about it, when there is something to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl SlamError {
    /// An error with no hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds the line telling the user what to do.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for SlamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SlamError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn numbers_and_codes_are_unique_and_round_trip() {
        let mut numbers = HashSet::new();
        let mut names = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(
                numbers.insert(code.number()),
                "duplicate number {}",
                code.number()
            );
            assert!(
                names.insert(code.as_str()),
                "duplicate code {}",
                code.as_str()
            );
            assert_eq!(ErrorCode::from_number(code.number()), Some(*code));
            assert!(
                code.number() >= 50000,
                "SQL Server reserves numbers below 50000"
            );
            assert!(code.as_str().starts_with("SLAM_"));
        }
    }

    #[test]
    fn catalogue_in_docs_lists_every_code() {
        let catalogue = include_str!("../../../docs/errors.md");
        for code in ErrorCode::ALL {
            let row = format!("| {} | `{}` |", code.number(), code.as_str());
            assert!(
                catalogue.contains(&row),
                "docs/errors.md lacks the row starting `{row}`"
            );
        }
    }

    #[test]
    fn serialises_as_number() {
        let json = serde_json::to_string(&ErrorCode::KeyExists).unwrap();
        assert_eq!(json, "50104");
        let back: ErrorCode = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ErrorCode::KeyExists);
        assert!(serde_json::from_str::<ErrorCode>("49999").is_err());
    }

    #[test]
    fn display_puts_hint_on_its_own_line() {
        let e = SlamError::new(ErrorCode::KeyNotFound, "no keypair named `x`")
            .with_hint("run `slam list-keys`");
        assert_eq!(
            e.to_string(),
            "no keypair named `x`\nhint: run `slam list-keys`"
        );
    }
}
