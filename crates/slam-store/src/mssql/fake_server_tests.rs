//! The SQL Server store against `slam_testkit::tds::FakeSqlServer`: the real
//! tiberius client, the real TDS wire (login, `sp_executesql` parameters, typed
//! result sets, server errors), with the fake executing each of the store's
//! statements as its SQLite equivalent. What this proves and what it cannot is in
//! docs/sql-server-store.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::conformance;
use rusqlite::types::Value as Lite;
use slam_testkit::tds::{
    Column, ColumnType, FakeSqlServer, Handler, Login, Param, Reply, ResultSet, SqlError, Tls, Value,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::Condvar;

/// What kind of value each result column is, for the statements that return rows.
fn columns_of(statement: &str) -> Option<Vec<(&'static str, ColumnType)>> {
    use ColumnType::*;
    let connection = vec![
        ("Username", NVarChar),
        ("AuthMethod", NVarChar),
        ("Domain", NVarChar),
        ("EnvironmentName", NVarChar),
        ("ApiVersion", Int),
        ("KeyName", NVarChar),
        ("ConsumerKey", NVarChar),
        ("PasswordSealed", VarBinaryMax),
        ("TokenSealed", VarBinaryMax),
        ("KeyPasswordSealed", VarBinaryMax),
        ("InstanceUrl", NVarChar),
        ("OrgId", NVarChar),
        ("CreatedAt", DateTime2),
        ("UpdatedAt", DateTime2),
        ("LastTestAt", DateTime2),
        ("LastTestOk", Bit),
        ("LastTestMessage", NVarChar),
    ];
    Some(match statement {
        "SELECT_CONNECTION" | "SELECT_CONNECTIONS" => connection,
        "SELECT_USERNAMES" | "SELECT_ACTIVE" => vec![("Username", NVarChar)],
        "LOCK_CONNECTION" => vec![("Username", NVarChar), ("CreatedAt", DateTime2)],
        "SELECT_RECENT_LOG" => vec![
            ("At", DateTime2),
            ("Operation", NVarChar),
            ("Username", NVarChar),
            ("Caller", NVarChar),
            ("Outcome", NVarChar),
            ("ErrorNumber", Int),
            ("Message", NVarChar),
        ],
        _ => return None,
    })
}

/// The SQLite statement the fake runs for each of the store's T-SQL statements.
fn sqlite_for(statement: &str) -> &'static str {
    match statement {
        "SELECT_CONNECTION" => {
            "SELECT Username, AuthMethod, Domain, EnvironmentName, ApiVersion, KeyName, ConsumerKey, PasswordSealed, \
             TokenSealed, KeyPasswordSealed, InstanceUrl, OrgId, CreatedAt, UpdatedAt, LastTestAt, LastTestOk, \
             LastTestMessage FROM SLAM_Connections WHERE Username = ?1"
        }
        "SELECT_CONNECTIONS" => {
            "SELECT Username, AuthMethod, Domain, EnvironmentName, ApiVersion, KeyName, ConsumerKey, PasswordSealed, \
             TokenSealed, KeyPasswordSealed, InstanceUrl, OrgId, CreatedAt, UpdatedAt, LastTestAt, LastTestOk, \
             LastTestMessage FROM SLAM_Connections ORDER BY Username"
        }
        "SELECT_USERNAMES" => "SELECT Username FROM SLAM_Connections ORDER BY Username",
        "LOCK_CONNECTION" => "SELECT Username, CreatedAt FROM SLAM_Connections WHERE Username = ?1",
        "INSERT_CONNECTION" => {
            "INSERT INTO SLAM_Connections (Username, AuthMethod, Domain, EnvironmentName, ApiVersion, KeyName, \
             ConsumerKey, PasswordSealed, TokenSealed, KeyPasswordSealed, InstanceUrl, OrgId, CreatedAt, UpdatedAt, \
             LastTestAt, LastTestOk, LastTestMessage) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             ?14, ?15, ?16, ?17)"
        }
        "UPDATE_CONNECTION" => {
            "UPDATE SLAM_Connections SET Username = ?1, AuthMethod = ?2, Domain = ?3, EnvironmentName = ?4, \
             ApiVersion = ?5, KeyName = ?6, ConsumerKey = ?7, PasswordSealed = ?8, TokenSealed = ?9, \
             KeyPasswordSealed = ?10, InstanceUrl = ?11, OrgId = ?12, UpdatedAt = ?13, LastTestAt = ?14, \
             LastTestOk = ?15, LastTestMessage = ?16 WHERE Username = ?1"
        }
        "SET_ACTIVE" => "UPDATE SLAM_Settings SET Username = ?1, UpdatedAt = ?2 WHERE Id = 1",
        "SELECT_ACTIVE" => "SELECT Username FROM SLAM_Settings WHERE Id = 1",
        "DELETE_CONNECTION" => "DELETE FROM SLAM_Connections WHERE Username = ?1",
        "CLEAR_ACTIVE_IF" => "UPDATE SLAM_Settings SET Username = NULL, UpdatedAt = ?2 WHERE Id = 1 AND Username = ?1",
        "RECORD_TEST" => {
            "UPDATE SLAM_Connections SET LastTestAt = ?2, LastTestOk = ?3, LastTestMessage = ?4, \
             InstanceUrl = COALESCE(?5, InstanceUrl), OrgId = COALESCE(?6, OrgId) WHERE Username = ?1"
        }
        "INSERT_LOG" => {
            "INSERT INTO SLAM_Log (At, Operation, Username, Caller, Outcome, ErrorNumber, Message) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        }
        "SELECT_RECENT_LOG" => {
            "SELECT At, Operation, Username, Caller, Outcome, ErrorNumber, Message FROM SLAM_Log ORDER BY Id DESC \
             LIMIT ?1"
        }
        _ => "",
    }
}

const DATETIME2: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]");

