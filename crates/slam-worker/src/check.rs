//! `slam-worker --check-config`: beyond parsing, whether what the settings name is
//! there and usable, so a DBA finds out before the service fails to start.
//!
//! Nothing is created or changed: a data directory or log directory that does not
//! exist is reported, not made.

use crate::config::WorkerSettings;
use crate::serve::Worker;
use slam_protocol::{ErrorCode, SlamError};
use std::path::Path;

/// Every problem found (empty when the worker can start with these settings).
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
