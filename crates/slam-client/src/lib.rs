//! The client side of the SLAM worker's pipe: send one [`Request`], receive its
//! stream of [`Response`] frames up to the final `done`.
//!
//! Blocking `std` I/O only, no async runtime: the CLI uses it. The XP
//! (`xp_slam.dll`, inside `sqlservr.exe`) has its own overlapped client, which must
//! also watch for a query cancel (`crates/slam-xp/src/pipe.rs`). On Unix the pipe is a domain socket;
//! on Windows a named pipe opened as a file (`\\.\pipe\speediful-slam`).
//!
//! Every failure maps to a stable number at the edge ([`ClientError::to_slam_error`]):
//! nobody listening is 50407, a refused account 50404, an answer cut short 50408.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use slam_protocol::frame::{self, DEFAULT_MAX_FRAME, FrameError};
use slam_protocol::{ErrorCode, Request, Response, SlamError, WireError};
use std::io;
use std::time::Duration;

/// The largest response frame accepted: the protocol's limit.
pub use slam_protocol::frame::MAX_RESPONSE_FRAME;

/// How a call to the worker failed (as opposed to the operation failing, which
/// arrives as the `done` frame's error).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the pipe.
    #[error("no SLAM worker listens on {pipe}")]
    NotListening {
        /// The pipe or socket tried.
        pipe: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The pipe exists but this account may not open it.
    #[error("this account may not connect to the SLAM worker on {pipe}")]
    AccessDenied {
        /// The pipe or socket tried.
        pipe: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Every instance of the pipe stayed busy.
    #[error("the SLAM worker on {pipe} stayed busy for {} seconds", waited.as_secs())]
    Busy {
        /// The pipe tried.
        pipe: String,
        /// How long the client waited.
        waited: Duration,
    },
    /// Opening the pipe failed for another reason.
    #[error("connecting to the SLAM worker on {pipe} failed")]
    Connect {
        /// The pipe or socket tried.
        pipe: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The request could not be sent.
    #[error("sending the request to the SLAM worker on {pipe} failed")]
    Send {
        /// The pipe or socket.
        pipe: String,
        /// The framing or I/O failure.
        #[source]
        source: FrameError,
    },
    /// The answer stopped before its `done` frame, or was unreadable.
    #[error("the SLAM worker on {pipe} stopped answering before the operation's end: {detail}")]
    ConnectionLost {
        /// The pipe or socket.
        pipe: String,
        /// What happened.
        detail: String,
    },
    /// Whatever serves the pipe runs as an account that is not trusted; nothing
    /// was sent to it.
    #[error(
        "the process serving {pipe} runs as {found}, not as the SLAM worker's account ({expected}); nothing was sent to it"
    )]
    UntrustedServer {
        /// The pipe or socket.
        pipe: String,
        /// The account found (`uid 1001`, a SID).
        found: String,
        /// The accounts trusted.
        expected: String,
    },
    /// No answer within the client's time limit.
    #[error("the SLAM worker on {pipe} did not answer within {} seconds", waited.as_secs())]
    TimedOut {
        /// The pipe or socket.
        pipe: String,
        /// The limit.
        waited: Duration,
    },
}

impl ClientError {
    /// The error as the user sees it, with what to do.
    pub fn to_slam_error(&self) -> SlamError {
        let message = self.to_string();
        match self {
            ClientError::NotListening { .. } | ClientError::Busy { .. } => {
                SlamError::new(ErrorCode::WorkerUnavailable, message).with_hint(START_HINT)
            }
            ClientError::AccessDenied { .. } => SlamError::new(ErrorCode::PeerNotAllowed, message).with_hint(
                "run as an account the worker allows (its `allowed_clients` setting; on Unix, membership of the \
                 socket's group), or ask the administrator to add this one",
            ),
            ClientError::UntrustedServer { .. } => SlamError::new(ErrorCode::WorkerNotTrusted, message).with_hint(
                "if the worker really runs under that account, name it in SLAM_WORKER_ACCOUNT (or --worker-account); \
                 otherwise another program holds the pipe name: find and stop it",
            ),
            ClientError::Connect { source, .. } => {
                SlamError::new(ErrorCode::WorkerUnavailable, format!("{message}: {source}")).with_hint(START_HINT)
            }
            ClientError::Send { source, .. } => {
                SlamError::new(ErrorCode::WorkerConnectionLost, format!("{message}: {source}"))
                    .with_hint("look in the worker's log for why it closed the connection")
            }
            ClientError::ConnectionLost { .. } | ClientError::TimedOut { .. } => {
                SlamError::new(ErrorCode::WorkerConnectionLost, message).with_hint(
                    "look in the worker's log; the operation may or may not have completed, so check its effect \
                     before retrying",
                )
            }
        }
    }
}

