//! `slam-worker --check-config`: beyond parsing, whether what the settings name is
//! there and usable, so a DBA finds out before the service fails to start.
//!
//! Nothing is created or changed: a data directory or log directory that does not
//! exist is reported, not made.

use crate::config::{StoreKind, WorkerSettings};
use crate::serve::Worker;
use slam_protocol::{ErrorCode, SlamError};
use std::path::Path;

/// Every problem found on this machine (empty when the worker can start with these
/// settings); the SQL Server connection is checked by [`sqlserver`].
pub fn environment(settings: &WorkerSettings) -> Vec<SlamError> {
    let mut problems = Vec::new();
    match slam_core::data_dir::DataDir::open(&settings.data_dir) {
        Ok(dir) => {
            if is_read_only(dir.path()) {
                problems.push(problem("data_dir", format!("{} is read-only", dir.path().display())));
            }
        }
        Err(e) => problems.push(problem("data_dir", e.to_string()).with_hint(
            "the installer creates it; for a standalone worker create it and restrict it to the worker's account",
        )),
    }
    if let Some(error) = settings.untrusted_files() {
        problems.push(error);
    }
    // Building the worker loads the extra CA file and checks the proxy.
    if let Err(e) = Worker::new(settings) {
        problems.push(e);
    }
    if !settings.log.file.is_empty() {
        let file = Path::new(&settings.log.file);
        let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() && !meta.permissions().readonly() => {}
            Ok(_) => problems.push(problem("log.file", format!("{} is not a writable directory", dir.display()))),
            Err(e) => problems.push(problem("log.file", format!("{}: {e}", dir.display()))),
        }
    }
    problems.extend(pipe_problems(settings));
    problems
}

/// For `store = "sqlserver"`: connects as the worker will and says what it found
/// (the server, and whether SLAM is installed in `default_database`), or why it
/// could not. `None` for the SQLite store.
pub fn sqlserver(settings: &WorkerSettings) -> Option<Result<String, SlamError>> {
    if settings.store_kind().ok()? != StoreKind::SqlServer {
        return None;
    }
    Some(sqlserver_report(settings))
}

fn sqlserver_report(settings: &WorkerSettings) -> Result<String, SlamError> {
    let sql = settings.sqlserver_settings()?;
    let server = sql.server.to_string();
    let database = sql.default_database.clone();
    let opener = slam_store::SqlServerOpener::new(sql)
        .map_err(|e| problem("sqlserver.server", slam_core::ops::with_causes(&e)))?;
    let report = opener.check(database.as_deref()).map_err(|e| {
        let hint = match &e {
            slam_store::StoreError::NotInstalled { .. } => {
                "run sql/slam-install.sql in that database (or `slam install-sql`): it creates the tables and the \
                 worker's user"
            }
            _ => {
                "check `server` (host, `host,port` or `host\\INSTANCE`), that TCP/IP is enabled for the instance, \
                 `encrypt` and the server's certificate, and that the worker's login exists (sql/slam-master.sql)"
            }
        };
        problem("sqlserver.server", slam_core::ops::with_causes(&e)).with_hint(hint)
    })?;
    Ok(match (database, report.installed) {
        (Some(db), Some(true)) => {
            format!("SQL Server {server}: connected ({}); SLAM is installed in {db}", report.version)
        }
        (Some(db), _) => {
            return Err(problem("sqlserver.default_database", format!("SLAM is not installed in {server}/{db}"))
                .with_hint("run sql/slam-install.sql in that database (or `slam install-sql`)"));
        }
        (None, _) => {
            format!("SQL Server {server}: connected ({}); each request uses the database it comes from", report.version)
        }
    })
}

fn problem(setting: &str, text: impl std::fmt::Display) -> SlamError {
    SlamError::new(ErrorCode::ConfigInvalid, format!("`{setting}`: {text}"))
}

fn is_read_only(dir: &Path) -> bool {
    std::fs::metadata(dir).map(|m| m.permissions().readonly()).unwrap_or(false)
}

#[cfg(unix)]
fn pipe_problems(settings: &WorkerSettings) -> Vec<SlamError> {
    let path = Path::new(&settings.pipe);
    let mut problems = Vec::new();
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => problems.push(
            problem("pipe", format!("the socket's directory {} does not exist", dir.display()))
                .with_hint("create it (systemd: `RuntimeDirectory=speediful`) or choose another `pipe`"),
        ),
        _ => {}
    }
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_ok() {
        problems.push(problem("pipe", format!("a worker already listens on {}", path.display())));
    }
    problems
}

#[cfg(windows)]
fn pipe_problems(settings: &WorkerSettings) -> Vec<SlamError> {
    match crate::pipe::security_for(&settings.allowed_clients) {
        Ok(_) => Vec::new(),
        Err(e) => vec![e],
    }
}