fn to_sqlite(value: &Value) -> Lite {
    match value {
        Value::Null => Lite::Null,
        Value::Int(n) => Lite::Integer(*n),
        Value::Bit(b) => Lite::Integer(i64::from(*b)),
        Value::NVarChar(s) => Lite::Text(s.clone()),
        Value::VarBinary(b) => Lite::Blob(b.clone()),
        // DATETIME2(3): SQL Server keeps milliseconds.
        Value::DateTime2(at) => Lite::Text(at.format(DATETIME2).unwrap()),
    }
}

fn from_sqlite(value: Lite, kind: &ColumnType) -> Value {
    match (value, kind) {
        (Lite::Null, _) => Value::Null,
        (Lite::Integer(n), ColumnType::Bit) => Value::Bit(n != 0),
        (Lite::Integer(n), _) => Value::Int(n),
        (Lite::Text(s), ColumnType::DateTime2) => Value::DateTime2(PrimitiveDateTime::parse(&s, DATETIME2).unwrap()),
        (Lite::Text(s), _) => Value::NVarChar(s),
        (Lite::Blob(b), _) => Value::VarBinary(b),
        (Lite::Real(r), _) => panic!("no SLAM column is a float: {r}"),
    }
}

#[derive(Default)]
struct Session {
    database: String,
    setup: Vec<String>,
    statements: usize,
    in_transaction: bool,
}

#[derive(Default)]
struct State {
    /// One SQLite database per SQL Server database with SLAM installed.
    databases: BTreeMap<String, rusqlite::Connection>,
    /// Databases that exist without SLAM.
    bare: HashSet<String>,
    sessions: BTreeMap<u32, Session>,
    /// The session (or the DBA, `u32::MAX`) whose transaction holds the SLAM tables.
    holder: BTreeMap<String, u32>,
    /// Statements executed, in order (T-SQL constant names), for assertions.
    executed: Vec<String>,
}

