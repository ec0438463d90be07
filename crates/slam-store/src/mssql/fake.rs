//! The SLAM tables behind a fake SQL Server: a `slam_testkit::tds::Handler` that
//! runs each statement of the SQL Server store (`sql.rs`) as its SQLite equivalent
//! and answers with SQL Server's types, errors and lock waits. Tests of the store,
//! and of the worker with `store = "sqlserver"`, run the real driver against it.
//! Anything the store does not send is refused, so a new statement without its
//! SQLite twin here fails the tests that use it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use super::sql;
use rusqlite::types::Value as Lite;
use slam_testkit::tds::{Column, ColumnType, Handler, Login, Param, Reply, ResultSet, SqlError, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use time::PrimitiveDateTime;

/// The SQL login the fake accepts.
pub const WORKER_LOGIN: &str = "slam_worker";

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
        "SET_ACTIVE" => {
            "INSERT INTO SLAM_Settings (Id, Username, UpdatedAt) VALUES (1, ?1, ?2) \
             ON CONFLICT(Id) DO UPDATE SET Username = excluded.Username, UpdatedAt = excluded.UpdatedAt"
        }
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

/// `(parameter index, table, column, NVARCHAR width)` of the text a statement writes,
/// as `sql/slam-install.sql` declares the columns: SQLite has no widths, SQL Server
/// refuses a longer value with error 2628.
fn widths_of(statement: &str) -> &'static [(usize, &'static str, &'static str, usize)] {
    match statement {
        "INSERT_LOG" => &[
            (1, "SLAM_Log", "Operation", 64),
            (2, "SLAM_Log", "Username", 255),
            (3, "SLAM_Log", "Caller", 512),
            (4, "SLAM_Log", "Outcome", 16),
            (6, "SLAM_Log", "Message", 4000),
        ],
        "RECORD_TEST" => &[(3, "SLAM_Connections", "LastTestMessage", 2000)],
        "UPDATE_CONNECTION" => &[(15, "SLAM_Connections", "LastTestMessage", 2000)],
        "INSERT_CONNECTION" => &[(16, "SLAM_Connections", "LastTestMessage", 2000)],
        _ => &[],
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
pub(crate) struct Session {
    pub(crate) database: String,
    pub(crate) setup: Vec<String>,
    pub(crate) statements: usize,
    /// Ended by [`SlamTables::end_sessions`]: everything it sends fails.
    pub(crate) ended: bool,
    pub(crate) in_transaction: bool,
}

#[derive(Default)]
pub(crate) struct State {
    /// One SQLite database per SQL Server database with SLAM installed.
    pub(crate) databases: BTreeMap<String, rusqlite::Connection>,
    /// Databases that exist without SLAM.
    pub(crate) bare: HashSet<String>,
    pub(crate) sessions: BTreeMap<u32, Session>,
    /// The session (or the DBA, `u32::MAX`) whose transaction holds the SLAM tables.
    pub(crate) holder: BTreeMap<String, u32>,
    /// Statements executed, in order (T-SQL constant names), for assertions.
    pub(crate) executed: Vec<String>,
}

/// The fake server's brain: the store's statements run on SQLite, the lock and
/// login rules of SQL Server as far as the store depends on them.
#[derive(Default)]
pub struct SlamTables {
    pub(crate) state: Mutex<State>,
    released: Condvar,
}

const DBA: u32 = u32::MAX;

impl SlamTables {
    /// No databases yet.
    pub fn new() -> Arc<SlamTables> {
        Arc::default()
    }

    /// A database where `slam-install.sql` ran.
    pub fn install(&self, database: &str) {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::sqlite_sql::SCHEMA).unwrap();
        self.state.lock().unwrap().databases.insert(database.into(), conn);
    }

    /// A database without SLAM.
    pub fn create_bare(&self, database: &str) {
        self.state.lock().unwrap().bare.insert(database.into());
    }

    /// A DBA's open transaction on the SLAM tables of `database` (or its end).
    pub fn dba_holds(&self, database: &str, holds: bool) {
        let mut state = self.state.lock().unwrap();
        if holds {
            state.holder.insert(database.into(), DBA);
        } else {
            state.holder.remove(database);
        }
        self.released.notify_all();
    }

    /// Rows in `SLAM_Log`.
    pub fn log_rows(&self, database: &str) -> i64 {
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
                for &(index, table, column, width) in widths_of(name) {
                    if let Some(Value::NVarChar(text)) = params.get(index).map(|p| &p.value)
                        && text.encode_utf16().count() > width
                    {
                        return Self::error(
                            2628,
                            &format!(
                                "String or binary data would be truncated in table '{database}.dbo.{table}', column \
                                 '{column}'. Truncated value: '{}'.",
                                text.chars().take(40).collect::<String>()
                            ),
                        );
                    }
                }
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
        if user != WORKER_LOGIN || !login.password_given {
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
        if self.state.lock().unwrap().sessions.get(&session).is_some_and(|s| s.ended) {
            return Self::ended();
        }
        if sql == sql::PROBE {
            let columns = vec![Column { name: "Alive".into(), kind: ColumnType::Int }];
            return vec![
                Reply::Rows(ResultSet { columns, rows: vec![vec![Value::Int(1)]] }),
                Reply::Done { rows: Some(1) },
            ];
        }
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
        if self.state.lock().unwrap().sessions.get(&session).is_some_and(|s| s.ended) {
            return Self::ended();
        }
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

impl SlamTables {
    /// What a server restart or failover does to the sessions open now: each fails
    /// whatever it sends next (a real server closes the socket; the client sees an
    /// error either way).
    pub fn end_sessions(&self) {
        for session in self.state.lock().unwrap().sessions.values_mut() {
            session.ended = true;
        }
    }

    fn ended() -> Vec<Reply> {
        vec![Reply::Error(SqlError {
            number: 596,
            class: 21,
            state: 1,
            message: "Cannot continue the execution because the session is in the kill state.".into(),
        })]
    }

    /// A DBA's `DELETE FROM dbo.SLAM_Settings` in `database`.
    pub fn delete_settings_row(&self, database: &str) {
        let state = self.state.lock().unwrap();
        state.databases[database].execute("DELETE FROM SLAM_Settings", []).unwrap();
    }

    /// `LastTestMessage` of `username` in `database`.
    pub fn last_test_message(&self, database: &str, username: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        state.databases[database]
            .query_row("SELECT LastTestMessage FROM SLAM_Connections WHERE Username = ?1", [username], |r| r.get(0))
            .unwrap()
    }

    /// `Caller` and `Message` of the newest `SLAM_Log` row in `database`.
    pub fn newest_log_texts(&self, database: &str) -> (String, String) {
        let state = self.state.lock().unwrap();
        state.databases[database]
            .query_row("SELECT Caller, Message FROM SLAM_Log ORDER BY Id DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    }

    /// `SLAM_Settings.Username` in `database`.
    pub fn active_username(&self, database: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        state.databases[database]
            .query_row("SELECT Username FROM SLAM_Settings WHERE Id = 1", [], |r| r.get(0))
            .unwrap()
    }

    /// `(Operation, Caller, Outcome)` of every `SLAM_Log` row in `database`, oldest first.
    pub fn log(&self, database: &str) -> Vec<(String, String, String)> {
        let state = self.state.lock().unwrap();
        let mut stmt =
            state.databases[database].prepare("SELECT Operation, Caller, Outcome FROM SLAM_Log ORDER BY Id").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
    }

    /// Every `*Sealed` byte stored in `database`, to check that no secret is in clear.
    pub fn sealed_bytes(&self, database: &str) -> Vec<u8> {
        let state = self.state.lock().unwrap();
        let mut stmt = state.databases[database]
            .prepare("SELECT COALESCE(PasswordSealed, x''), COALESCE(TokenSealed, x''), COALESCE(KeyPasswordSealed, x'') FROM SLAM_Connections")
            .unwrap();
        let rows = stmt.query_map([], |r| Ok([r.get::<_, Vec<u8>>(0)?, r.get(1)?, r.get(2)?].concat())).unwrap();
        rows.flat_map(|r| r.unwrap()).collect()
    }
}
