//! The worker's logs: structured `tracing` events to standard error in the
//! foreground, or to a daily-rotated file (the service has no terminal).
//!
//! What is logged per request (id, operation, caller, outcome, duration) is in
//! `serve`; no secret ever reaches an event, because requests' arguments are
//! never logged and `slam-core` keeps secrets in types whose `Debug` redacts.

use crate::config::LogSettings;
use slam_protocol::{ErrorCode, SlamError};
use std::path::{Path, PathBuf};
use tracing_subscriber::EnvFilter;

/// Keeps the file writer's background thread alive; logs are flushed on drop.
pub struct LogGuard {
    _guard: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Where a service with no `log.file` writes.
pub fn default_log_file(data_dir: &Path) -> PathBuf {
    data_dir.join("logs").join("slam-worker.log")
}

/// Installs the global subscriber. `file` (when given) gets a daily-rotated file,
/// else standard error. `SLAM_LOG` overrides `settings.level`.
pub fn init(settings: &LogSettings, file: Option<&Path>) -> Result<LogGuard, SlamError> {
    let filter = EnvFilter::try_from_env("SLAM_LOG").or_else(|_| EnvFilter::try_new(&settings.level)).map_err(|e| {
        SlamError::new(ErrorCode::ConfigInvalid, format!("`log.level`: `{}` is not a log level: {e}", settings.level))
    })?;
    match file {
        None => {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            Ok(LogGuard { _guard: None })
        }
        Some(path) => {
            let appender = rolling_appender(path, settings.max_files)?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false).init();
            Ok(LogGuard { _guard: Some(guard) })
        }
    }
}

/// A daily-rotated appender for `path` (`DIR/NAME.EXT` → `DIR/NAME.YYYY-MM-DD.EXT`),
/// creating its directory. Fails with the path named if it cannot be written.
pub fn rolling_appender(
    path: &Path,
    max_files: usize,
) -> Result<tracing_appender::rolling::RollingFileAppender, SlamError> {
    let cannot = |e: &dyn std::fmt::Display| {
        SlamError::new(ErrorCode::ConfigInvalid, format!("`log.file`: cannot write {}: {e}", path.display()))
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| cannot(&e))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("slam-worker");
    let mut builder = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(stem)
        .max_log_files(max_files);
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        builder = builder.filename_suffix(ext);
    }
    builder.build(dir).map_err(|e| cannot(&e))
}