/// The fake server's brain: the store's statements run on SQLite, the lock and
/// login rules of SQL Server as far as the store depends on them.
#[derive(Default)]
struct SlamTables {
    state: Mutex<State>,
    released: Condvar,
}

const DBA: u32 = u32::MAX;

impl SlamTables {
    fn new() -> Arc<SlamTables> {
        Arc::default()
    }

    fn install(&self, database: &str) {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::sqlite_sql::SCHEMA).unwrap();
        self.state.lock().unwrap().databases.insert(database.into(), conn);
    }

    fn create_bare(&self, database: &str) {
        self.state.lock().unwrap().bare.insert(database.into());
    }

    /// A DBA's open transaction on the SLAM tables of `database` (or its end).
    fn dba_holds(&self, database: &str, holds: bool) {
        let mut state = self.state.lock().unwrap();
        if holds {
            state.holder.insert(database.into(), DBA);
        } else {
            state.holder.remove(database);
        }
        self.released.notify_all();
    }

    fn log_rows(&self, database: &str) -> i64 {
        let state = self.state.lock().unwrap();
        state.databases[database].query_row("SELECT COUNT(*) FROM SLAM_Log", [], |r| r.get(0)).unwrap()
    }

    fn statement_name(sql: &str) -> Option<&'static str> {
        sql::ALL.iter().find(|(_, text)| *text == sql).map(|(name, _)| *name)
    }

    fn error(number: u32, message: &str) -> Vec<Reply> {
        vec![Reply::Error(SqlError { number, class: 16, state: 1, message: message.into() })]
    }

    /// Runs `name` for `session`, waiting for another session's transaction up to
    /// the session's LOCK_TIMEOUT, as SQL Server does.
    fn run(&self, session: u32, name: &str, params: &[Param]) -> Vec<Reply> {
        let mut state = self.state.lock().unwrap();
        let database = state.sessions.get(&session).map(|s| s.database.clone()).unwrap_or_default();
        let lock_timeout = state.sessions[&session]
            .setup
            .iter()
            .find_map(|s| s.split("SET LOCK_TIMEOUT ").nth(1))
            .and_then(|rest| rest.trim_end_matches(';').trim().parse::<u64>().ok());
        let deadline = lock_timeout.map(|ms| std::time::Instant::now() + Duration::from_millis(ms));
        while let Some(holder) = state.holder.get(&database).copied()
            && holder != session
        {
            let wait = match deadline {
                Some(deadline) => deadline.saturating_duration_since(std::time::Instant::now()),
                None => Duration::from_secs(3600),
            };
            if wait.is_zero() {
                return Self::error(1222, "Lock request time out period exceeded.");
            }
            state = self.released.wait_timeout(state, wait).unwrap().0;
        }
        state.executed.push(name.to_string());
        let Some(conn) = state.databases.get(&database) else {
            return Self::error(208, "Invalid object name 'dbo.SLAM_Settings'.");
        };
        match name {
            "BEGIN" => {
                conn.execute_batch("BEGIN").unwrap();
                state.holder.insert(database.clone(), session);
                state.sessions.get_mut(&session).unwrap().in_transaction = true;
                vec![Reply::Done { rows: None }]
            }
            "COMMIT" | "ROLLBACK" => {
                let in_transaction = state.sessions[&session].in_transaction;
                if in_transaction {
                    let conn = &state.databases[&database];
                    conn.execute_batch(if name == "COMMIT" { "COMMIT" } else { "ROLLBACK" }).unwrap();
                    state.holder.remove(&database);
                    state.sessions.get_mut(&session).unwrap().in_transaction = false;
                    self.released.notify_all();
                } else if name == "COMMIT" {
                    return Self::error(3902, "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.");
                }
                vec![Reply::Done { rows: None }]
            }
            _ => {
                let sqlite = sqlite_for(name);
                let values: Vec<Lite> = params.iter().map(|p| to_sqlite(&p.value)).collect();
                let mut stmt = conn.prepare(sqlite).unwrap();
                match columns_of(name) {
                    Some(columns) => {
                        let rows = stmt
                            .query_map(rusqlite::params_from_iter(values), |row| {
                                Ok(columns
                                    .iter()
                                    .enumerate()
                                    .map(|(i, (_, kind))| from_sqlite(row.get::<_, Lite>(i).unwrap(), kind))
                                    .collect::<Vec<_>>())
                            })
                            .unwrap()
                            .collect::<Result<Vec<_>, _>>()
                            .unwrap();
                        let columns =
                            columns.into_iter().map(|(name, kind)| Column { name: name.into(), kind }).collect();
                        vec![Reply::Rows(ResultSet { columns, rows }), Reply::Done { rows: None }]
                    }
                    None => match stmt.execute(rusqlite::params_from_iter(values)) {
                        Ok(n) => vec![Reply::Done { rows: Some(n as u64) }],
                        Err(e) => Self::error(2627, &format!("statement failed: {e}")),
                    },
                }
            }
        }
    }
}

