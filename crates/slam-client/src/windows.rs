//! The Windows transport: the worker's named pipe, through
//! `slam_windows::pipe_client` (the client the XP uses too). Whoever serves the pipe
//! is checked before a byte is sent: the pipe's owner must be LocalSystem,
//! Administrators or the worker's account, else 50414 and nothing is written. Every
//! read and every write has a deadline (`CallOptions::read_timeout`).

use super::{CallOptions, ClientError, WorkerAccount};
use slam_windows::pipe_client::{PipeClient, PipeClientError, resolve_worker_account, trusted_accounts};
use std::io;
use std::time::{Duration, Instant};

/// `ERROR_FILE_NOT_FOUND`: no pipe of that name.
const ERROR_FILE_NOT_FOUND: i32 = 2;
/// `ERROR_ACCESS_DENIED`: the pipe's DACL does not admit this account.
const ERROR_ACCESS_DENIED: i32 = 5;

/// An open, verified connection to the worker.
pub(super) struct PipeStream {
    client: PipeClient,
    timeout: Duration,
}

pub(super) fn connect(pipe: &str, options: &CallOptions) -> Result<PipeStream, ClientError> {
    let path = slam_protocol::windows_pipe_path(pipe);
    // Resolved before the pipe is opened: an unknown account fails without
    // touching the pipe.
    let worker = match &options.worker_account {
        WorkerAccount::Default => resolve_worker_account(None),
        WorkerAccount::Named(name) => resolve_worker_account(Some(name)),
    }
    .map_err(|e| ClientError::Connect {
        pipe: path.clone(),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the worker account `{}` (SLAM_WORKER_ACCOUNT or --worker-account) is unknown: {e}",
                match &options.worker_account {
                    WorkerAccount::Default => slam_protocol::DEFAULT_WORKER_ACCOUNT,
                    WorkerAccount::Named(name) => name,
                }
            ),
        ),
    })?;
    let trusted = trusted_accounts(&worker);

    let started = Instant::now();
    let client = PipeClient::open(&path, started + options.busy_wait, &mut || false).map_err(|e| match e {
        PipeClientError::NotFound => {
            ClientError::NotListening { pipe: path.clone(), source: io::Error::from_raw_os_error(ERROR_FILE_NOT_FOUND) }
        }
        PipeClientError::AccessDenied => {
            ClientError::AccessDenied { pipe: path.clone(), source: io::Error::from_raw_os_error(ERROR_ACCESS_DENIED) }
        }
        PipeClientError::Busy => ClientError::Busy { pipe: path.clone(), waited: started.elapsed() },
        other => ClientError::Connect { pipe: path.clone(), source: other.into() },
    })?;

    if let Err(untrusted) = client.verify_server(&trusted) {
        let server = match client.server_process_id() {
            Ok(pid) => format!("pid {pid}"),
            Err(_) => "pid unknown".to_string(),
        };
        // Dropping `client` closes the pipe: the server received nothing.
        return Err(ClientError::UntrustedServer {
            pipe: path,
            found: format!("{} ({server})", untrusted.found),
            expected: trusted.join(" or "),
        });
    }
    Ok(PipeStream { client, timeout: options.read_timeout })
}

impl io::Read for PipeStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A deadline expiry maps to ErrorKind::TimedOut, which `call` reports as
        // ClientError::TimedOut.
        Ok(self.client.read(buf, Instant::now() + self.timeout, &mut || false)?)
    }
}

impl io::Write for PipeStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.client.write_all(buf, Instant::now() + self.timeout, &mut || false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
