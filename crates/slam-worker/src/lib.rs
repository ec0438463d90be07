//! The SLAM worker: the long-running process the SQL Server side talks to.
//!
//! A transport (`unix` sockets, or the Windows named pipe in `pipe`) accepts
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
#[cfg(windows)]
pub mod pipe;
pub mod pipe_acl;
pub mod serve;
#[cfg(windows)]
pub mod service;
#[cfg(unix)]
pub mod unix;

pub use config::WorkerSettings;
pub use serve::Worker;

pub mod logging;

use slam_protocol::SlamError;
use std::future::Future;
use std::sync::Arc;

/// A worker with its pipe (or socket) created, ready to serve.
pub struct Bound {
    worker: Arc<Worker>,
    #[cfg(unix)]
    listener: unix::Listener,
    #[cfg(windows)]
    listener: pipe::Listener,
    address: String,
}

/// Builds the worker from `settings` and creates its pipe (Windows) or socket
/// (Unix). Must run inside a tokio runtime. Fails, with the setting to fix named,
/// when the configuration cannot work or another worker owns the address, and
/// with 50007 when another account could have planted or changed one of the
/// worker's files (`slam_core::trust`).
pub fn bind(settings: &WorkerSettings) -> Result<Bound, SlamError> {
    let worker = Arc::new(Worker::new(settings)?);
    // Before anything listens: a planted key, master key, store or configuration
    // could hand another local account the secrets the clients are about to send.
    if let Some(error) = settings.untrusted_files() {
        return Err(error);
    }
    #[cfg(unix)]
    {
        let listener = unix::bind(std::path::Path::new(&settings.pipe), &settings.allowed_uids()?).map_err(|e| {
            SlamError::new(
                slam_protocol::ErrorCode::WorkerUnavailable,
                format!("cannot listen on {}: {e}", settings.pipe),
            )
            .with_hint("another worker may be running, or the socket's directory is missing; check `pipe`")
        })?;
        Ok(Bound { worker, listener, address: settings.pipe.clone() })
    }
    #[cfg(windows)]
    {
        let listener = pipe::bind(&settings.pipe, &settings.allowed_clients)?;
        let address = listener.path().to_string();
        Ok(Bound { worker, listener, address })
    }
}

impl Bound {
    /// Where clients connect: the socket path or `\\.\pipe\NAME`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The worker (for tests and benchmarks).
    pub fn worker(&self) -> &Arc<Worker> {
        &self.worker
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        tracing::info!(address = %self.address, version = env!("CARGO_PKG_VERSION"), "SLAM worker listening");
        #[cfg(unix)]
        unix::run(self.listener, self.worker, shutdown).await;
        #[cfg(windows)]
        if let Err(e) = pipe::run(self.listener, self.worker, shutdown).await {
            tracing::error!(error = %e, "the pipe failed");
        }
        tracing::info!("SLAM worker stopped");
    }
}

#[cfg(feature = "test-util")]
impl Bound {
    /// Overrides the idle and request limits below the configuration's one-second
    /// granularity (tests of the limits; feature `test-util`). Only before serving.
    pub fn set_limits(&mut self, idle: Option<std::time::Duration>, request: Option<std::time::Duration>) {
        if let Some(worker) = Arc::get_mut(&mut self.worker) {
            worker.set_limits(idle, request);
        }
    }

    /// Admits only these uids, not even the worker's own (tests of refusals;
    /// feature `test-util`).
    #[cfg(unix)]
    pub fn allow_only(&mut self, uids: Vec<u32>) {
        self.listener.allow_only(uids);
    }

    /// Refuses the next `count` peers whatever their uid (tests of refusals next to
    /// allowed clients; feature `test-util`).
    #[cfg(unix)]
    pub fn refuse_first(&mut self, count: usize) {
        self.listener.refuse_first(count);
    }
}

/// [`bind`], then [`Bound::serve`]: what the foreground binary runs.
pub async fn listen_and_serve(settings: &WorkerSettings, shutdown: impl Future<Output = ()>) -> Result<(), SlamError> {
    bind(settings)?.serve(shutdown).await;
    Ok(())
}

/// A worker serving on a thread of its own, with its own runtime: for tests,
/// benchmarks and programs that embed one. Dropping it stops the worker after the
/// requests in flight.
pub struct Background {
    address: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Binds as [`bind`] does and starts serving; returns once clients can connect.
    pub fn start(settings: WorkerSettings) -> Result<Self, SlamError> {
        Self::start_with(settings, |_| {})
    }

    /// As [`Background::start`], letting `adjust` change the bound worker before it
    /// serves (the tests of limits and refusals use the `test-util` hooks of
    /// [`Bound`]).
    pub fn start_with(
        settings: WorkerSettings,
        adjust: impl FnOnce(&mut Bound) + Send + 'static,
    ) -> Result<Self, SlamError> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let error = SlamError::new(slam_protocol::ErrorCode::Internal, format!("no runtime: {e}"));
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            runtime.block_on(async move {
                match bind(&settings) {
                    Ok(mut bound) => {
                        adjust(&mut bound);
                        let _ = ready.send(Ok(bound.address().to_string()));
                        bound
                            .serve(async move {
                                let _ = stopped.await;
                            })
                            .await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            });
        });
        let address = is_ready.recv().map_err(|_| {
            SlamError::new(slam_protocol::ErrorCode::Internal, "the worker thread ended before it was ready")
        })??;
        Ok(Self { address, stop: Some(stop), thread: Some(thread) })
    }

    /// Where clients connect.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
            && !std::thread::panicking()
        {
            // A panic on the worker's thread must fail the test (or program) that
            // ran it, not vanish with the thread.
            std::panic::resume_unwind(panic);
        }
    }
}
