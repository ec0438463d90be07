//! The SLAM worker: the long-running process the SQL Server side talks to.
//!
//! A transport ([`unix`] sockets, or the Windows named pipe in `pipe`) accepts
//! connections and hands each to the transport-independent [`serve`] module: read
//! one [`Request`] frame, run it through `slam_core::ops::dispatch`, stream the
//! `message` / `result_set` frames back, end with exactly one `done`. The same
//! entry points serve the foreground binary, the Windows service, tests and
//! benchmarks. [`config`] is the TOML file; [`locks`] serialises operations on the
//! same keypair or Salesforce user.
//!
//! [`Request`]: slam_protocol::Request

#![deny(missing_docs)]

pub mod check;
pub mod config;
pub mod locks;
pub mod serve;
#[cfg(unix)]
pub mod unix;

pub use config::WorkerSettings;
pub use serve::Worker;

pub mod logging;

use slam_protocol::{ErrorCode, SlamError};
use std::future::Future;
use std::sync::Arc;

/// Builds the worker from `settings`, listens where they say, and serves until
/// `shutdown` completes (then finishes the requests in flight). What the
/// foreground binary and the Windows service both run.
pub async fn listen_and_serve(settings: &WorkerSettings, shutdown: impl Future<Output = ()>) -> Result<(), SlamError> {
    let worker = Arc::new(Worker::new(settings)?);
    let cannot_listen = |e: std::io::Error| {
        SlamError::new(ErrorCode::WorkerUnavailable, format!("cannot listen on {}: {e}", settings.pipe))
            .with_hint("another worker may be running; check `pipe` in the configuration")
    };
    #[cfg(unix)]
    {
        let listener =
            unix::bind(std::path::Path::new(&settings.pipe), &settings.allowed_uids()?).map_err(cannot_listen)?;
        tracing::info!(socket = %settings.pipe, data_dir = %settings.data_dir.display(), "SLAM worker listening");
        unix::run(listener, worker, shutdown).await;
    }
    #[cfg(windows)]
    {
        let listener = pipe::bind(&settings.pipe, &settings.allowed_clients)?;
        tracing::info!(pipe = %listener.path(), data_dir = %settings.data_dir.display(), "SLAM worker listening");
        pipe::run(listener, worker, shutdown).await.map_err(cannot_listen)?;
    }
    tracing::info!("SLAM worker stopped");
    Ok(())
}
