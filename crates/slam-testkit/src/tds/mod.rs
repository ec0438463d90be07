//! A fake SQL Server speaking TDS 7.4, to test SLAM's SQL Server store (tiberius) without
//! SQL Server.
//!
//! # Why
//!
//! The store's interesting behaviour sits at the protocol edges: TLS negotiated inside
//! PRELOGIN, refused logins (18456, 4060), errors raised by a statement (1222 lock timeout),
//! values of every column type read back, `MAX` values spanning many packets, pooled
//! connections being closed. A real SQL Server in CI is slow and heavy; a mock at the tiberius
//! API level would not exercise the wire. [`FakeSqlServer`] speaks the real protocol to the
//! real client and lets a test decide, through a [`Handler`], what each login, batch and
//! `sp_executesql` call answers.
//!
//! # What is faithful, what is not
//!
//! Faithful (as SQL Server 2022 answers tiberius):
//! * PRELOGIN: VERSION 16.0.1000, ENCRYPTION, INSTOPT `0x00` (instance valid), an empty
//!   THREADID and MARS off. [`Tls::None`] answers `ENCRYPT_NOT_SUP`; [`Tls::Required`]
//!   answers `ENCRYPT_ON` to a client asking ON/REQ, `ENCRYPT_REQ` to a client saying OFF,
//!   and closes the connection of a client saying NOT_SUP (MS-TDS: "connection terminated").
//! * TLS 1.2 carried in PRELOGIN packets, then everything (LOGIN7 included) inside TLS. The
//!   certificate is for `localhost` and `127.0.0.1`, signed by a fresh test CA
//!   ([`FakeSqlServer::ca_pem`]).
//! * LOGIN7: the login answer is ENVCHANGE database, INFO 5701, ENVCHANGE collation
//!   (Latin1_General_CI_AS), ENVCHANGE language, INFO 5703, LOGINACK (TDS 7.4, "Microsoft SQL
//!   Server"), ENVCHANGE packet size (the client's request, 512..=32767), DONE. A refused
//!   login is ERROR + DONE(error), then the server closes the connection.
//! * Batches and `sp_executesql` RPCs (by id 10 or by name), ALL_HEADERS skipped; parameter
//!   types INTN/INTx, BITN/BIT, NVARCHAR/NCHAR (sized and `MAX` PLP), BIGVARCHAR/BIGCHAR,
//!   BIGVARBINARY/BIGBINARY (sized and PLP), DATETIME2N and NULLTYPE, which covers what
//!   tiberius sends for `&str`/`String`, `i32`, `i64`, `bool`, `&[u8]`/`Vec<u8>`,
//!   `time::PrimitiveDateTime` and `None`. PLP values must be well formed (chunks and a 4-byte
//!   terminator) or the RPC is answered like SQL Server does, with error 8007 ("The chunking
//!   format is incorrect...").
//! * Responses: COLMETADATA + ROW + DONE(COUNT) per result set in a batch, DONEINPROC per
//!   statement + RETURNSTATUS 0 + DONEPROC for `sp_executesql`, the MORE bit on every DONE but
//!   the last, INFO and ERROR tokens with 4-byte line numbers, packets of the negotiated size
//!   with the EOM bit on the last one, in both directions.
//! * An Attention (cancel) is answered with DONE(ATTN); a client message with the IGNORE
//!   bit is discarded.
//! * Transaction-manager requests (tiberius' `begin_transaction` and friends) are passed to
//!   [`Handler::batch`] as `BEGIN TRANSACTION`, `COMMIT TRANSACTION`, `ROLLBACK TRANSACTION`
//!   and `SAVE TRANSACTION name`, and answered with the matching ENVCHANGE (a fresh 8-byte
//!   transaction descriptor) when the handler did not answer an error.
//!
//! Not faithful:
//! * Nothing is executed: the [`Handler`] answers every statement. Batches are not split into
//!   statements; `BEGIN TRAN` sent as a batch gets no ENVCHANGE.
//! * Integrated (SSPI) logins are recorded and always refused with 18452 ("Login failed. The
//!   login is from an untrusted domain and cannot be used with Integrated authentication.");
//!   the handler is not asked. Faking the NTLM/Kerberos exchange is not worth it here.
//! * Federated authentication (Azure AD tokens), MARS, TDS 8.0 strict encryption, bulk load,
//!   other RPCs (`sp_prepare`, cursors: answered with an error), RPC batches, NBCROW,
//!   RETURNVALUE (OUTPUT parameters) and the SESSIONSTATE/FEATUREEXTACK tokens are not
//!   implemented.
//! * Column types are a fixed choice per [`ColumnType`]: integers and bit as nullable INTN/
//!   BITN, [`ColumnType::NVarChar`] as `nvarchar(max)`, `datetime2(3)`.
//! * INFO tokens are sent, but tiberius 0.13 only logs them (DEBUG); they are not surfaced to
//!   the caller.
//! * A request the fake cannot parse is answered with an ERROR (4002, or 8007/8016 for RPC
//!   parameters) and the connection stays open; SQL Server often drops the connection.
//!
//! # Use
//!
//! ```no_run
//! use std::sync::Arc;
//! use slam_testkit::tds::{FakeSqlServer, Handler, Login, Param, Reply, SqlError, Tls};
//!
//! struct Answers;
//! impl Handler for Answers {
//!     fn login(&self, login: &Login) -> Result<(), SqlError> {
//!         match login.user.as_deref() {
//!             Some("slam") => Ok(()),
//!             other => Err(SqlError::login_failed(other.unwrap_or(""))),
//!         }
//!     }
//!     fn batch(&self, _session: u32, _sql: &str) -> Vec<Reply> {
//!         vec![Reply::Done { rows: None }]
//!     }
//!     fn execute(&self, _session: u32, _sql: &str, _params: &[Param]) -> Vec<Reply> {
//!         vec![Reply::Done { rows: Some(1) }]
//!     }
//! }
//!
//! let fake = FakeSqlServer::start(Arc::new(Answers), Tls::Required)?;
//! let ca_file = fake.write_ca_file(std::path::Path::new("/tmp"))?;
//! // Connect tiberius to `fake.addr()` with EncryptionLevel::Required and trust_cert_ca(ca_file).
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod login;
mod packet;
mod pki;
mod prelogin;
mod request;
mod session;
mod tokens;
mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How the fake answers the client's encryption request in PRELOGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// `ENCRYPT_NOT_SUP`: no TLS at all (tiberius: `EncryptionLevel::NotSupported`).
    None,
    /// TLS for the whole connection (tiberius: `EncryptionLevel::Required` or `On`), the
    /// handshake wrapped in PRELOGIN packets.
    Required,
}

