//! Secrets (passwords, security tokens, key passphrases) travel as [`Secret`].
//!
//! `secrecy`'s `SecretString` has a redacting `Debug`, no `Display`, and zeroes its
//! memory on drop, so a secret cannot end up in a log line or an error message by
//! accident; reading it needs an explicit `expose_secret()`, easy to audit with grep.

pub use secrecy::ExposeSecret;

/// A string that must never be logged, echoed or stored in clear.
pub type Secret = secrecy::SecretString;

/// Wraps a string as a [`Secret`].
pub fn secret(value: impl Into<String>) -> Secret {
    Secret::from(value.into())
}
