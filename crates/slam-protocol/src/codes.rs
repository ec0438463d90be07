//! Stable SLAM error numbers: the one place they are defined.
//!
//! A number, once shipped, never changes meaning: DBAs put them in `IF @rc = 50105`
//! checks and in runbooks. Ranges follow the design: 500xx general, 501xx keys,
//! 502xx connections, 503xx Salesforce, 504xx worker and transport, 506xx the T-SQL
//! procedures and the instance. The catalogue in
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
            /// Every code, in the order they are declared (grouped by range, not sorted).
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
    /// The SLAM store (SQLite file or database) failed.
    StoreFailed = 50005, "SLAM_STORE_FAILED";
    /// Stored secrets cannot be decrypted (master key missing, replaced, or from another machine).
    SecretsUnreadable = 50006, "SLAM_SECRETS_UNREADABLE";
    /// The data directory, or a file in it, may be changed by an account other
    /// than the worker's, SYSTEM/root or Administrators.
    DataDirInsecure = 50007, "SLAM_DATA_DIR_INSECURE";
    /// Another transaction held the SLAM tables too long; nothing was changed.
    StoreLocked = 50008, "SLAM_STORE_LOCKED";
    /// The SLAM tables are not in the caller's database.
    NotInstalled = 50009, "SLAM_NOT_INSTALLED";
    /// `slam install-sql`: a script could not run to its end.
    InstallFailed = 50010, "SLAM_INSTALL_FAILED";
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
    /// The private key is encrypted and `@key_password` was not given.
    KeyPasswordRequired = 50109, "SLAM_KEY_PASSWORD_REQUIRED";
    /// `@key_password` does not decrypt the private key.
    KeyPasswordWrong = 50110, "SLAM_KEY_PASSWORD_WRONG";
    /// The private key does not belong to the certificate beside it.
    KeyCertificateMismatch = 50111, "SLAM_KEY_CERTIFICATE_MISMATCH";
    /// The keypair's certificate has expired, so Salesforce would refuse it.
    KeyCertificateExpired = 50112, "SLAM_KEY_CERTIFICATE_EXPIRED";
    /// `@domain` is not a Salesforce login domain.
    DomainInvalid = 50201, "SLAM_DOMAIN_INVALID";
    /// `@api_version` is outside the supported range.
    ApiVersionInvalid = 50202, "SLAM_API_VERSION_INVALID";
    /// A parameter the chosen `@auth_method` needs is missing.
    ParameterMissing = 50203, "SLAM_PARAMETER_MISSING";
    /// `@auth_method` is not `jwt_bearer` or `security_token`.
    AuthMethodInvalid = 50204, "SLAM_AUTH_METHOD_INVALID";
    /// Security-token login asked for at API 65.0 or later, where Salesforce removed SOAP `login()`.
    SoapLoginRetiredVersion = 50205, "SLAM_SOAP_LOGIN_RETIRED_VERSION";
    /// No connection is stored for that username.
    ConnectionNotFound = 50206, "SLAM_CONNECTION_NOT_FOUND";
    /// The request names an operation this worker does not know.
    UnknownOperation = 50401, "SLAM_UNKNOWN_OPERATION";
    /// The request speaks a protocol version this worker does not.
    ProtocolVersion = 50402, "SLAM_PROTOCOL_VERSION";
    /// An argument has the wrong JSON type (e.g. text where a number belongs).
    ArgumentType = 50403, "SLAM_ARGUMENT_TYPE";
    /// The connecting account is not among the worker's allowed clients.
    PeerNotAllowed = 50404, "SLAM_PEER_NOT_ALLOWED";
    /// The request frame was oversized, truncated or not valid JSON.
    BadFrame = 50405, "SLAM_BAD_FRAME";
    /// The request did not finish within the worker's time limit.
    RequestTimeout = 50406, "SLAM_REQUEST_TIMEOUT";
    /// No SLAM worker listens where the client looked.
    WorkerUnavailable = 50407, "SLAM_WORKER_UNAVAILABLE";
    /// The worker closed the connection before its answer was complete.
    WorkerConnectionLost = 50408, "SLAM_WORKER_CONNECTION_LOST";
    /// The worker's configuration file (or a flag overriding it) is invalid.
    ConfigInvalid = 50409, "SLAM_CONFIG_INVALID";
    /// `xp_slam` was called without a usable `@request` (missing, NULL, wrong type, bad text, too large).
    XpRequestInvalid = 50410, "SLAM_XP_REQUEST_INVALID";
    /// The query was cancelled (attention, KILL) while `xp_slam` waited for the worker.
    XpCancelled = 50411, "SLAM_XP_CANCELLED";
    /// The worker did not answer `xp_slam` within its deadline.
    XpTimeout = 50412, "SLAM_XP_TIMEOUT";
    /// The worker's answer to `xp_slam` was not a valid SLAM answer.
    XpBadAnswer = 50413, "SLAM_XP_BAD_ANSWER";
    /// Whatever serves the worker's pipe runs as an account the client does not
    /// trust; nothing was sent to it.
    WorkerNotTrusted = 50414, "SLAM_WORKER_NOT_TRUSTED";
    /// Salesforce could not be reached (DNS, connection refused, proxy).
    SalesforceUnreachable = 50301, "SLAM_SF_UNREACHABLE";
    /// The TLS certificate presented for Salesforce was not trusted.
    SalesforceTlsUntrusted = 50302, "SLAM_SF_TLS_UNTRUSTED";
    /// Salesforce did not answer in time.
    SalesforceTimeout = 50303, "SLAM_SF_TIMEOUT";
    /// Salesforce answered 5xx, also after retries.
    SalesforceUnavailable = 50304, "SLAM_SF_UNAVAILABLE";
    /// The answer was not what Salesforce sends (often a proxy's page).
    SalesforceUnexpectedResponse = 50305, "SLAM_SF_UNEXPECTED_RESPONSE";
    /// `@consumer_key` is not known to Salesforce.
    JwtUnknownConsumerKey = 50310, "SLAM_JWT_UNKNOWN_CONSUMER_KEY";
    /// The External Client App is not installed in this org.
    JwtAppNotInstalled = 50311, "SLAM_JWT_APP_NOT_INSTALLED";
    /// The user is not pre-authorized for the app (or host and audience do not match the org).
    JwtUserNotApproved = 50312, "SLAM_JWT_USER_NOT_APPROVED";
    /// Salesforce rejected the signed assertion: the certificate in the app is not this key's.
    JwtInvalidAssertion = 50313, "SLAM_JWT_INVALID_ASSERTION";
    /// Salesforce rejected the JWT audience.
    JwtAudienceInvalid = 50314, "SLAM_JWT_AUDIENCE_INVALID";
    /// Salesforce considers the JWT expired: this server's clock is off.
    ClockSkew = 50315, "SLAM_CLOCK_SKEW";
    /// The Salesforce user is inactive.
    UserInactive = 50316, "SLAM_SF_USER_INACTIVE";
    /// Username, password or security token is wrong (or the user is locked out).
    InvalidLogin = 50320, "SLAM_SF_INVALID_LOGIN";
    /// The password was accepted only without a security token; one is required.
    SecurityTokenRequired = 50321, "SLAM_SF_SECURITY_TOKEN_REQUIRED";
    /// SOAP API `login()` is disabled in this org.
    SoapLoginDisabled = 50322, "SLAM_SF_SOAP_LOGIN_DISABLED";
    /// Salesforce says SOAP `login()` is not available at this API version.
    SoapLoginUnavailable = 50323, "SLAM_SF_SOAP_LOGIN_UNAVAILABLE";
    /// The API is not enabled for the org or the user.
    ApiDisabled = 50324, "SLAM_SF_API_DISABLED";
    /// The user lacks the `Use Any API Auth` permission SOAP `login()` requires.
    UseAnyApiAuthMissing = 50325, "SLAM_SF_USE_ANY_API_AUTH_MISSING";
    /// The user's password has expired.
    PasswordExpired = 50326, "SLAM_SF_PASSWORD_EXPIRED";
    /// Too many logins for this user in the last hour.
    LoginRateExceeded = 50327, "SLAM_SF_LOGIN_RATE_EXCEEDED";
    /// The org does not offer the requested API version.
    ApiVersionUnsupported = 50328, "SLAM_SF_API_VERSION_UNSUPPORTED";
    /// The session from the login was rejected by the connection test.
    SessionInvalid = 50329, "SLAM_SF_SESSION_INVALID";
    /// Salesforce refused the login for another reason (its code and text are in the message).
    LoginFailed = 50330, "SLAM_SF_LOGIN_FAILED";
    /// A SLAM procedure's own parameter checks failed (raised by the T-SQL).
    TsqlParametersInvalid = 50601, "SLAM_TSQL_PARAMETERS_INVALID";
    /// A SLAM procedure that changes state was called inside an open transaction.
    TsqlInTransaction = 50602, "SLAM_TSQL_IN_TRANSACTION";
    /// `master.dbo.xp_slam` is not registered on this instance.
    XpNotInstalled = 50603, "SLAM_XP_NOT_INSTALLED";
    /// The SLAM procedures may not run `master.dbo.xp_slam` (their signature is missing).
    XpNotPermitted = 50604, "SLAM_XP_NOT_PERMITTED";
    /// `master.dbo.xp_slam` failed without a SLAM error number.
    XpFailed = 50605, "SLAM_XP_FAILED";
    /// The instance cannot run SLAM (version, platform or edition).
    InstanceUnsupported = 50606, "SLAM_INSTANCE_UNSUPPORTED";
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
        Self { code, message: message.into(), hint: None }
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
            assert!(numbers.insert(code.number()), "duplicate number {}", code.number());
            assert!(names.insert(code.as_str()), "duplicate code {}", code.as_str());
            assert_eq!(ErrorCode::from_number(code.number()), Some(*code));
            assert!(code.number() >= 50000, "SQL Server reserves numbers below 50000");
            assert!(code.as_str().starts_with("SLAM_"));
        }
    }

    #[test]
    fn catalogue_in_docs_lists_every_code() {
        let catalogue = include_str!("../../../docs/errors.md");
        for code in ErrorCode::ALL {
            let row = format!("| {} | `{}` |", code.number(), code.as_str());
            assert!(catalogue.contains(&row), "docs/errors.md lacks the row starting `{row}`");
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
        let e = SlamError::new(ErrorCode::KeyNotFound, "no keypair named `x`").with_hint("run `slam list-keys`");
        assert_eq!(e.to_string(), "no keypair named `x`\nhint: run `slam list-keys`");
    }
}
