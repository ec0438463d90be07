//! One connection, whatever the transport: read one request, run it, stream the
//! answer back, end with exactly one `done`. And the accept loop around it.
//!
//! Guarantees, each tested from the outside (`tests/`):
//! - a peer the transport did not allow gets a `done` with 50404, nothing else runs;
//! - a peer that sends nothing, or stops taking its answer off the pipe, is
//!   disconnected after the idle limit (every write has that deadline);
//! - oversized or malformed frames get a `done` error (50405), not a silent hang-up;
//! - a request gets at most the request limit, then a `done` with 50406; one that
//!   was still queued behind another on the same key or username never runs;
//! - operations on the same key name or username run one at a time ([`crate::locks`]);
//! - shutdown stops accepting and waits for requests in flight;
//! - at most `max_connections` allowed peers are served at once (the rest wait in
//!   the backlog); refused peers are answered outside that limit, at most
//!   [`REFUSALS_IN_FLIGHT`] at a time (beyond that they are dropped unanswered), so
//!   accounts the worker does not serve cannot crowd out those it does;
//! - at most `max_operations` operations run at once, `ping` excepted, counting
//!   those whose caller stopped waiting: the work in flight stays bounded whatever
//!   the clients do.

use crate::config::WorkerSettings;
use crate::locks::{NamedLocks, lock_names};
use slam_core::clock::SystemClock;
use slam_core::ops::{Context, dispatch};
use slam_core::resident::Resident;
use slam_core::salesforce::HttpSettings;
use slam_protocol::frame::{self, FrameError};
use slam_protocol::{
    ErrorCode, OutputSink, PROTOCOL_VERSION, Request, Response, ResultSet, Severity, SlamError, WireError,
};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// Where a request is: waiting for its locks, running, or cancelled before it ran.
const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;

/// Refused peers answered at once; more are disconnected without an answer.
pub const REFUSALS_IN_FLIGHT: usize = 16;

/// Everything the worker shares between connections.
pub struct Worker {
    data_dir: PathBuf,
    /// The store every operation uses, built once from the `store` setting.
    store: Arc<dyn slam_store::StoreOpener>,
    http: HttpSettings,
    resident: Arc<Resident>,
    locks: NamedLocks,
    idle_timeout: Duration,
    request_timeout: Duration,
    max_connections: usize,
    /// One permit per operation running (`ping` excepted).
    operations: Arc<Semaphore>,
    max_frame: u32,
}

impl Worker {
    /// Builds the worker from validated settings: the HTTPS client (with its extra
    /// CA and proxy) is created here, so a bad CA file fails at start, not at the
    /// first login.
    pub fn new(settings: &WorkerSettings) -> Result<Self, SlamError> {
        settings.validate()?;
        let http = settings.http_settings()?;
        let resident = Resident::new(http.clone(), settings.cache_tokens).map_err(|e| {
            SlamError::new(ErrorCode::ConfigInvalid, format!("the [salesforce] settings cannot be used: {e}"))
                .with_hint("check `salesforce.ca_file` (a readable PEM file) and `salesforce.proxy`")
        })?;
        Ok(Self {
            data_dir: settings.data_dir.clone(),
            store: settings.store_opener()?,
            http,
            resident: Arc::new(resident),
            locks: NamedLocks::default(),
            idle_timeout: settings.idle_timeout(),
            request_timeout: settings.request_timeout(),
            max_connections: settings.max_connections,
            operations: Arc::new(Semaphore::new(settings.max_operations)),
            max_frame: frame::DEFAULT_MAX_FRAME,
        })
    }

    /// Overrides the idle and request limits below the configuration's one-second
    /// granularity (tests of the limits themselves; feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn set_limits(&mut self, idle: Option<Duration>, request: Option<Duration>) {
        self.idle_timeout = idle.unwrap_or(self.idle_timeout);
        self.request_timeout = request.unwrap_or(self.request_timeout);
    }

    /// The state kept between operations (for tests and benchmarks).
    pub fn resident(&self) -> &Resident {
        &self.resident
    }
}

/// What the transport knows of the connecting peer.
pub(crate) struct Peer {
    /// Whether the transport's own check admitted it (the Unix socket's uid list;
    /// on Windows the pipe's DACL already refused everyone else).
    pub allowed: bool,
    /// `uid 1000`, `pid 4242`: for logs and SLAM_Log.
    pub description: String,
}

