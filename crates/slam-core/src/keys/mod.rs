//! The JWT key vault: `SLAM_setup_jwt`, `SLAM_remove_jwt` and the key listing.
//!
//! Each keypair is two files in `DATA_DIR/keys`: `{name}.pem` (the PKCS#8 private
//! key, the equivalent of a password) and `{name}.crt` (the self-signed certificate
//! a DBA uploads to the Salesforce External Client App). `material` makes and reads
//! the bytes; `vault` decides when files may be written and writes them so that a
//! crash or a concurrent setup never leaves a half-written or mismatched pair.

mod material;
mod name;
mod unlocked;
mod vault;

pub use material::{
    CertificateInfo, GeneratedKeypair, MaterialError, PBKDF2_ITERATIONS, RSA_BITS, SigningKey, UnlockError, generate,
    inspect_certificate, private_key_is_encrypted, unlock_private_key,
};
pub use name::{KeyName, KeyNameError, MAX_KEY_NAME_CHARS};
pub use unlocked::{UnlockTag, UnlockedKeys};
pub use vault::{
    CertificateState, KeyEntry, KeyVault, PrivateKeyState, RemoveOutcome, Replaced, Reservation, SetupOutcome,
    SetupParams,
};

use crate::data_dir::DataDirError;
use std::path::PathBuf;
use time::OffsetDateTime;

/// Certificate lifetimes we accept for `@cert_days`: at least a day, at most ten years.
pub const CERT_DAYS_RANGE: std::ops::RangeInclusive<i64> = 1..=3650;

/// The spec's default for `@cert_days`.
pub const DEFAULT_CERT_DAYS: i64 = 365;

/// Everything that can go wrong in the key vault.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `@key_name` is not usable as a file name. A name given by the caller is not
    /// echoed: a passphrase passed in the wrong position lands in `@key_name`.
    #[error("{} {reason}", if *from_host_name { format!("this machine's host name {name:?}") } else { "the `@key_name` given (not shown: it may be a secret passed in the wrong position)".to_string() })]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: KeyNameError,
        /// True when the name was not given and came from the host name.
        from_host_name: bool,
    },
    /// `@cert_days` out of range.
    #[error("`@cert_days` must be between {min} and {max}, not {0}", min = CERT_DAYS_RANGE.start(), max = CERT_DAYS_RANGE.end())]
    CertDays(i64),
    /// `@password` was the empty string.
    #[error("`@password` is empty")]
    EmptyPassphrase,
    /// The data directory is missing or unusable.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// A keypair with a still-valid certificate exists.
    #[error("a keypair named `{name}` already exists and its certificate is valid until {}", crate::clock::utc(*.not_after))]
    Exists {
        /// The key name.
        name: KeyName,
        /// When the existing certificate expires.
        not_after: OffsetDateTime,
    },
    /// A private key exists without its certificate.
    #[error("a private key named `{name}` exists without its certificate")]
    OrphanPrivateKey {
        /// The key name.
        name: KeyName,
    },
    /// The existing certificate cannot be read.
    #[error("the existing certificate {} cannot be read", path.display())]
    UnreadableCertificate {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        #[source]
        source: MaterialError,
    },
    /// No keypair by that name.
    #[error("no keypair named `{name}` exists in {}", dir.display())]
    NotFound {
        /// The key name.
        name: KeyName,
        /// The keys directory searched.
        dir: PathBuf,
        /// The names that do exist.
        known: Vec<String>,
    },
    /// Reading or writing a key file failed.
    #[error("{action} {} failed", path.display())]
    Io {
        /// What we were doing, e.g. "writing".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Generating the key or certificate failed.
    #[error(transparent)]
    Material(#[from] MaterialError),
    /// The private key could not be unlocked for signing.
    #[error("the private key of `{name}` cannot be used")]
    Unlock {
        /// The key name.
        name: KeyName,
        /// Why.
        #[source]
        source: UnlockError,
    },
    /// The certificate has expired: Salesforce's JWT flow would refuse it.
    #[error("the certificate of keypair `{name}` expired on {}", crate::clock::utc(*.not_after))]
    CertificateExpired {
        /// The key name.
        name: KeyName,
        /// When it expired.
        not_after: OffsetDateTime,
    },
}