/// One login attempt as the fake received it. The password itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The session (SPID) the connection got; also passed to the other [`Handler`] calls.
    pub session: u32,
    /// The SQL authentication user name, `None` if empty (integrated logins).
    pub user: Option<String>,
    /// Whether a non-empty password was sent.
    pub password_given: bool,
    /// Whether the client asked for integrated (SSPI) authentication.
    pub integrated: bool,
    /// The database asked for in LOGIN7, empty if none (SQL Server then uses the login's
    /// default database).
    pub database: String,
    /// The application name (tiberius: `Config::application_name`, default "tiberius").
    pub app_name: String,
    /// The client's host name.
    pub host_name: String,
    /// Whether LOGIN7 arrived over TLS.
    pub encrypted: bool,
}

/// A server message as SQL Server raises it (ERROR token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The message number, e.g. 18456.
    pub number: u32,
    /// The severity (class); 11 and above are errors.
    pub class: u8,
    /// The state.
    pub state: u8,
    /// The message text.
    pub message: String,
}

impl SqlError {
    /// A message with state 1.
    pub fn new(number: u32, class: u8, message: impl Into<String>) -> SqlError {
        SqlError { number, class, state: 1, message: message.into() }
    }

    /// 18456 class 14: "Login failed for user 'x'." (SQL Server does not say why).
    pub fn login_failed(user: &str) -> SqlError {
        SqlError::new(18456, 14, format!("Login failed for user '{user}'."))
    }