/// Accepts connections with `accept` until `shutdown` completes, serving each on
/// its own task, then waits for those in flight.
pub(crate) async fn accept_loop<S>(
    worker: Arc<Worker>,
    shutdown: impl Future<Output = ()>,
    mut accept: impl AsyncFnMut() -> std::io::Result<(S, Peer)>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(worker.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let mut in_flight = JoinSet::new();
    let mut slot = None;
    tokio::pin!(shutdown);
    loop {
        // Hold a free slot before accepting: beyond the limit, clients wait in the
        // backlog. A slot is kept across refused peers, which do not use one.
        let held = match slot.take() {
            Some(held) => held,
            None => tokio::select! {
                () = &mut shutdown => break,
                acquired = slots.clone().acquire_owned() => match acquired { Ok(held) => held, Err(_) => break },
            },
        };
        // Reap finished connections without racing them against `accept`: a
        // Windows pipe accept is not cancel-safe (dropping it mid-connect would drop
        // a client that just connected), so only shutdown may interrupt it.
        while in_flight.try_join_next().is_some() {}
        tokio::select! {
            () = &mut shutdown => break,
            accepted = accept() => {
                match accepted {
                    Ok((stream, peer)) if !peer.allowed => {
                        slot = Some(held);
                        match refusals.clone().try_acquire_owned() {
                            Ok(permit) => {
                                let worker = worker.clone();
                                in_flight.spawn(async move {
                                    refuse(stream, &peer, &worker).await;
                                    drop(permit);
                                });
                            }
                            Err(_) => {
                                tracing::warn!(peer = %peer.description, "dropped a refused peer unanswered: too many refusals at once");
                            }
                        }
                    }
                    Ok((stream, peer)) => {
                        let worker = worker.clone();
                        in_flight.spawn(async move {
                            serve(stream, peer, &worker).await;
                            drop(held);
                        });
                    }
                    Err(e) => {
                        slot = Some(held);
                        tracing::warn!(error = %e, "accepting a connection failed");
                        // Do not spin on a persistent failure.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    }
    tracing::info!(in_flight = in_flight.len(), "shutting down: waiting for requests in flight");
    while in_flight.join_next().await.is_some() {}
}

/// Sends response frames for one request into a channel, so the blocking
/// operation and the async writer can run apart.
struct ChannelSink {
    id: String,
    tx: mpsc::UnboundedSender<Response>,
}

impl OutputSink for ChannelSink {
    fn message(&mut self, severity: Severity, text: &str) {
        let _ = self.tx.send(Response::Message {
            version: PROTOCOL_VERSION,
            id: self.id.clone(),
            severity,
            text: text.to_string(),
        });
    }

    fn result_set(&mut self, result: ResultSet) {
        let ResultSet { columns, rows } = result;
        let _ = self.tx.send(Response::ResultSet { version: PROTOCOL_VERSION, id: self.id.clone(), columns, rows });
    }
}

fn done(id: &str, error: Option<&SlamError>) -> Response {
    Response::Done { version: PROTOCOL_VERSION, id: id.to_string(), error: error.map(WireError::from) }
}

/// Writes one frame within `deadline`; false when the peer is gone, stopped
/// reading, or the frame cannot be sent.
async fn write<S: AsyncWrite + Unpin>(stream: &mut S, response: &Response, deadline: Duration) -> bool {
    let written = tokio::time::timeout(deadline, frame::write_frame_async(stream, response, frame::MAX_RESPONSE_FRAME));
    match written.await {
        Ok(Ok(())) => true,
        Ok(Err(FrameError::TooLarge { length, max })) => {
            tracing::error!(length, max, "a response frame is over the limit");
            false
        }
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::warn!(seconds = deadline.as_secs_f64(), "a client stopped reading its answer; disconnecting");
            false
        }
    }
}

async fn read_request<S: AsyncRead + Unpin>(stream: &mut S, max: u32) -> Result<Option<Request>, FrameError> {
    frame::read_frame_async(stream, max).await
}

/// Answers a peer the transport did not allow with 50404 and nothing else.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, peer: &Peer, worker: &Worker) {
    tracing::warn!(peer = %peer.description, "refused a peer that is not among the allowed clients");
    // Take the request off the wire first (bounded like any other read, and never
    // run), so the refusal is the answer the client reads rather than a reset
    // connection under its write.
    let id = match tokio::time::timeout(worker.idle_timeout, read_request(&mut stream, worker.max_frame)).await {
        Ok(Ok(Some(request))) => request.id,
        _ => String::new(),
    };
    let error = SlamError::new(ErrorCode::PeerNotAllowed, "this account may not use the SLAM worker")
        .with_hint("add it to the worker's `allowed_clients` setting");
    write(&mut stream, &done(&id, Some(&error)), worker.idle_timeout).await;
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, peer: Peer, worker: &Arc<Worker>) {
    let request = match tokio::time::timeout(worker.idle_timeout, read_request(&mut stream, worker.max_frame)).await {
        Err(_) => {
            tracing::debug!(peer = %peer.description, "a peer sent no request in time; disconnecting");
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Ok(Some(request))) => request,
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer.description, error = %e, "bad request frame");
            let error = SlamError::new(ErrorCode::BadFrame, format!("the request could not be read: {e}"));
            write(&mut stream, &done("", Some(&error)), worker.idle_timeout).await;
            return;
        }
    };
    let id = request.id.clone();
    let operation = request.operation.clone();
    let caller = request.caller.describe(Some(&peer.description));
    let started = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stage = Arc::new(AtomicU8::new(QUEUED));
    let task = tokio::spawn(run_operation(worker.clone(), request, caller.clone(), tx, stage.clone()));
    let deadline = tokio::time::sleep(worker.request_timeout);
    tokio::pin!(deadline);
    let mut outcome = "ok";
    loop {
        tokio::select! {
            response = rx.recv() => match response {
                Some(response) => {
                    let finished = matches!(&response, Response::Done { .. });
                    if let Response::Done { error: Some(_), .. } = &response {
                        outcome = "error";
                    }
                    if !write(&mut stream, &response, worker.idle_timeout).await {
                        outcome = "client gone";
                        break;
                    }
                    if finished {
                        break;
                    }
                }
                None => {
                    let error = SlamError::new(ErrorCode::Internal, "the operation ended without an answer");
                    write(&mut stream, &done(&id, Some(&error)), worker.idle_timeout).await;
                    outcome = "no answer";
                    break;
                }
            },
            () = &mut deadline => {
                let seconds = worker.request_timeout.as_secs();
                // Either the operation has started (it will finish), or it is cancelled
                // here, atomically, so it can never start after its caller is told
                // that it did not run.
                let cancelled = stage.compare_exchange(QUEUED, CANCELLED, Ordering::SeqCst, Ordering::SeqCst).is_ok();
                let error = if !cancelled {
                    SlamError::new(
                        ErrorCode::RequestTimeout,
                        format!("`{operation}` did not finish within {seconds} seconds; it goes on in the worker"),
                    )
                } else {
                    // Still queued behind another operation on the same key or user, or
                    // for an operation slot: cancel it, so it never runs after its caller was told it failed.
                    task.abort();
                    SlamError::new(
                        ErrorCode::RequestTimeout,
                        format!(
                            "`{operation}` waited {seconds} seconds for its turn (another operation on the same key \
                             or connection, or the worker's limit of operations at once) and did not run"
                        ),
                    )
                };
                write(&mut stream, &done(&id, Some(&error)), worker.idle_timeout).await;
                outcome = "timed out";
                break;
            }
        }
    }
    tracing::info!(
        id,
        operation,
        caller,
        outcome,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request served"
    );
}

/// Runs one request: waits for its named locks, then runs the operation on a
/// blocking thread (key generation, file locks and SQLite block) whose async parts
/// (Salesforce calls) are driven by the worker's runtime, so that the HTTPS pool
/// is shared by every operation.
async fn run_operation(
    worker: Arc<Worker>,
    request: Request,
    caller: String,
    tx: mpsc::UnboundedSender<Response>,
    stage: Arc<AtomicU8>,
) {
    let id = request.id.clone();
    // `ping` reports on the worker itself: it never waits behind Salesforce work.
    let permit = if request.operation == "ping" {
        None
    } else {
        match worker.operations.clone().acquire_owned().await {
            Ok(permit) => Some(permit),
            Err(_) => return, // closed only when the worker is dropped
        }
    };
    let held = worker.locks.acquire(&lock_names(&request)).await;
    let runtime = tokio::runtime::Handle::current();
    let sink_tx = tx.clone();
    let blocking = tokio::task::spawn_blocking(move || {
        if stage.compare_exchange(QUEUED, RUNNING, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return; // cancelled by the time limit before it started
        }
        let clock = SystemClock;
        let ctx = Context {
            data_dir: worker.data_dir.clone(),
            clock: &clock,
            http: worker.http.clone(),
            caller,
            resident: Some(worker.resident.clone()),
            store: worker.store.clone(),
            database: request.caller.database.clone(),
        };
        let mut sink = ChannelSink { id: request.id.clone(), tx: sink_tx };
        let id = request.id.clone();
        let result = runtime.block_on(dispatch(&ctx, request, &mut sink));
        // The locks are released only when the operation is over, even if its
        // caller stopped waiting.
        drop(held);
        drop(permit);
        let _ = sink.tx.send(done(&id, result.as_ref().err()));
    });
    if let Err(e) = blocking.await {
        // A panic inside an operation: answer it, never take the worker down.
        tracing::error!(id, error = %e, "an operation panicked");
        let error = SlamError::new(ErrorCode::Internal, "the operation failed unexpectedly; see the worker's log");
        let _ = tx.send(done(&id, Some(&error)));
    }
}