impl Handler for SlamTables {
    fn login(&self, login: &Login) -> Result<(), SqlError> {
        let user = login.user.clone().unwrap_or_default();
        let refused = |number, class, message: String| Err(SqlError { number, class, state: 1, message });
        if user != "slam_worker" || !login.password_given {
            return refused(18456, 14, format!("Login failed for user '{user}'."));
        }
        let mut state = self.state.lock().unwrap();
        if !state.databases.contains_key(&login.database) && !state.bare.contains(&login.database) {
            return refused(
                4060,
                11,
                format!("Cannot open database \"{}\" requested by the login. The login failed.", login.database),
            );
        }
        state.sessions.insert(login.session, Session { database: login.database.clone(), ..Default::default() });
        Ok(())
    }

    fn batch(&self, session: u32, sql: &str) -> Vec<Reply> {
        if sql.starts_with("SET ") {
            let mut state = self.state.lock().unwrap();
            let s = state.sessions.get_mut(&session).unwrap();
            s.setup.push(sql.to_string());
            return vec![Reply::Done { rows: None }];
        }
        if sql == sql::INSTALLED {
            let state = self.state.lock().unwrap();
            let installed = state.databases.contains_key(&state.sessions[&session].database);
            let columns = vec![Column { name: "Installed".into(), kind: ColumnType::Bit }];
            return vec![
                Reply::Rows(ResultSet { columns, rows: vec![vec![Value::Bit(installed)]] }),
                Reply::Done { rows: Some(1) },
            ];
        }
        if sql == "SELECT @@VERSION;" {
            let columns = vec![Column { name: String::new(), kind: ColumnType::NVarChar }];
            let version = "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) (fake)\n\tDeveloper Edition";
            return vec![
                Reply::Rows(ResultSet { columns, rows: vec![vec![Value::NVarChar(version.into())]] }),
                Reply::Done { rows: Some(1) },
            ];
        }
        self.statement(session, sql, &[])
    }

    fn execute(&self, session: u32, sql: &str, params: &[Param]) -> Vec<Reply> {
        self.statement(session, sql, params)
    }

    fn disconnect(&self, session: u32) {
        let mut state = self.state.lock().unwrap();
        if let Some(s) = state.sessions.remove(&session)
            && s.in_transaction
        {
            // The server rolls back what a closed connection held.
            let _ = state.databases[&s.database].execute_batch("ROLLBACK");
            state.holder.remove(&s.database);
            self.released.notify_all();
        }
    }
}