    /// 4060 class 11: the login cannot open the requested database.
    pub fn cannot_open_database(database: &str) -> SqlError {
        SqlError::new(
            4060,
            11,
            format!("Cannot open database \"{database}\" requested by the login. The login failed."),
        )
    }

    /// 1222 class 16: "Lock request time out period exceeded." (`SET LOCK_TIMEOUT` expired).
    pub fn lock_timeout() -> SqlError {
        SqlError { number: 1222, class: 16, state: 51, message: "Lock request time out period exceeded.".to_owned() }
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msg {}, Level {}, State {}: {}", self.number, self.class, self.state, self.message)
    }
}

impl std::error::Error for SqlError {}

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL (of any type).
    Null,
    /// `tinyint`, `smallint`, `int` or `bigint`.
    Int(i64),
    /// `bit`.
    Bit(bool),
    /// `nvarchar`/`nchar` (also `varchar`/`char` parameters, decoded as Latin-1).
    NVarChar(String),
    /// `varbinary`/`binary`.
    VarBinary(Vec<u8>),
    /// `datetime2` (any scale; nanoseconds kept as sent).
    DateTime2(time::PrimitiveDateTime),
}

/// One `sp_executesql` parameter after `@params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name as sent, e.g. `@P1` (tiberius numbers them from 1).
    pub name: String,
    /// The value.
    pub value: Value,
}

/// The SQL type of a result column, as the fake declares it in COLMETADATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `bigint` (nullable INTN(8)); tiberius reads `i64`.
    BigInt,
    /// `int` (nullable INTN(4)); tiberius reads `i32`.
    Int,
    /// `bit` (nullable BITN); tiberius reads `bool`.
    Bit,
    /// `nvarchar(max)` (PLP, any length); tiberius reads `&str`/`String`.
    NVarChar,
    /// `varbinary(max)` (PLP); tiberius reads `&[u8]`/`Vec<u8>`.
    VarBinaryMax,
    /// `datetime2(3)`; tiberius reads `time::PrimitiveDateTime` (rounded to milliseconds).
    DateTime2,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column name (at most 128 characters in SQL Server).
    pub name: String,
    /// Its type.
    pub kind: ColumnType,
}

impl Column {
    /// A column.
    pub fn new(name: impl Into<String>, kind: ColumnType) -> Column {
        Column { name: name.into(), kind }
    }
}

/// A result set: columns and rows of values (one [`Value`] per column, of the column's type
/// or [`Value::Null`]; a mismatch is a handler bug, reported like a handler panic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultSet {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows.
    pub rows: Vec<Vec<Value>>,
}

/// One item of the answer to a batch or `sp_executesql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A result set (COLMETADATA, ROWs, DONE with the row count).
    Rows(ResultSet),
    /// A statement without a result set, e.g. an UPDATE (`rows: Some(n)`) or `SET` (`None`).
    Done {
        /// Rows affected, if counted.
        rows: Option<u64>,
    },
    /// An informational message (INFO token, like `PRINT`; class 0, number 0).
    Info(String),
    /// An error (ERROR token then DONE with the error bit). It ends the answer: later
    /// replies are not sent.
    Error(SqlError),
}

/// Decides what the fake answers. Calls run on a blocking thread, so a handler may sleep
/// (to test timeouts); a panic is answered with error 50000 and makes dropping the
/// [`FakeSqlServer`] panic.
pub trait Handler: Send + Sync + 'static {
    /// Decides a login: Ok, or an error (e.g. [`SqlError::login_failed`] or
    /// [`SqlError::cannot_open_database`]). Not called for integrated logins.
    fn login(&self, login: &Login) -> Result<(), SqlError>;
    /// A SQL batch (packet type 1), its text.
    fn batch(&self, session: u32, sql: &str) -> Vec<Reply>;
    /// An RPC to `sp_executesql` (proc id 10 or name), with the statement text and the
    /// parameters after `@params`, in order.
    fn execute(&self, session: u32, sql: &str, params: &[Param]) -> Vec<Reply>;
    /// The connection of a session that sent LOGIN7 closed (called before
    /// [`FakeSqlServer::connections_open`] drops; not called for connections still open when
    /// the fake is dropped).
    fn disconnect(&self, session: u32) {
        let _ = session;
    }
}

