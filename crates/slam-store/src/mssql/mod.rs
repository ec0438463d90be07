//! The SQL Server store: `SLAM_Settings`, `SLAM_Connections` and `SLAM_Log` in the
//! database each request came from, where the DBA can `SELECT * FROM SLAM_Settings`.
//!
//! Why it owns a runtime: the [`Store`] trait is synchronous and is called from
//! inside an operation that is itself being driven by `block_on` on a blocking
//! thread, where a second `block_on` would panic; tiberius needs a tokio reactor.
//! So the opener keeps one small runtime of its own, every call sends its work
//! there and waits on a plain channel, and the pooled connections live there.
//!
//! Every connection first runs `SET XACT_ABORT ON; SET LOCK_TIMEOUT n` and checks
//! that the SLAM tables exist. Every change is one explicit transaction; after any
//! server or network error the connection is dropped rather than returned to the
//! pool, so the server rolls back whatever it held. Error 1222 (lock timeout)
//! becomes [`StoreError::Locked`], 208 (no such table) and 4060 (cannot open the
//! database) [`StoreError::NotInstalled`].

mod script;
mod settings;
pub(crate) mod sql;

pub use script::{BATCH_TIMEOUT, DATABASE_REPORT, MASTER_REPORT, Report, ScriptBatch, ScriptError, run_script};
pub use settings::{APPLICATION_NAME, Encrypt, INTEGRATED_IS_AVAILABLE, ServerAddress, SqlAuth, SqlServerSettings};

use crate::{ConnectionRecord, LogEntry, RemoveOutcome, SaveOutcome, Store, StoreError, StoreOpener, TestResult};
use deadpool::managed::{self, Metrics, Object, Pool, RecycleError, RecycleResult};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tiberius::{Row, ToSql};
use time::PrimitiveDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

type Client = tiberius::Client<Compat<TcpStream>>;
type Job<'a, T> = Pin<Box<dyn Future<Output = Result<T, JobError>> + Send + 'a>>;

/// A pooled connection idle longer than this is replaced rather than reused: a
/// firewall or the server may have dropped it silently.
const IDLE_LIMIT: Duration = Duration::from_secs(120);

/// Opens the SQL Server store for each operation, from one pool per database.
pub struct SqlServerOpener {
    shared: Arc<Shared>,
}

struct Shared {
    settings: SqlServerSettings,
    runtime: StoreRuntime,
    pools: Mutex<HashMap<String, Pool<Manager>>>,
}

/// The store's own runtime, shut down without waiting when the opener goes (it may
/// be dropped from inside another runtime, where waiting is not allowed).
struct StoreRuntime(Option<tokio::runtime::Runtime>);

impl Drop for StoreRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl SqlServerOpener {
    /// An opener for `settings`; nothing connects until the first operation.
    pub fn new(settings: SqlServerSettings) -> Result<SqlServerOpener, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("slam-sqlserver")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Open { store: settings.server.to_string(), source: Box::new(e) })?;
        Ok(SqlServerOpener {
            shared: Arc::new(Shared { settings, runtime: StoreRuntime(Some(runtime)), pools: Mutex::default() }),
        })
    }

    /// The settings this opener connects with.
    pub fn settings(&self) -> &SqlServerSettings {
        &self.shared.settings
    }

    /// Connects as an operation would (login, session settings) and reports what it
    /// found, for `--check-config`: the server's version line and, when `database`
    /// is given, whether the SLAM tables are there. Without one it logs in to the
    /// login's default database.
    pub fn check(&self, database: Option<&str>) -> Result<ServerReport, StoreError> {
        let store = self.shared.settings.store_name(database.unwrap_or("(default database)"));
        let shared = self.shared.clone();
        let database = database.map(str::to_string);
        self.shared.block(&store, async move {
            let mut client = open_session(&shared.settings, database.as_deref()).await?;
            let action = "reading the server's version";
            let row = client.simple_query("SELECT @@VERSION;").await.at(action)?.into_row().await.at(action)?;
            let version = row.as_ref().and_then(|r| r.get::<&str, _>(0)).unwrap_or("").lines().next().unwrap_or("");
            let installed = match database {
                Some(_) => Some(tables_installed(&mut client).await?),
                None => None,
            };
            Ok(ServerReport { version: version.trim().to_string(), installed })
        })
    }

    fn pool(&self, database: &str) -> Result<Pool<Manager>, StoreError> {
        let mut pools = self.shared.pools.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(pool) = pools.get(database) {
            return Ok(pool.clone());
        }
        let manager = Manager { shared: Arc::downgrade(&self.shared), database: database.to_string() };
        let pool = Pool::builder(manager)
            .max_size(self.shared.settings.max_connections.max(1))
            .wait_timeout(Some(self.shared.settings.connect_timeout))
            .create_timeout(Some(self.shared.settings.connect_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Open {
                store: self.shared.settings.store_name(database),
                source: e.to_string().into(),
            })?;
        pools.insert(database.to_string(), pool.clone());
        Ok(pool)
    }
}

