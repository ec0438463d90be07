//! The operations, as every transport invokes them.
//!
//! Each function validates its arguments, does the work through the module that
//! owns it, reports progress, warnings and results into an [`OutputSink`](slam_protocol::OutputSink), and
//! turns any failure into a [`SlamError`] with a stable number and a hint naming
//! what to change. Parameter names in messages are the T-SQL ones (`@key_name`),
//! the product's primary interface; the CLI's flags map one to one.

use crate::clock::Clock;
use crate::data_dir::DataDir;
use crate::keys::{KeyError, KeyVault};
use slam_protocol::{SlamError, Value};
use std::path::PathBuf;

mod connections;
mod dispatch;
mod errors;
mod keys;
mod login;
mod ping;

pub use connections::{
    AddConnectionArgs, add_connection, list_connections, remove_connection, settings, test_connection,
    use_connection_username,
};
pub use dispatch::dispatch;
pub(crate) use errors::key_error;
pub use errors::with_causes;
pub(crate) use keys::renewal_warning;
pub use keys::{SetupJwtArgs, list_keys, remove_jwt, setup_jwt};
pub use login::{
    AuthMethod, ConnectionArgs, ConnectionPlan, Credentials, LoginOutcome, SOAP_RETIREMENT_WARNING, login_and_test,
    test_login, validate,
};
pub use ping::ping;

/// Certificates expiring within this many days are called out.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Passphrases shorter than this get a warning (not an error: the DBA decides).
pub const SHORT_PASSPHRASE_CHARS: usize = 12;

/// What every operation needs from its environment.
pub struct Context<'a> {
    /// The SLAM data directory (must exist).
    pub data_dir: PathBuf,
    /// The time source.
    pub clock: &'a dyn Clock,
    /// How to reach Salesforce.
    pub http: crate::salesforce::HttpSettings,
    /// Who is asking, for SLAM_Log (OS user and program, or SQL login and database).
    pub caller: String,
    /// The worker's state kept between operations (HTTPS pool, token cache); `None`
    /// when the operation runs in-process (`slam --local`).
    pub resident: Option<std::sync::Arc<crate::resident::Resident>>,
    /// Where connections, the active one and the log are kept, chosen by the
    /// transport from its configuration.
    pub store: std::sync::Arc<dyn slam_store::StoreOpener>,
    /// The caller's database (the request's `caller.database`): where a SQL Server
    /// store finds the SLAM tables.
    pub database: Option<String>,
}

/// The embedded store for `data_dir`: `DATA_DIR/slam.db`.
pub fn embedded_store(data_dir: &std::path::Path) -> std::sync::Arc<dyn slam_store::StoreOpener> {
    std::sync::Arc::new(slam_store::SqliteOpener::new(data_dir.join("slam.db")))
}

impl Context<'_> {
    /// The worker's unlocked-key cache; `None` in-process.
    pub(crate) fn unlocked_keys(&self) -> Option<&crate::keys::UnlockedKeys> {
        self.resident.as_deref().and_then(|r| r.unlocked_keys())
    }

    pub(crate) fn vault(&self) -> Result<KeyVault, SlamError> {
        let data_dir = DataDir::open(&self.data_dir).map_err(|e| key_error(KeyError::DataDir(e)))?;
        KeyVault::open(&data_dir).map_err(key_error)
    }
}

/// A timestamp as a result-set value (RFC 3339 UTC text).
pub(crate) fn rfc3339(at: time::OffsetDateTime) -> Value {
    crate::clock::rfc3339(at).map_or(Value::Null, Value::Text)
}
