//! Persistent state: `SLAM_Settings`, `SLAM_Connections` and `SLAM_Log`.
//!
//! The [`Store`] trait is what the operations see; the tables are the ones the T-SQL
//! side has. A transport chooses the backend once, as a [`StoreOpener`];
//! [`SqliteStore`] is the embedded default (`DATA_DIR/slam.db`), [`SqlServerStore`]
//! keeps the tables in the caller's own database (module [`mssql`]). Every backend must
//! pass the same behaviour suite, `conformance` (feature `test-util`), and reports
//! failures as the same [`StoreError`]s, its own error kept only as the cause.
//! Every statement SQLite runs is in `sqlite_sql.rs`, every one SQL Server runs in
//! `mssql/sql.rs`.
//!
//! The trait is synchronous: operations run on a blocking thread (the worker) or in
//! a plain process (the CLI), and a backend with an async driver runs it on the
//! caller's runtime from there, as the Salesforce calls already do.
//!
//! Secrets never reach this crate in clear: the connection record carries them
//! already sealed (opaque bytes), so a store on its own reveals nothing.
//!
//! Every mutating method is one transaction that also appends its log entry, so a
//! crash or error midway leaves the previous state and log intact.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
pub mod mssql;
mod sqlite;
mod sqlite_sql;

pub use mssql::{SqlServerOpener, SqlServerSettings, SqlServerStore};
pub use sqlite::{SqliteOpener, SqliteStore};

/// One row of `SLAM_Connections`. Secret columns hold sealed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionRecord {
    /// Salesforce username (unique, case-insensitive).
    pub username: String,
    /// `jwt_bearer` or `security_token`.
    pub auth_method: String,
    /// `login`, `test` or a My Domain (`acme.my`).
    pub domain: String,
    /// The optional alias.
    pub environment_name: Option<String>,
    /// Salesforce API version.
    pub api_version: i64,
    /// Keypair name (JWT).
    pub key_name: Option<String>,
    /// External Client App consumer key (JWT).
    pub consumer_key: Option<String>,
    /// Sealed Salesforce password (security token).
    pub password_sealed: Option<Vec<u8>>,
    /// Sealed security token.
    pub token_sealed: Option<Vec<u8>>,
    /// Sealed key passphrase (JWT).
    pub key_password_sealed: Option<Vec<u8>>,
    /// Instance URL from the last successful login.
    pub instance_url: Option<String>,
    /// Org id from the last successful login.
    pub org_id: Option<String>,
    /// When the row was first stored (RFC 3339 UTC).
    pub created_at: String,
    /// When the row was last replaced.
    pub updated_at: String,
    /// When the connection was last tested.
    pub last_test_at: Option<String>,
    /// Whether the last test passed.
    pub last_test_ok: Option<bool>,
    /// The last test's message (error text or summary; never a secret).
    pub last_test_message: Option<String>,
}

/// One row of `SLAM_Log`: who did what when, and how it ended. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogEntry {
    /// RFC 3339 UTC.
    pub at: String,
    /// Operation name, e.g. `add_connection`.
    pub operation: String,
    /// The Salesforce username concerned, if any.
    pub username: Option<String>,
    /// Who asked (OS user or SQL login, and the program).
    pub caller: String,
    /// `ok` or `error`.
    pub outcome: String,
    /// SLAM error number on failure.
    pub error_number: Option<i64>,
    /// A short description.
    pub message: String,
}

/// What `save_and_activate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveOutcome {
    /// A connection for the username existed and was replaced.
    pub replaced: bool,
}

