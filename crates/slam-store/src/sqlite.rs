//! The embedded store: one SQLite file, opened per operation.
//!
//! Several processes (CLI runs, the worker) may use the file at once: WAL journal,
//! a busy timeout, and `BEGIN IMMEDIATE` for every write so writers queue instead of
//! failing on lock upgrades.

use crate::sqlite_sql as sql;
use crate::{ConnectionRecord, LogEntry, RemoveOutcome, SaveOutcome, Store, StoreError, TestResult};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::path::Path;
use std::time::Duration;

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `SLAM_Settings`, `SLAM_Connections` and `SLAM_Log` in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
}

fn sql_error(action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| {
        // SQLITE_BUSY after the busy timeout: another connection's transaction.
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
            StoreError::Locked { action }
        } else {
            StoreError::Sql { action, source: Box::new(source) }
        }
    }
}

/// Opens `DATA_DIR/slam.db` (or any SQLite file) for each operation.
#[derive(Debug, Clone)]
pub struct SqliteOpener {
    path: std::path::PathBuf,
}

impl SqliteOpener {
    /// The store in the SQLite file at `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl crate::StoreOpener for SqliteOpener {
    fn open(&self, _database: Option<&str>) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(SqliteStore::open(&self.path)?))
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`. On Unix a new file is created
    /// owner-only before SQLite opens it; SQLite gives its `-wal` and `-shm` files the
    /// database file's permissions.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_waiting(path, BUSY_TIMEOUT)
    }

    /// As [`SqliteStore::open`], waiting at most `wait` for another connection's
    /// transaction before a statement fails with [`StoreError::Locked`].
    pub fn open_waiting(path: &Path, wait: Duration) -> Result<Self, StoreError> {
        let open_error = |source: rusqlite::Error| match sql_error("opening the store")(source) {
            StoreError::Sql { source, .. } => StoreError::Open { store: path.display().to_string(), source },
            locked => locked,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
            if let Err(e) = created
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(StoreError::Open { store: path.display().to_string(), source: Box::new(e) });
            }
        }
        let conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(wait).map_err(open_error)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_error)?;
        // Deleted or replaced rows (sealed secrets among them) are overwritten with
        // zeros rather than left in free pages.
        conn.pragma_update(None, "secure_delete", "ON").map_err(open_error)?;
        conn.execute_batch(sql::SCHEMA).map_err(open_error)?;
        Ok(Self { conn })
    }

    /// Copies the WAL into the database file and truncates it, so the page images
    /// that still held a removed or replaced secret are gone from both files. Best
    /// effort: a reader in another process can hold back part of it until the next
    /// write's checkpoint.
    fn purge_wal(&self) {
        if let Err(e) = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "checkpoint after removing a secret failed");
        }
    }

    /// A store in memory (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        let open_error =
            |source: rusqlite::Error| StoreError::Open { store: ":memory:".into(), source: Box::new(source) };
        let conn = Connection::open_in_memory().map_err(open_error)?;
        conn.execute_batch(sql::SCHEMA).map_err(open_error)?;
        Ok(Self { conn })
    }

    fn write<T>(
        &mut self,
        action: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_error(action))?;
        let value = f(&tx)?;
        tx.commit().map_err(sql_error(action))?;
        Ok(value)
    }
}

fn insert_log(tx: &rusqlite::Transaction<'_>, log: &LogEntry) -> Result<(), StoreError> {
    tx.execute(
        sql::INSERT_LOG,
        params![log.at, log.operation, log.username, log.caller, log.outcome, log.error_number, log.message],
    )
    .map_err(sql_error("writing the log"))?;
    Ok(())
}

fn usernames(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(sql::SELECT_USERNAMES).map_err(sql_error("listing connections"))?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(sql_error("listing connections"))?;
    rows.collect::<Result<_, _>>().map_err(sql_error("listing connections"))
}

fn exists(conn: &Connection, username: &str) -> Result<bool, StoreError> {
    conn.query_row(sql::SELECT_CREATED_AT, [username], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(sql_error("reading a connection"))
}

fn not_found(conn: &Connection, username: &str) -> StoreError {
    StoreError::NotFound { username: username.to_string(), known: usernames(conn).unwrap_or_default() }
}

fn record_from(row: &Row<'_>) -> rusqlite::Result<ConnectionRecord> {
    Ok(ConnectionRecord {
        username: row.get(0)?,
        auth_method: row.get(1)?,
        domain: row.get(2)?,
        environment_name: row.get(3)?,
        api_version: row.get(4)?,
        key_name: row.get(5)?,
        consumer_key: row.get(6)?,
        password_sealed: row.get(7)?,
        token_sealed: row.get(8)?,
        key_password_sealed: row.get(9)?,
        instance_url: row.get(10)?,
        org_id: row.get(11)?,
        created_at: row.get(12)?,
        updated_at: row.get(13)?,
        last_test_at: row.get(14)?,
        last_test_ok: row.get(15)?,
        last_test_message: row.get(16)?,
    })
}

impl Store for SqliteStore {
    fn save_and_activate(&mut self, r: &ConnectionRecord, log: &LogEntry) -> Result<SaveOutcome, StoreError> {
        self.write("saving a connection", |tx| {
            let created: Option<String> = tx
                .query_row(sql::SELECT_CREATED_AT, [&r.username], |row| row.get(0))
                .optional()
                .map_err(sql_error("reading a connection"))?;
            let replaced = created.is_some();
            tx.execute(
                sql::UPSERT_CONNECTION,
                params![
                    r.username,
                    r.auth_method,
                    r.domain,
                    r.environment_name,
                    r.api_version,
                    r.key_name,
                    r.consumer_key,
                    r.password_sealed,
                    r.token_sealed,
                    r.key_password_sealed,
                    r.instance_url,
                    r.org_id,
                    created.as_deref().unwrap_or(&r.created_at),
                    r.updated_at,
                    r.last_test_at,
                    r.last_test_ok,
                    r.last_test_message
                ],
            )
            .map_err(sql_error("saving a connection"))?;
            tx.execute(sql::SET_ACTIVE, params![r.username, r.updated_at]).map_err(sql_error("activating"))?;
            insert_log(tx, log)?;
            Ok(SaveOutcome { replaced })
        })
        .inspect(|outcome| {
            if outcome.replaced {
                self.purge_wal();
            }
        })
    }

    fn get(&mut self, username: &str) -> Result<Option<ConnectionRecord>, StoreError> {
        self.conn
            .query_row(sql::SELECT_CONNECTION, [username], record_from)
            .optional()
            .map_err(sql_error("reading a connection"))
    }

    fn list(&mut self) -> Result<Vec<ConnectionRecord>, StoreError> {
        let mut stmt = self.conn.prepare(sql::SELECT_CONNECTIONS).map_err(sql_error("listing connections"))?;
        let rows = stmt.query_map([], record_from).map_err(sql_error("listing connections"))?;
        rows.collect::<Result<_, _>>().map_err(sql_error("listing connections"))
    }

    fn active_username(&mut self) -> Result<Option<String>, StoreError> {
        self.conn.query_row(sql::SELECT_ACTIVE, [], |r| r.get(0)).map_err(sql_error("reading SLAM_Settings"))
    }

    fn activate(&mut self, username: &str, log: &LogEntry) -> Result<(), StoreError> {
        self.write("activating a connection", |tx| {
            if !exists(tx, username)? {
                return Err(not_found(tx, username));
            }
            // Store the username as the connection spells it.
            let stored: String =
                tx.query_row(sql::SELECT_STORED_USERNAME, [username], |r| r.get(0)).map_err(sql_error("activating"))?;
            tx.execute(sql::SET_ACTIVE, params![stored, log.at]).map_err(sql_error("activating"))?;
            insert_log(tx, log)
        })
    }

    fn remove(&mut self, username: &str, log: &LogEntry) -> Result<RemoveOutcome, StoreError> {
        self.write("removing a connection", |tx| {
            if !exists(tx, username)? {
                return Err(not_found(tx, username));
            }
            tx.execute(sql::DELETE_CONNECTION, [username]).map_err(sql_error("removing a connection"))?;
            let cleared =
                tx.execute(sql::CLEAR_ACTIVE_IF, params![username, log.at]).map_err(sql_error("updating settings"))?;
            insert_log(tx, log)?;
            Ok(RemoveOutcome { was_active: cleared > 0 })
        })
        .inspect(|_| self.purge_wal())
    }

    fn record_test(&mut self, username: &str, t: &TestResult, log: &LogEntry) -> Result<(), StoreError> {
        self.write("recording a test", |tx| {
            let updated = tx
                .execute(sql::RECORD_TEST, params![username, t.at, t.ok, t.message, t.instance_url, t.org_id])
                .map_err(sql_error("recording a test"))?;
            if updated == 0 {
                return Err(not_found(tx, username));
            }
            insert_log(tx, log)
        })
    }

    fn append_log(&mut self, log: &LogEntry) -> Result<(), StoreError> {
        self.write("writing the log", |tx| insert_log(tx, log))
    }

    fn recent_log(&mut self, limit: u32) -> Result<Vec<LogEntry>, StoreError> {
        let mut stmt = self.conn.prepare(sql::SELECT_RECENT_LOG).map_err(sql_error("reading the log"))?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(LogEntry {
                    at: r.get(0)?,
                    operation: r.get(1)?,
                    username: r.get(2)?,
                    caller: r.get(3)?,
                    outcome: r.get(4)?,
                    error_number: r.get(5)?,
                    message: r.get(6)?,
                })
            })
            .map_err(sql_error("reading the log"))?;
        rows.collect::<Result<_, _>>().map_err(sql_error("reading the log"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_in_memory_passes_the_conformance_suite() {
        crate::conformance::run_all(&mut || Box::new(SqliteStore::in_memory().unwrap()));
    }

    #[test]
    fn sqlite_file_passes_the_conformance_suite_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slam.db");
        let mut n = 0;
        crate::conformance::run_all(&mut || {
            n += 1;
            Box::new(SqliteStore::open(&dir.path().join(format!("c{n}.db"))).unwrap())
        });
        let mut store = SqliteStore::open(&path).unwrap();
        let record = crate::conformance::record("persist@acme.com");
        store.save_and_activate(&record, &crate::conformance::log("add_connection")).unwrap();
        drop(store);
        let mut again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.get("persist@acme.com").unwrap(), Some(record));
        assert_eq!(again.active_username().unwrap().as_deref(), Some("persist@acme.com"));
    }

    #[test]
    fn a_transaction_holding_the_tables_is_reported_as_locked_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slam.db");
        let opener = SqliteOpener::new(&path);
        let mut first = crate::StoreOpener::open(&opener, None).unwrap();
        first.save_and_activate(&crate::conformance::record("a@acme.com"), &crate::conformance::log("add")).unwrap();
        // A DBA's open transaction in another connection.
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE; DELETE FROM SLAM_Log;").unwrap();
        let error = SqliteStore::open_waiting(&path, Duration::from_millis(100))
            .and_then(|mut store| store.activate("a@acme.com", &crate::conformance::log("use")))
            .unwrap_err();
        assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
        assert!(error.to_string().contains("another transaction held the SLAM tables"), "{error}");
        holder.execute_batch("ROLLBACK").unwrap();
        assert_eq!(first.recent_log(10).unwrap().len(), 1, "the locked call wrote nothing");
    }
}

#[cfg(test)]
mod purge_tests {
    use super::*;

    /// Every byte SQLite keeps for the store at `path` (main file, WAL, shared memory).
    fn file_bytes(path: &Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            bytes.extend(std::fs::read(format!("{}{suffix}", path.display())).unwrap_or_default());
        }
        bytes
    }

    fn holds(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn removed_and_replaced_secrets_leave_no_bytes_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slam.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let old_secret = b"OLD-SEALED-SECRET-0123456789".to_vec();
        let new_secret = b"NEW-SEALED-SECRET-9876543210".to_vec();
        let mut record = crate::conformance::record("purge@acme.com");
        record.password_sealed = Some(old_secret.clone());
        store.save_and_activate(&record, &crate::conformance::log("add_connection")).unwrap();
        assert!(holds(&file_bytes(&path), &old_secret), "the test can see a stored secret");

        record.password_sealed = Some(new_secret.clone());
        store.save_and_activate(&record, &crate::conformance::log("add_connection")).unwrap();
        assert!(!holds(&file_bytes(&path), &old_secret), "a replaced secret stayed on disk");
        store.remove("purge@acme.com", &crate::conformance::log("remove_connection")).unwrap();
        let bytes = file_bytes(&path);
        assert!(!holds(&bytes, &old_secret), "a replaced secret stayed on disk");
        assert!(!holds(&bytes, &new_secret), "a removed secret stayed on disk");
    }
}
