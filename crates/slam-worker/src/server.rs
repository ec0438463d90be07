//! The accept loop and the per-connection protocol (Unix domain socket).
//!
//! Guarantees, each tested in `tests/it.rs`:
//! - a peer whose uid is not allowed gets a `done` with 50404, nothing else runs;
//! - a peer that sends nothing is disconnected after `idle_timeout`;
//! - oversized or malformed frames get a `done` error, never a dropped connection
//!   without an answer (when the peer still listens);
//! - a request gets at most `request_timeout`, then a `done` with 50405;
//! - shutdown stops accepting and waits for requests in flight;
//! - at most `max_connections` are served at once (the rest wait in the backlog).

use slam_core::clock::SystemClock;
use slam_core::ops::{Context, dispatch};
use slam_core::salesforce::HttpSettings;
use slam_protocol::frame::{self, FrameError};
use slam_protocol::{
    ErrorCode, OutputSink, PROTOCOL_VERSION, Request, Response, ResultSet, Severity, SlamError, WireError,
};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// What the worker needs to serve requests.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The SLAM data directory.
    pub data_dir: PathBuf,
    /// How to reach Salesforce.
    pub http: HttpSettings,
    /// Peer uids allowed to connect. [`bind`] adds the worker's own uid (the owner
    /// of the socket it creates).
    pub allowed_uids: Vec<u32>,
    /// How long a connected peer may take to send its request.
    pub idle_timeout: Duration,
    /// How long one request may run.
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Largest request frame accepted.
    pub max_frame: u32,
}

impl WorkerConfig {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            http: HttpSettings::default(),
            allowed_uids: Vec::new(),
            idle_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_connections: 64,
            max_frame: frame::DEFAULT_MAX_FRAME,
        }
    }
}

/// Binds the socket at `path` with mode 0660 and adds the worker's own uid to the
/// allowed peers. A stale socket file (nobody listening) is replaced; a live one is
/// an error, so two workers never share a path.
pub fn bind(path: &std::path::Path, config: &mut WorkerConfig) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another SLAM worker is listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    let own = std::fs::metadata(path)?.uid();
    if !config.allowed_uids.contains(&own) {
        config.allowed_uids.push(own);
    }
    Ok(listener)
}

/// Serves `listener` until `shutdown` completes, then waits for requests in flight.
pub async fn run(listener: UnixListener, config: WorkerConfig, shutdown: impl Future<Output = ()>) {
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut in_flight = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted.inspect_err(|e| tracing::warn!(error = %e, "accept failed")) else {
                    continue;
                };
                let Ok(slot) = slots.clone().acquire_owned().await else { break };
                let config = config.clone();
                in_flight.spawn(async move {
                    serve(stream, &config).await;
                    drop(slot);
                });
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

async fn write(stream: &mut UnixStream, response: &Response, max: u32) -> bool {
    // Responses may carry large result sets: allow four times the request limit.
    match frame::encode(response, max.saturating_mul(4)) {
        Ok(bytes) => stream.write_all(&bytes).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "a response frame could not be encoded");
            false
        }
    }
}

async fn read_request(stream: &mut UnixStream, max: u32) -> Result<Option<Request>, FrameError> {
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let length = u32::from_le_bytes(header);
    if length > max {
        return Err(FrameError::TooLarge { length, max });
    }
    let mut payload = vec![0u8; length as usize];
    stream.read_exact(&mut payload).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    serde_json::from_slice(&payload).map(Some).map_err(FrameError::Json)
}

async fn serve(mut stream: UnixStream, config: &WorkerConfig) {
    let uid = stream.peer_cred().map(|c| c.uid()).ok();
    if !uid.is_some_and(|u| config.allowed_uids.contains(&u)) {
        tracing::warn!(?uid, "refused a peer whose uid is not allowed");
        let error = SlamError::new(ErrorCode::PeerNotAllowed, "this account may not use the SLAM worker")
            .with_hint("add its uid to the worker's allowed clients");
        write(&mut stream, &done("", Some(&error)), config.max_frame).await;
        return;
    }
    let request = match tokio::time::timeout(config.idle_timeout, read_request(&mut stream, config.max_frame)).await {
        Err(_) => {
            tracing::debug!("a peer sent no request in time; disconnecting");
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Ok(Some(request))) => request,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "bad request frame");
            let error = SlamError::new(ErrorCode::BadFrame, format!("the request could not be read: {e}"));
            write(&mut stream, &done("", Some(&error)), config.max_frame).await;
            return;
        }
    };
    let id = request.id.clone();
    let operation = request.operation.clone();
    let started = std::time::Instant::now();
    let caller = describe_caller(&request, uid);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task_config = (config.data_dir.clone(), config.http.clone());
    let sink_tx = tx.clone();
    let sink_id = id.clone();
    // Operations block (key generation, file locks): run them off the async threads.
    let work = tokio::task::spawn_blocking(move || {
        let clock = SystemClock;
        let ctx = Context { data_dir: task_config.0, clock: &clock, http: task_config.1, caller };
        let mut sink = ChannelSink { id: sink_id.clone(), tx: sink_tx };
        let result = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(dispatch(&ctx, request, &mut sink)),
            Err(e) => Err(SlamError::new(ErrorCode::Internal, format!("starting a runtime failed: {e}"))),
        };
        let _ = sink.tx.send(done(&sink_id, result.as_ref().err()));
    });
    drop(tx);
    let deadline = tokio::time::sleep(config.request_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            response = rx.recv() => match response {
                Some(response) => {
                    let finished = matches!(response, Response::Done { .. });
                    if !write(&mut stream, &response, config.max_frame).await || finished {
                        break;
                    }
                }
                None => {
                    let error = SlamError::new(ErrorCode::Internal, "the operation ended without an answer");
                    write(&mut stream, &done(&id, Some(&error)), config.max_frame).await;
                    break;
                }
            },
            () = &mut deadline => {
                let error = SlamError::new(
                    ErrorCode::RequestTimeout,
                    format!("`{operation}` did not finish within {} seconds", config.request_timeout.as_secs()),
                );
                write(&mut stream, &done(&id, Some(&error)), config.max_frame).await;
                break;
            }
        }
    }
    tracing::info!(
        id,
        operation,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request served"
    );
    // A timed-out operation keeps running to completion in its blocking thread (it
    // cannot be interrupted mid-write); its output is discarded.
    drop(work);
}

fn describe_caller(request: &Request, uid: Option<u32>) -> String {
    let c = &request.caller;
    let mut parts = vec![c.login.clone().unwrap_or_else(|| "unknown login".into())];
    if let Some(db) = &c.database {
        parts.push(format!("db {db}"));
    }
    if let Some(spid) = c.spid {
        parts.push(format!("spid {spid}"));
    }
    if let Some(app) = &c.application {
        parts.push(format!("app {app}"));
    }
    if let Some(uid) = uid {
        parts.push(format!("uid {uid}"));
    }
    parts.join(", ")
}