/// State shared by the accept loop, the sessions and the synchronous API.
pub(crate) struct Shared {
    logins: Mutex<Vec<Login>>,
    problems: Mutex<Vec<String>>,
    connections: AtomicUsize,
    next_session: AtomicU32,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            logins: Mutex::new(Vec::new()),
            problems: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            // SQL Server's user sessions start at 51.
            next_session: AtomicU32::new(51),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record_login(&self, login: Login) {
        Self::lock(&self.logins).push(login);
    }

    /// A handler panic or handler bug: the test must fail when the fake is dropped.
    pub(crate) fn record_problem(&self, problem: String) {
        eprintln!("fake SQL Server: {problem}");
        Self::lock(&self.problems).push(problem);
    }

    pub(crate) fn next_session(&self) -> u32 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts an open connection until the guard drops.
    pub(crate) fn open_connection(self: &Arc<Self>) -> OpenConnection {
        self.connections.fetch_add(1, Ordering::SeqCst);
        OpenConnection(self.clone())
    }
}

/// Decrements the open-connection count when dropped.
pub(crate) struct OpenConnection(Arc<Shared>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running fake SQL Server. See the [module docs](self). Dropping it stops the server (and
/// panics if a handler panicked or answered something unencodable).
pub struct FakeSqlServer {
    addr: SocketAddr,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakeSqlServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeSqlServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FakeSqlServer {
    /// Binds `127.0.0.1:0` and serves from its own tokio runtime on a background thread.
    /// With [`Tls::Required`], first generates a test CA and a server certificate.
    pub fn start(handler: Arc<dyn Handler>, tls: Tls) -> std::io::Result<FakeSqlServer> {
        let pki = match tls {
            Tls::None => None,
            Tls::Required => Some(pki::generate().map_err(std::io::Error::other)?),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new());
        let (tx, rx) = oneshot::channel();
        let ca_pem = pki.as_ref().map(|p| p.ca_pem.clone());
        let ctx = Arc::new(session::ServerCtx {
            handler,
            acceptor: pki.map(|p| tokio_rustls::TlsAcceptor::from(p.server_config)),
            shared: shared.clone(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name(format!("fake-sql-server-{}", addr.port())).spawn(move || {
            runtime.block_on(session::serve(listener, ctx, rx));
            // Drops open connections and abandons handler calls still running.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })?;
        Ok(FakeSqlServer { addr, ca_pem, shared, shutdown: Some(tx), thread: Some(thread) })
    }

    /// The listening address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the test CA that signed the server certificate ([`Tls::Required`] only).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Writes [`FakeSqlServer::ca_pem`] to `dir/fake-sql-server-ca.pem` and returns the path
    /// (an `InvalidInput` error with [`Tls::None`]).
    pub fn write_ca_file(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let pem = self.ca_pem.as_deref().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "the fake SQL Server was started without TLS")
        })?;
        let path = dir.join("fake-sql-server-ca.pem");
        std::fs::write(&path, pem)?;
        Ok(path)
    }

    /// Every login attempt so far, in arrival order (refused ones included).
    pub fn logins(&self) -> Vec<Login> {
        Shared::lock(&self.shared.logins).clone()
    }

    /// TCP connections currently open.
    pub fn connections_open(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until [`FakeSqlServer::connections_open`] is `n` (the server notices a closed
    /// connection asynchronously); false if it is not within `timeout`.
    pub fn wait_for_connections_open(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.connections_open() == n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for FakeSqlServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let problems = std::mem::take(&mut *Shared::lock(&self.shared.problems));
        if !problems.is_empty() && !std::thread::panicking() {
            panic!("{}", problems.join("\n"));
        }
    }
}