const START_HINT: &str = "start the worker (`slam-worker` in the foreground, or `slam-worker service start` for the \
                          Windows service), or point --pipe / SLAM_PIPE at the one that runs";

/// Which account may serve the pipe. The client checks whoever serves it before
/// sending a byte (a request may carry a password, a security token or a key
/// passphrase), so a program that took the pipe name while the worker was stopped
/// learns nothing. root / LocalSystem (and, on Windows, an elevated
/// Administrators process, whose objects Administrators own) are always trusted:
/// they can read the keys anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WorkerAccount {
    /// Unix: the owner of the socket's directory (`/run/speediful`, which the
    /// service manager creates for the worker's user). Windows: the service's
    /// virtual account, `NT SERVICE\SpeedifulSLAM`.
    #[default]
    Default,
    /// This account. Unix: a uid. Windows: a SID (`S-1-5-...`) or an account name.
    Named(String),
}

impl WorkerAccount {
    /// From `SLAM_WORKER_ACCOUNT`; unset or empty is the default.
    pub fn from_env() -> Self {
        match std::env::var(slam_protocol::WORKER_ACCOUNT_ENV) {
            Ok(value) if !value.trim().is_empty() => WorkerAccount::Named(value.trim().to_string()),
            _ => WorkerAccount::Default,
        }
    }
}

/// Options of one call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// The longest wait for any one frame of the answer (and for the request to be
    /// taken): longer than the worker's own request limit (120 s by default), so
    /// the worker reports its timeout first.
    pub read_timeout: Duration,
    /// How long to keep retrying while every pipe instance is busy (Windows).
    pub busy_wait: Duration,
    /// Who may serve the pipe.
    pub worker_account: WorkerAccount,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            read_timeout: Duration::from_secs(slam_protocol::CLIENT_ANSWER_DEADLINE_SECS),
            busy_wait: Duration::from_secs(10),
            worker_account: WorkerAccount::from_env(),
        }
    }
}

/// Sends `request` to the worker at `pipe` and hands every `message` and
/// `resultset` frame to `on_output`. Returns the `done` frame's error (`None` when
/// the operation succeeded).
pub fn call(
    pipe: &str,
    request: &Request,
    options: &CallOptions,
    mut on_output: impl FnMut(Response),
) -> Result<Option<WireError>, ClientError> {
    let mut stream = platform::connect(pipe, options)?;
    if let Err(source) = frame::write_frame(&mut stream, request, DEFAULT_MAX_FRAME) {
        // The worker may have answered (a refusal) and closed before reading it all:
        // its answer, if there is one, says more than the broken write.
        if let Ok(Some(Response::Done { error, .. })) = frame::read_frame::<Response>(&mut stream, MAX_RESPONSE_FRAME) {
            return Ok(error);
        }
        return Err(ClientError::Send { pipe: pipe.to_string(), source });
    }
    loop {
        let response = match frame::read_frame::<Response>(&mut stream, MAX_RESPONSE_FRAME) {
            Ok(Some(response)) => response,
            Ok(None) => {
                return Err(ClientError::ConnectionLost {
                    pipe: pipe.to_string(),
                    detail: "the connection closed without a final answer".into(),
                });
            }
            Err(FrameError::Io(e)) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(ClientError::TimedOut { pipe: pipe.to_string(), waited: options.read_timeout });
            }
            Err(e) => return Err(ClientError::ConnectionLost { pipe: pipe.to_string(), detail: e.to_string() }),
        };
        if response.id() != request.id && !response.id().is_empty() {
            tracing::warn!(expected = %request.id, got = %response.id(), "a response frame for another request id");
        }
        match response {
            Response::Done { error, .. } => return Ok(error),
            other => on_output(other),
        }
    }
}

#[cfg(unix)]
#[path = "unix.rs"]
mod platform;
#[cfg(windows)]
#[path = "windows.rs"]
mod platform;