impl SlamTables {
    fn statement(&self, session: u32, sql: &str, params: &[Param]) -> Vec<Reply> {
        {
            let mut state = self.state.lock().unwrap();
            let s = state.sessions.get_mut(&session).unwrap();
            s.statements += 1;
            if s.setup.is_empty() {
                return Self::error(50000, "fake: a statement came before the session's SET options");
            }
        }
        match Self::statement_name(sql) {
            Some(name) => self.run(session, name, params),
            None => Self::error(50000, &format!("fake: not a statement of the SLAM store: {sql}")),
        }
    }
}

/// The error and its causes, as the operations show them.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A fake server (TLS on, as every real SQL Server offers it) and settings that
/// trust its CA: the login is encrypted, then the session runs in the clear
/// (`optional`), unless a test asks for more.
struct Fake {
    tables: Arc<SlamTables>,
    server: FakeSqlServer,
    _ca_dir: tempfile::TempDir,
    settings: SqlServerSettings,
}

fn start(tables: Arc<SlamTables>, password: &str) -> Fake {
    let server = FakeSqlServer::start(tables.clone(), Tls::Required).unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let mut settings = SqlServerSettings::new(
        ServerAddress::parse(&format!("127.0.0.1,{}", server.addr().port())).unwrap(),
        SqlAuth::Login { user: "slam_worker".into(), password: secrecy::SecretString::from(password.to_string()) },
        Encrypt::Optional,
    );
    settings.ca_file = Some(server.write_ca_file(ca_dir.path()).unwrap());
    // SChannel (Windows' TLS, and Wine's) insists on revocation information for a
    // CA given as a file, which a test CA has none of (CERT_E_REVOCATION_FAILURE):
    // the Windows build of these tests trusts the fake's certificate outright.
    settings.trust_server_certificate = cfg!(windows);
    settings.lock_timeout = Duration::from_millis(300);
    settings.connect_timeout = Duration::from_secs(5);
    Fake { tables, server, _ca_dir: ca_dir, settings }
}

fn fake() -> (Fake, SqlServerOpener) {
    let tables = SlamTables::new();
    tables.install("Sales");
    let fake = start(tables, "worker-pw");
    let opener = SqlServerOpener::new(fake.settings.clone()).unwrap();
    (fake, opener)
}

#[test]
fn the_sql_server_store_passes_the_conformance_suite_over_tds() {
    let fake = start(SlamTables::new(), "worker-pw");
    let (tables, opener) = (fake.tables.clone(), SqlServerOpener::new(fake.settings.clone()).unwrap());
    let mut n = 0;
    conformance::run_all(&mut || {
        n += 1;
        let database = format!("Db{n}");
        tables.install(&database);
        opener.open(Some(&database)).unwrap()
    });
}

#[test]
fn every_session_sets_xact_abort_and_a_lock_timeout_first_and_connections_are_reused() {
    let (fake, opener) = fake();
    let (tables, server) = (&fake.tables, &fake.server);
    for _ in 0..5 {
        let mut store = opener.open(Some("Sales")).unwrap();
        store.save_and_activate(&conformance::record("a@acme.com"), &conformance::log("add")).unwrap();
        assert_eq!(store.active_username().unwrap().as_deref(), Some("a@acme.com"));
    }
    let logins = server.logins();
    assert_eq!(logins.len(), 1, "five operations, one pooled connection: {logins:?}");
    assert_eq!(logins[0].app_name, APPLICATION_NAME, "DBAs see the worker's sessions by name");
    assert_eq!(logins[0].database, "Sales");
    let state = tables.state.lock().unwrap();
    let session = state.sessions.values().next().unwrap();
    assert_eq!(session.setup, ["SET XACT_ABORT ON; SET LOCK_TIMEOUT 300;"]);
    assert!(session.statements > 10);
}