impl StoreOpener for SqlServerOpener {
    fn open(&self, database: Option<&str>) -> Result<Box<dyn Store>, StoreError> {
        let settings = &self.shared.settings;
        let Some(database) = database.or(settings.default_database.as_deref()) else {
            return Err(StoreError::Unreachable {
                store: settings.server.to_string(),
                source: "no database was named: SLAM's tables live in the database that calls it (from the \
                         command line, pass --database, or set `default_database` under [sqlserver])"
                    .into(),
            });
        };
        Ok(Box::new(SqlServerStore {
            shared: self.shared.clone(),
            pool: self.pool(database)?,
            store: settings.store_name(database),
        }))
    }
}

impl Shared {
    /// Runs `work` on the store's runtime and waits for it from this (blocking) thread.
    fn block<T: Send + 'static>(
        &self,
        store: &str,
        work: impl Future<Output = Result<T, JobError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(runtime) = &self.runtime.0 else {
            return Err(StoreError::Open { store: store.to_string(), source: "the store is shutting down".into() });
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        match rx.recv() {
            Ok(result) => result.map_err(|e| e.into_store_error(store)),
            Err(_) => Err(StoreError::Open {
                store: store.to_string(),
                source: "the SQL Server store's task ended without an answer".into(),
            }),
        }
    }
}

/// Makes the pooled connections of one database.
struct Manager {
    // Weak: the pools live inside `Shared`; a strong reference would keep it alive.
    shared: std::sync::Weak<Shared>,
    database: String,
}

impl Manager {
    async fn connect(&self) -> Result<Client, JobError> {
        let Some(shared) = self.shared.upgrade() else {
            return Err(JobError::Connect("the store is shutting down".into()));
        };
        let mut client = open_session(&shared.settings, Some(&self.database)).await?;
        if !tables_installed(&mut client).await? {
            return Err(JobError::NotInstalled);
        }
        Ok(client)
    }
}

/// A logged-in session with SLAM's session settings.
async fn open_session(settings: &SqlServerSettings, database: Option<&str>) -> Result<Client, JobError> {
    let config = settings.tiberius_config(database);
    let tcp = tokio::time::timeout(settings.connect_timeout, connect_tcp(&config))
        .await
        .map_err(|_| {
            JobError::Connect(
                format!("no answer from {} within {:?}", settings.server, settings.connect_timeout).into(),
            )
        })?
        .map_err(JobError::Login)?;
    let mut client = tiberius::Client::connect(config, tcp.compat_write()).await.map_err(JobError::Login)?;
    let setup = sql::session_setup(u64::try_from(settings.lock_timeout.as_millis()).unwrap_or(u64::MAX));
    batch(&mut client, "setting up the session", &setup).await?;
    Ok(client)
}

async fn tables_installed(client: &mut Client) -> Result<bool, JobError> {
    let action = "looking for the SLAM tables";
    let row = client.simple_query(sql::INSTALLED).await.at(action)?.into_row().await.at(action)?;
    Ok(row.and_then(|row| row.get::<bool, _>(0)).unwrap_or(false))
}

/// What [`SqlServerOpener::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    /// The first line of `@@VERSION`.
    pub version: String,
    /// Whether the SLAM tables are in the database checked (`None`: none was named).
    pub installed: Option<bool>,
}

