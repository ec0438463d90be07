//! The XP's end of the worker's named pipe: a thin adapter from
//! `slam_windows::pipe_client` (the overlapped client the CLI uses too) to
//! [`crate::relay::Pipe`].
//!
//! Why it is separate from the relay: the relay is tested on Linux through the
//! `Pipe` trait; this file is only what ties it to Windows. What it adds to the
//! shared client is the XP's policy: who must serve the pipe (from
//! `SLAM_XP_WORKER_ACCOUNT`, the registry value `WorkerAccount`, or the service's
//! virtual account), checked before the request (which may carry a password) is
//! written; a deadline for the whole call; and the query's cancel flag
//! (`srv_got_attention`), looked at between every 100 ms slice of every wait.

use crate::ods::Ods;
use crate::relay::{Pipe, PipeError};
use slam_windows::pipe_client::{PipeClient, PipeClientError, resolve_worker_account, trusted_accounts};
use std::time::{Duration, Instant};

/// How long to keep trying to open a pipe whose instances are all busy.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
/// How long a whole call may wait for the worker: longer than the worker's own
/// request limit (120 s by default), so the worker reports its own timeout first.
const ANSWER_DEADLINE: Duration = Duration::from_secs(slam_protocol::CLIENT_ANSWER_DEADLINE_SECS);

/// An open, verified connection to the worker. Dropping it closes the pipe: the
/// worker sees the client gone.
struct NamedPipe {
    client: PipeClient,
    deadline: Instant,
}

/// Opens the worker's pipe `name` and checks who serves it.
pub(crate) fn connect(name: &str, ods: &mut dyn Ods) -> Result<Box<dyn Pipe>, PipeError> {
    let path = slam_protocol::windows_pipe_path(name);
    let account = crate::config::worker_account();
    let worker = resolve_worker_account(account.as_deref()).map_err(|e| PipeError::Io {
        detail: format!(
            "the SLAM worker's account `{}` (SLAM_XP_WORKER_ACCOUNT, or the registry value WorkerAccount under \
             HKLM\\{}) is unknown: {e}",
            account.as_deref().unwrap_or(slam_protocol::DEFAULT_WORKER_ACCOUNT),
            crate::config::REGISTRY_KEY,
        ),
    })?;
    let trusted = trusted_accounts(&worker);
    let client = PipeClient::open(&path, Instant::now() + CONNECT_DEADLINE, &mut || ods.got_attention()).map_err(
        |e| match e {
            PipeClientError::NotFound => PipeError::NotListening { pipe: path.clone() },
            PipeClientError::AccessDenied => PipeError::AccessDenied { pipe: path.clone() },
            PipeClientError::Busy => PipeError::Busy { pipe: path.clone() },
            PipeClientError::Cancelled => PipeError::Cancelled,
            other => PipeError::Io { detail: format!("opening {path} failed: {other}") },
        },
    )?;
    if let Err(untrusted) = client.verify_server(&trusted) {
        let server = match client.server_process_id() {
            Ok(pid) => format!("pid {pid}"),
            Err(_) => "pid unknown".to_string(),
        };
        // Nothing has been written; dropping `client` closes the pipe.
        return Err(PipeError::Untrusted {
            pipe: format!("{path} ({server})"),
            found: untrusted.found,
            expected: trusted.join(" or "),
        });
    }
    Ok(Box::new(NamedPipe { client, deadline: Instant::now() + ANSWER_DEADLINE }))
}

fn pipe_error(error: PipeClientError) -> PipeError {
    match error {
        PipeClientError::Cancelled => PipeError::Cancelled,
        PipeClientError::TimedOut => PipeError::Timeout { seconds: ANSWER_DEADLINE.as_secs() },
        PipeClientError::Closed => {
            PipeError::Io { detail: "the worker closed the pipe while the request was sent".to_string() }
        }
        other => PipeError::Io { detail: format!("pipe I/O failed: {other}") },
    }
}

impl Pipe for NamedPipe {
    fn write_all(&mut self, bytes: &[u8], cancelled: &mut dyn FnMut() -> bool) -> Result<(), PipeError> {
        self.client.write_all(bytes, self.deadline, cancelled).map_err(pipe_error)
    }

    fn read(&mut self, buf: &mut [u8], cancelled: &mut dyn FnMut() -> bool) -> Result<usize, PipeError> {
        self.client.read(buf, self.deadline, cancelled).map_err(pipe_error)
    }
}