/// What `remove` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoveOutcome {
    /// The removed connection was the active one; no connection is active now.
    pub was_active: bool,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection for that username.
    #[error("no connection is stored for `{username}`")]
    NotFound {
        /// The username asked for.
        username: String,
        /// The usernames that are stored.
        known: Vec<String>,
    },
    /// The store could not be opened or created.
    #[error("the SLAM store {store} cannot be opened")]
    Open {
        /// The store (a file path, or `SERVER/DATABASE`).
        store: String,
        /// Why, in the backend's words.
        #[source]
        source: BackendError,
    },
    /// The SQL Server store could not connect or log in (network, TLS, the login
    /// refused, no database named).
    #[error("the SLAM store {store} cannot be reached")]
    Unreachable {
        /// `SERVER/DATABASE`.
        store: String,
        /// Why, in the driver's or the server's words.
        #[source]
        source: BackendError,
    },
    /// The SLAM tables are not in the database the request came from.
    #[error("SLAM is not installed in {store}")]
    NotInstalled {
        /// Where the tables were looked for.
        store: String,
        /// What the server said, when it said more than "no such table" (SQL Server's
        /// 4060: the login cannot open the database, which also means offline,
        /// restoring or single-user).
        #[source]
        source: Option<BackendError>,
    },
    /// Another transaction held the SLAM tables longer than the store waits for
    /// them (SQLite's busy timeout, SQL Server's `LOCK_TIMEOUT`).
    #[error("another transaction held the SLAM tables too long while {action}")]
    Locked {
        /// What we were doing.
        action: &'static str,
    },
    /// A statement failed (disk full, corrupt file, connection lost...).
    #[error("the SLAM store failed while {action}")]
    Sql {
        /// What we were doing.
        action: &'static str,
        /// Why, in the backend's words.
        #[source]
        source: BackendError,
    },
}

/// A backend's own error (SQLite's, SQL Server's), kept as the cause of a
/// [`StoreError`] so that the operations never depend on which backend runs.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the store for one operation. Which backend, and where, is the transport's
/// decision, made once from its configuration; the operations see only [`Store`].
pub trait StoreOpener: Send + Sync {
    /// The store for a request made from `database` (the caller's SQL Server
    /// database; `None` from the CLI or a test).
    fn open(&self, database: Option<&str>) -> Result<Box<dyn Store>, StoreError>;
}

/// The persistent state behind the connection procedures.
pub trait Store {
    /// Inserts or replaces the connection for `record.username`, makes it the active
    /// one (`SLAM_Settings.Username`) and appends `log`, atomically. On replace the
    /// original `created_at` is kept.
    fn save_and_activate(&mut self, record: &ConnectionRecord, log: &LogEntry) -> Result<SaveOutcome, StoreError>;
    /// The connection for `username` (case-insensitive).
    fn get(&mut self, username: &str) -> Result<Option<ConnectionRecord>, StoreError>;
    /// All connections, ordered by username.
    fn list(&mut self) -> Result<Vec<ConnectionRecord>, StoreError>;
    /// `SLAM_Settings.Username`.
    fn active_username(&mut self) -> Result<Option<String>, StoreError>;
    /// Makes an existing connection active and appends `log`, atomically.
    fn activate(&mut self, username: &str, log: &LogEntry) -> Result<(), StoreError>;
    /// Deletes a connection (clearing `SLAM_Settings.Username` if it was active) and
    /// appends `log`, atomically.
    fn remove(&mut self, username: &str, log: &LogEntry) -> Result<RemoveOutcome, StoreError>;
    /// Records a connection test's time and result (and the instance URL and org id
    /// when it passed) and appends `log`, atomically.
    fn record_test(&mut self, username: &str, result: &TestResult, log: &LogEntry) -> Result<(), StoreError>;
    /// Appends a log entry on its own (for failed operations).
    fn append_log(&mut self, log: &LogEntry) -> Result<(), StoreError>;
    /// The newest `limit` log entries, newest first.
    fn recent_log(&mut self, limit: u32) -> Result<Vec<LogEntry>, StoreError>;
}

/// The outcome of a connection test, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// RFC 3339 UTC.
    pub at: String,
    /// Passed or not.
    pub ok: bool,
    /// Summary or error text.
    pub message: String,
    /// Instance URL seen (when it passed).
    pub instance_url: Option<String>,
    /// Org id seen (when it passed).
    pub org_id: Option<String>,
}