async fn connect_tcp(config: &tiberius::Config) -> Result<TcpStream, tiberius::error::Error> {
    use tiberius::SqlBrowser;
    let tcp = TcpStream::connect_named(config).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

impl managed::Manager for Manager {
    type Type = Client;
    type Error = JobError;

    async fn create(&self) -> Result<Client, JobError> {
        self.connect().await
    }

    async fn recycle(&self, client: &mut Client, metrics: &Metrics) -> RecycleResult<JobError> {
        if metrics.last_used() > IDLE_LIMIT {
            return Err(RecycleError::message("idle too long"));
        }
        // One round trip per reuse, so that a server restart or failover costs a new
        // connection rather than a failed operation.
        match client.simple_query(sql::PROBE).await {
            Ok(stream) => match stream.into_row().await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(RecycleError::message("the probe returned no row")),
                Err(e) => Err(RecycleError::message(format!("no longer answers: {e}"))),
            },
            Err(e) => Err(RecycleError::message(format!("no longer answers: {e}"))),
        }
    }
}

/// What went wrong inside the store's runtime, before it is named for the caller.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("{0}")]
    Connect(crate::BackendError),
    #[error("{0}")]
    Login(tiberius::error::Error),
    #[error("the SLAM tables are missing")]
    NotInstalled,
    #[error("{error}")]
    Db { action: &'static str, error: tiberius::error::Error },
    #[error("{0}")]
    Store(StoreError),
}

impl JobError {
    fn into_store_error(self, store: &str) -> StoreError {
        let store = store.to_string();
        match self {
            JobError::Connect(source) => StoreError::Unreachable { store, source },
            JobError::NotInstalled => StoreError::NotInstalled { store, source: None },
            JobError::Login(error) => match error.code() {
                Some(4060) => StoreError::NotInstalled { store, source: Some(Box::new(error)) },
                Some(1222) => StoreError::Locked { action: "setting up the session" },
                _ => StoreError::Unreachable { store, source: Box::new(error) },
            },
            JobError::Db { action, error } => match error.code() {
                Some(1222) => StoreError::Locked { action },
                Some(208) => StoreError::NotInstalled { store, source: None },
                _ => StoreError::Sql { action, source: Box::new(error) },
            },
            JobError::Store(error) => error,
        }
    }

    /// Whether the connection may go back to the pool after this error.
    fn connection_is_clean(&self) -> bool {
        matches!(self, JobError::Store(StoreError::NotFound { .. }))
    }
}

impl From<managed::PoolError<JobError>> for JobError {
    fn from(error: managed::PoolError<JobError>) -> JobError {
        match error {
            managed::PoolError::Backend(e) => e,
            managed::PoolError::Timeout(managed::TimeoutType::Wait) => {
                JobError::Connect("every pooled connection stayed busy; try again when the other operations end".into())
            }
            // The TCP connect has its own, more precise, timeout (`open_session`): this
            // one means the server answered but the TLS handshake or the login did not
            // finish in time.
            managed::PoolError::Timeout(_) => JobError::Connect(
                "the server answered, but the TLS handshake and login did not finish within connect_timeout".into(),
            ),
            other => JobError::Connect(other.to_string().into()),
        }
    }
}

trait At<T> {
    fn at(self, action: &'static str) -> Result<T, JobError>;
}

impl<T> At<T> for Result<T, tiberius::error::Error> {
    fn at(self, action: &'static str) -> Result<T, JobError> {
        self.map_err(|error| JobError::Db { action, error })
    }
}

/// One operation's use of the SQL Server store. Each call takes a pooled connection
/// and gives it back when it returns (every call is its own transaction), so an
/// operation that waits on Salesforce between two calls (adding or testing a
/// connection: up to the Salesforce timeout) holds no connection meanwhile.
pub struct SqlServerStore {
    shared: Arc<Shared>,
    pool: Pool<Manager>,
    store: String,
}

impl SqlServerStore {
    /// Runs `job` on a pooled connection and gives it back; a failed job's connection
    /// is dropped instead (the server rolls back what it held) unless the failure left
    /// it clean.
    fn call<T, F>(&mut self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Client) -> Job<'a, T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let (conn, result) = self.shared.block(&self.store, async move {
            let mut conn = pool.get().await?;
            let result = job(&mut conn).await;
            Ok((conn, result))
        })?;
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                if !error.connection_is_clean() {
                    drop(Object::take(conn));
                }
                Err(error.into_store_error(&self.store))
            }
        }
    }
}

fn timestamp(text: &str) -> Result<PrimitiveDateTime, JobError> {
    let at = time::OffsetDateTime::parse(text, &Rfc3339).map_err(|e| JobError::Db {
        action: "converting a time",
        error: tiberius::error::Error::Conversion(format!("`{text}` is not an RFC 3339 time: {e}").into()),
    })?;
    let at = at.to_offset(time::UtcOffset::UTC);
    Ok(PrimitiveDateTime::new(at.date(), at.time()))
}

