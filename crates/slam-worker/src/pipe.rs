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
use std::time::Duration;
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
///
/// At least one instance is listening at all times: the next instance is created
/// before the one a client just reached is handed over, and when a connect fails
/// the replacement is created before the failed instance is dropped. Were the
/// last instance dropped before its replacement existed, the name would vanish for
/// a moment: a client would find no worker, and another program could create the
/// pipe and be sent the next request.
pub async fn run(listener: Listener, worker: Arc<Worker>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let Listener { path, security, first } = listener;
    let mut waiting = Some(first);
    accept_loop(worker, shutdown, async || {
        let server = match waiting.take() {
            Some(server) => server,
            None => next_instance(&path, &security).await?,
        };
        if let Err(e) = server.connect().await {
            // The failed instance still holds the name until it is dropped: create
            // its replacement first.
            match next_instance(&path, &security).await {
                Ok(next) => waiting = Some(next),
                Err(create) => {
                    tracing::warn!(error = %create, "creating a pipe instance failed; retrying on the next accept");
                }
            }
            drop(server);
            return Err(e);
        }
        // The next client must find an instance waiting.
        match next_instance(&path, &security).await {
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

/// How many times creating a pipe instance is retried in one round.
const CREATE_RETRIES: u32 = 3;
/// The pause between two tries.
const CREATE_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// A new (not first) instance of the pipe, retried a few times with a short pause
/// (a transient failure, such as a momentary lack of resources, must not leave the
/// name without a listening instance).
async fn next_instance(path: &str, security: &PipeSecurity) -> std::io::Result<NamedPipeServer> {
    let mut tries = 0;
    loop {
        match create_pipe_instance(path, false, security) {
            Ok(server) => return Ok(server),
            Err(e) if tries < CREATE_RETRIES => {
                tries += 1;
                tracing::debug!(error = %e, tries, "creating a pipe instance failed; trying again");
                tokio::time::sleep(CREATE_RETRY_PAUSE).await;
            }
            Err(e) => return Err(e),
        }
    }
}
