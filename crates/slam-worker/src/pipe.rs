//! The Windows transport: the named pipe `\\.\pipe\speediful-slam`.
//!
//! Who may connect is decided by the kernel, through the pipe's DACL
//! ([`crate::pipe_acl`]); remote clients are rejected outright
//! (`PIPE_REJECT_REMOTE_CLIENTS`), and the first instance is created with
//! `FILE_FLAG_FIRST_PIPE_INSTANCE`, so a second worker, or a squatter that created
//! the name first, is an error at start. A new instance is created as soon as a
//! client connects, so the next client never finds the pipe missing.

use crate::pipe_acl::{ClientName, classify, pipe_sddl};
use crate::serve::{Peer, Worker, accept_loop};
use slam_protocol::{ErrorCode, SlamError};
use slam_windows::pipe::{PipeSecurity, client_process_id, create_pipe_instance};
use std::future::Future;
use std::sync::Arc;
use tokio::net::windows::named_pipe::NamedPipeServer;

/// The pipe's first instance and what the next ones are created with.
pub struct Listener {
    path: String,
    security: PipeSecurity,
    first: NamedPipeServer,
}

impl Listener {
    /// `\\.\pipe\NAME`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The DACL given to every instance.
    pub fn sddl(&self) -> &str {
        self.security.sddl()
    }

    /// The DACL the kernel holds for the first instance.
    pub fn applied_dacl(&self) -> std::io::Result<String> {
        slam_windows::pipe::pipe_dacl(&self.first)
    }
}

/// The security descriptor for `allowed_clients` plus SYSTEM, Administrators and
/// the worker's own account.
pub fn security_for(allowed_clients: &[String]) -> Result<PipeSecurity, SlamError> {
    let own = slam_windows::current_user_sid().map_err(|e| {
        SlamError::new(ErrorCode::Internal, format!("the worker's own account cannot be determined: {e}"))
    })?;
    let mut sids = Vec::new();
    for entry in allowed_clients {
        match classify(entry)? {
            ClientName::Sid(sid) => sids.push(sid),
            ClientName::Account(name) => sids.push(slam_windows::pipe::lookup_account_sid(&name).map_err(|e| {
                SlamError::new(
                    ErrorCode::ConfigInvalid,
                    format!("`allowed_clients`: the account `{name}` is unknown: {e}"),
                )
                .with_hint(r"check the spelling (DOMAIN\name), or give its SID")
            })?),
        }
    }
    let sddl = pipe_sddl(&own, &sids);
    PipeSecurity::from_sddl(&sddl).map_err(|e| {
        SlamError::new(ErrorCode::Internal, format!("the pipe's security descriptor {sddl} was refused: {e}"))
    })
}

/// Creates the first instance of the pipe `name` (`speediful-slam` or a full
/// `\\.\pipe\...` path) admitting `allowed_clients`.
pub fn bind(name: &str, allowed_clients: &[String]) -> Result<Listener, SlamError> {
    let path = slam_protocol::windows_pipe_path(name);
    let security = security_for(allowed_clients)?;
    let first = create_pipe_instance(&path, true, &security).map_err(|e| {
        let hint = if e.raw_os_error() == Some(5) {
            "another SLAM worker (or another program) already owns this pipe name; stop it or choose another `pipe`"
        } else {
            "check the `pipe` setting"
        };
        SlamError::new(ErrorCode::WorkerUnavailable, format!("cannot create the pipe {path}: {e}")).with_hint(hint)
    })?;
    Ok(Listener { path, security, first })
}

/// Serves `listener` until `shutdown` completes, then waits for requests in flight.
pub async fn run(listener: Listener, worker: Arc<Worker>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let Listener { path, security, first } = listener;
    let mut waiting = Some(first);
    accept_loop(worker, shutdown, async || {
        let server = match waiting.take() {
            Some(server) => server,
            None => create_pipe_instance(&path, false, &security)?,
        };
        server.connect().await?;
        // The next client must find an instance waiting.
        match create_pipe_instance(&path, false, &security) {
            Ok(next) => waiting = Some(next),
            Err(e) => tracing::warn!(error = %e, "creating the next pipe instance failed; retrying on the next accept"),
        }
        let description = match client_process_id(&server) {
            Ok(pid) => format!("pid {pid}"),
            Err(_) => "pid unknown".to_string(),
        };
        Ok((server, Peer { allowed: true, description }))
    })
    .await;
    Ok(())
}