fn optional_timestamp(text: Option<&str>) -> Result<Option<PrimitiveDateTime>, JobError> {
    text.map(timestamp).transpose()
}

fn rfc3339(at: PrimitiveDateTime) -> Result<String, tiberius::error::Error> {
    at.assume_utc()
        .format(&Rfc3339)
        .map_err(|e| tiberius::error::Error::Conversion(format!("a stored time cannot be written: {e}").into()))
}

fn null(column: usize) -> tiberius::error::Error {
    tiberius::error::Error::Conversion(format!("column {column} is NULL where SLAM needs a value").into())
}

fn text(row: &Row, i: usize) -> Result<Option<String>, tiberius::error::Error> {
    Ok(row.try_get::<&str, _>(i)?.map(str::to_owned))
}

fn required_text(row: &Row, i: usize) -> Result<String, tiberius::error::Error> {
    text(row, i)?.ok_or_else(|| null(i))
}

fn time_text(row: &Row, i: usize) -> Result<Option<String>, tiberius::error::Error> {
    row.try_get::<PrimitiveDateTime, _>(i)?.map(rfc3339).transpose()
}

fn bytes(row: &Row, i: usize) -> Result<Option<Vec<u8>>, tiberius::error::Error> {
    Ok(row.try_get::<&[u8], _>(i)?.map(<[u8]>::to_vec))
}

fn record_from(row: &Row) -> Result<ConnectionRecord, tiberius::error::Error> {
    Ok(ConnectionRecord {
        username: required_text(row, 0)?,
        auth_method: required_text(row, 1)?,
        domain: required_text(row, 2)?,
        environment_name: text(row, 3)?,
        api_version: i64::from(row.try_get::<i32, _>(4)?.ok_or_else(|| null(4))?),
        key_name: text(row, 5)?,
        consumer_key: text(row, 6)?,
        password_sealed: bytes(row, 7)?,
        token_sealed: bytes(row, 8)?,
        key_password_sealed: bytes(row, 9)?,
        instance_url: text(row, 10)?,
        org_id: text(row, 11)?,
        created_at: time_text(row, 12)?.ok_or_else(|| null(12))?,
        updated_at: time_text(row, 13)?.ok_or_else(|| null(13))?,
        last_test_at: time_text(row, 14)?,
        last_test_ok: row.try_get::<bool, _>(15)?,
        last_test_message: text(row, 16)?,
    })
}

fn log_from(row: &Row) -> Result<LogEntry, tiberius::error::Error> {
    Ok(LogEntry {
        at: time_text(row, 0)?.ok_or_else(|| null(0))?,
        operation: required_text(row, 1)?,
        username: text(row, 2)?,
        caller: required_text(row, 3)?,
        outcome: required_text(row, 4)?,
        error_number: row.try_get::<i32, _>(5)?.map(i64::from),
        message: required_text(row, 6)?,
    })
}

async fn rows(
    client: &mut Client,
    action: &'static str,
    sql: &str,
    params: &[&dyn ToSql],
) -> Result<Vec<Row>, JobError> {
    client.query(sql, params).await.at(action)?.into_first_result().await.at(action)
}

async fn execute(client: &mut Client, action: &'static str, sql: &str, params: &[&dyn ToSql]) -> Result<u64, JobError> {
    Ok(client.execute(sql, params).await.at(action)?.total())
}

async fn batch(client: &mut Client, action: &'static str, sql: &str) -> Result<(), JobError> {
    client.simple_query(sql).await.at(action)?.into_results().await.at(action)?;
    Ok(())
}

async fn usernames(client: &mut Client) -> Result<Vec<String>, JobError> {
    let rows = rows(client, "listing connections", sql::SELECT_USERNAMES, &[]).await?;
    rows.iter().map(|r| required_text(r, 0)).collect::<Result<_, _>>().at("listing connections")
}

/// Ends the transaction without changes and reports `username` as not found.
async fn not_found<T>(client: &mut Client, username: String) -> Result<T, JobError> {
    batch(client, "rolling back", sql::ROLLBACK).await?;
    let known = usernames(client).await?;
    Err(JobError::Store(StoreError::NotFound { username, known }))
}