#[test]
fn a_transaction_holding_the_tables_makes_the_change_fail_as_locked_and_nothing_is_written() {
    let (fake, opener) = fake();
    let tables = &fake.tables;
    let mut store = opener.open(Some("Sales")).unwrap();
    store.save_and_activate(&conformance::record("a@acme.com"), &conformance::log("add")).unwrap();
    tables.dba_holds("Sales", true);
    let started = std::time::Instant::now();
    let error = store.activate("a@acme.com", &conformance::log("use")).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited for the LOCK_TIMEOUT");
    tables.dba_holds("Sales", false);
    assert_eq!(tables.log_rows("Sales"), 1, "the locked call wrote nothing");
    // The store recovers with a new connection once the DBA commits.
    store.activate("a@acme.com", &conformance::log("use")).unwrap();
    assert_eq!(tables.log_rows("Sales"), 2);
}

#[test]
fn a_database_without_slam_or_that_the_login_cannot_open_is_not_installed() {
    let (fake, opener) = fake();
    fake.tables.create_bare("Bare");
    for database in ["Bare", "Missing"] {
        let error = opener.open(Some(database)).unwrap().list().unwrap_err();
        assert!(matches!(&error, StoreError::NotInstalled { store } if store.ends_with(database)), "{error:?}");
    }
}

#[test]
fn a_refused_login_says_so_without_the_password() {
    let (fake, _) = fake();
    let mut settings = fake.settings.clone();
    settings.auth = SqlAuth::Login { user: "intruder".into(), password: "wrong-password-123".to_string().into() };
    let opener = SqlServerOpener::new(settings).unwrap();
    let error = opener.open(Some("Sales")).unwrap().list().unwrap_err();
    let text = with_causes(&error);
    assert!(matches!(error, StoreError::Unreachable { .. }), "{error:?}");
    assert!(text.contains("Login failed for user 'intruder'"), "{text}");
    assert!(!text.contains("wrong-password-123"), "{text}");
}

#[test]
fn no_database_named_is_refused_with_what_to_pass() {
    let (_fake, opener) = fake();
    let error = opener.open(None).err().unwrap();
    assert!(with_causes(&error).contains("--database"), "{error:?}");
}

#[test]
fn check_reports_the_server_version_and_a_missing_install() {
    let (fake, opener) = fake();
    let tables = &fake.tables;
    let report = opener.check(Some("Sales")).unwrap();
    assert!(report.version.starts_with("Microsoft SQL Server 2022"), "{report:?}");
    assert_eq!(report.installed, Some(true));
    tables.create_bare("Bare");
    assert_eq!(opener.check(Some("Bare")).unwrap().installed, Some(false));
    assert!(matches!(opener.check(Some("Missing")), Err(StoreError::NotInstalled { .. })));
}

#[test]
fn the_whole_session_is_encrypted_when_mandatory_and_only_a_trusted_server_is_accepted() {
    let (fake, _) = fake();
    let mut settings = fake.settings.clone();
    settings.encrypt = Encrypt::Mandatory;
    let mut untrusted = settings.clone();
    untrusted.ca_file = None;
    untrusted.trust_server_certificate = false;
    let refused = SqlServerOpener::new(untrusted).unwrap().open(Some("Sales")).unwrap().list().unwrap_err();
    assert!(matches!(refused, StoreError::Unreachable { .. }), "an unknown CA is refused: {refused:?}");
    let opener = SqlServerOpener::new(settings).unwrap();
    let mut store = opener.open(Some("Sales")).unwrap();
    store.save_and_activate(&conformance::record("tls@acme.com"), &conformance::log("add")).unwrap();
    assert!(store.get("tls@acme.com").unwrap().is_some());
    assert!(fake.server.logins().iter().all(|l| l.encrypted));
}

#[test]
fn every_statement_passes_the_t_sql_gate() {
    let mut statements: Vec<(&str, String)> = sql::ALL.iter().map(|(n, s)| (*n, s.to_string())).collect();
    statements.push(("session_setup", sql::session_setup(10_000)));
    for (name, text) in statements {
        let problems = slam_tsql::check(&text);
        assert!(problems.is_empty(), "{name}: {problems:?}\n{text}");
    }
}