/// The stored spelling and creation time of `username`, locked for this transaction.
async fn lock_connection(client: &mut Client, username: &str) -> Result<Option<(String, PrimitiveDateTime)>, JobError> {
    let action = "reading a connection";
    let rows = rows(client, action, sql::LOCK_CONNECTION, &[&username]).await?;
    match rows.first() {
        None => Ok(None),
        Some(row) => {
            let stored = required_text(row, 0).at(action)?;
            let created = row.try_get::<PrimitiveDateTime, _>(1).at(action)?.ok_or_else(|| null(1)).at(action)?;
            Ok(Some((stored, created)))
        }
    }
}

/// `text` cut to fit an `NVARCHAR(width)` column, which counts UTF-16 code units (a
/// character outside the BMP takes two); a cut text ends in `…`, so a reader sees it
/// was cut.
fn fit(text: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if text.encode_utf16().count() <= width {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut used = 1; // the ellipsis
    let mut cut = String::new();
    for c in text.chars() {
        used += c.len_utf16();
        if used > width {
            break;
        }
        cut.push(c);
    }
    cut.push('…');
    std::borrow::Cow::Owned(cut)
}

async fn insert_log(client: &mut Client, log: &LogEntry) -> Result<(), JobError> {
    let at = timestamp(&log.at)?;
    let caller: &str = &fit(&log.caller, sql::CALLER_WIDTH);
    let message: &str = &fit(&log.message, sql::MESSAGE_WIDTH);
    let error_number = log.error_number.and_then(|n| i32::try_from(n).ok());
    execute(
        client,
        "writing the log",
        sql::INSERT_LOG,
        &[
            &at,
            &log.operation.as_str(),
            &log.username.as_deref(),
            &caller,
            &log.outcome.as_str(),
            &error_number,
            &message,
        ],
    )
    .await?;
    Ok(())
}

impl Store for SqlServerStore {
    fn save_and_activate(&mut self, record: &ConnectionRecord, log: &LogEntry) -> Result<SaveOutcome, StoreError> {
        let r = record.clone();
        let log = log.clone();
        self.call(move |c| {
            Box::pin(async move {
                let created_at = timestamp(&r.created_at)?;
                let updated_at = timestamp(&r.updated_at)?;
                let last_test_at = optional_timestamp(r.last_test_at.as_deref())?;
                let api_version = i32::try_from(r.api_version).map_err(|_| JobError::Db {
                    action: "saving a connection",
                    error: tiberius::error::Error::Conversion(
                        format!("API version {} is too large", r.api_version).into(),
                    ),
                })?;
                batch(c, "saving a connection", sql::BEGIN).await?;
                let replaced = lock_connection(c, &r.username).await?.is_some();
                let common: [&dyn ToSql; 12] = [
                    &r.username.as_str(),
                    &r.auth_method.as_str(),
                    &r.domain.as_str(),
                    &r.environment_name.as_deref(),
                    &api_version,
                    &r.key_name.as_deref(),
                    &r.consumer_key.as_deref(),
                    &r.password_sealed.as_deref(),
                    &r.token_sealed.as_deref(),
                    &r.key_password_sealed.as_deref(),
                    &r.instance_url.as_deref(),
                    &r.org_id.as_deref(),
                ];
                let last_test_message = r.last_test_message.as_deref().map(|m| fit(m, sql::LAST_TEST_MESSAGE_WIDTH));
                let tail: [&dyn ToSql; 4] =
                    [&updated_at, &last_test_at, &r.last_test_ok, &last_test_message.as_deref()];
                if replaced {
                    let params: Vec<&dyn ToSql> = common.iter().chain(tail.iter()).copied().collect();
                    execute(c, "saving a connection", sql::UPDATE_CONNECTION, &params).await?;
                } else {
                    let created: [&dyn ToSql; 1] = [&created_at];
                    let params: Vec<&dyn ToSql> =
                        common.iter().chain(created.iter()).chain(tail.iter()).copied().collect();
                    execute(c, "saving a connection", sql::INSERT_CONNECTION, &params).await?;
                }
                execute(c, "activating", sql::SET_ACTIVE, &[&r.username.as_str(), &updated_at]).await?;
                insert_log(c, &log).await?;
                batch(c, "saving a connection", sql::COMMIT).await?;
                Ok(SaveOutcome { replaced })
            })
        })
    }

    fn get(&mut self, username: &str) -> Result<Option<ConnectionRecord>, StoreError> {
        let username = username.to_string();
        self.call(move |c| {
            Box::pin(async move {
                let action = "reading a connection";
                let rows = rows(c, action, sql::SELECT_CONNECTION, &[&username.as_str()]).await?;
                rows.first().map(record_from).transpose().at(action)
            })
        })
    }

    fn list(&mut self) -> Result<Vec<ConnectionRecord>, StoreError> {
        self.call(move |c| {
            Box::pin(async move {
                let action = "listing connections";
                let rows = rows(c, action, sql::SELECT_CONNECTIONS, &[]).await?;
                rows.iter().map(record_from).collect::<Result<_, _>>().at(action)
            })
        })
    }

    fn active_username(&mut self) -> Result<Option<String>, StoreError> {
        self.call(move |c| {
            Box::pin(async move {
                let action = "reading SLAM_Settings";
                let rows = rows(c, action, sql::SELECT_ACTIVE, &[]).await?;
                match rows.first() {
                    Some(row) => text(row, 0).at(action),
                    None => Ok(None),
                }
            })
        })
    }

    fn activate(&mut self, username: &str, log: &LogEntry) -> Result<(), StoreError> {
        let username = username.to_string();
        let log = log.clone();
        self.call(move |c| {
            Box::pin(async move {
                let at = timestamp(&log.at)?;
                batch(c, "activating a connection", sql::BEGIN).await?;
                let Some((stored, _)) = lock_connection(c, &username).await? else {
                    return not_found(c, username).await;
                };
                execute(c, "activating", sql::SET_ACTIVE, &[&stored.as_str(), &at]).await?;
                insert_log(c, &log).await?;
                batch(c, "activating a connection", sql::COMMIT).await
            })
        })
    }

    fn remove(&mut self, username: &str, log: &LogEntry) -> Result<RemoveOutcome, StoreError> {
        let username = username.to_string();
        let log = log.clone();
        self.call(move |c| {
            Box::pin(async move {
                let at = timestamp(&log.at)?;
                batch(c, "removing a connection", sql::BEGIN).await?;
                if lock_connection(c, &username).await?.is_none() {
                    return not_found(c, username).await;
                }
                execute(c, "removing a connection", sql::DELETE_CONNECTION, &[&username.as_str()]).await?;
                let cleared = execute(c, "updating settings", sql::CLEAR_ACTIVE_IF, &[&username.as_str(), &at]).await?;
                insert_log(c, &log).await?;
                batch(c, "removing a connection", sql::COMMIT).await?;
                Ok(RemoveOutcome { was_active: cleared > 0 })
            })
        })
    }

    fn record_test(&mut self, username: &str, result: &TestResult, log: &LogEntry) -> Result<(), StoreError> {
        let username = username.to_string();
        let t = result.clone();
        let log = log.clone();
        self.call(move |c| {
            Box::pin(async move {
                let at = timestamp(&t.at)?;
                let message: &str = &fit(&t.message, sql::LAST_TEST_MESSAGE_WIDTH);
                batch(c, "recording a test", sql::BEGIN).await?;
                let params: [&dyn ToSql; 6] =
                    [&username.as_str(), &at, &t.ok, &message, &t.instance_url.as_deref(), &t.org_id.as_deref()];
                if execute(c, "recording a test", sql::RECORD_TEST, &params).await? == 0 {
                    return not_found(c, username).await;
                }
                insert_log(c, &log).await?;
                batch(c, "recording a test", sql::COMMIT).await
            })
        })
    }

    fn append_log(&mut self, log: &LogEntry) -> Result<(), StoreError> {
        let log = log.clone();
        self.call(move |c| Box::pin(async move { insert_log(c, &log).await }))
    }

    fn recent_log(&mut self, limit: u32) -> Result<Vec<LogEntry>, StoreError> {
        self.call(move |c| {
            Box::pin(async move {
                let action = "reading the log";
                let rows = rows(c, action, sql::SELECT_RECENT_LOG, &[&i64::from(limit)]).await?;
                rows.iter().map(log_from).collect::<Result<_, _>>().at(action)
            })
        })
    }
}

#[cfg(any(test, feature = "test-util"))]
pub mod fake;
#[cfg(test)]
mod fake_server_tests;
#[cfg(test)]
mod real_server_tests;
