//! The Unix transport: a domain socket, mode 0660, peers checked by uid
//! (`SO_PEERCRED`) against the allowed clients plus the worker's own uid.

use crate::serve::{Peer, Worker, accept_loop};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::net::UnixListener;

/// A bound socket and the uids it admits.
pub struct Listener {
    listener: UnixListener,
    allowed_uids: Vec<u32>,
    /// Peers to refuse, whatever their uid, before admitting by uid again (tests
    /// of refusals alongside allowed clients; feature `test-util`).
    #[cfg(feature = "test-util")]
    refuse_first: usize,
}

/// Binds the socket at `path` with mode 0660; `allowed_uids` plus the worker's
/// own uid may connect. A stale socket (nobody listening) is replaced; a live one is
/// an error, so two workers never share a path; anything else at the path (a file,
/// a directory, a link) is an error and is left alone. The parent directory must
/// exist (`/run/speediful` is created by the service manager, e.g. systemd's
/// `RuntimeDirectory=`).
pub fn bind(path: &Path, allowed_uids: &[u32]) -> std::io::Result<Listener> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // `symlink_metadata`: a link planted at the path is judged as the link, never
    // followed to whatever it points at.
    if let Ok(existing) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !existing.file_type().is_socket() {
            // A misconfigured path must never delete a file (the store, a key).
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket; refusing to replace it", path.display()),
            ));
        }
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
    let mut allowed_uids = allowed_uids.to_vec();
    let own = std::fs::metadata(path)?.uid();
    if !allowed_uids.contains(&own) {
        allowed_uids.push(own);
    }
    Ok(Listener {
        listener,
        allowed_uids,
        #[cfg(feature = "test-util")]
        refuse_first: 0,
    })
}

impl Listener {
    /// Replaces the allowed uids, the worker's own included (to test refusals;
    /// feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn allow_only(&mut self, uids: Vec<u32>) {
        self.allowed_uids = uids;
    }

    /// Refuses the next `count` peers whatever their uid, then admits by uid again
    /// (feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn refuse_first(&mut self, count: usize) {
        self.refuse_first = count;
    }
}

/// Serves `listener` until `shutdown` completes, then waits for requests in flight.
pub async fn run(listener: Listener, worker: Arc<Worker>, shutdown: impl Future<Output = ()>) {
    #[cfg(feature = "test-util")]
    let Listener { listener, allowed_uids, mut refuse_first } = listener;
    #[cfg(not(feature = "test-util"))]
    let Listener { listener, allowed_uids } = listener;
    accept_loop(worker, shutdown, async || {
        let (stream, _) = listener.accept().await?;
        let uid = stream.peer_cred().map(|c| c.uid()).ok();
        #[cfg(feature = "test-util")]
        let uid = if refuse_first > 0 {
            refuse_first -= 1;
            None
        } else {
            uid
        };
        let peer = Peer {
            allowed: uid.is_some_and(|u| allowed_uids.contains(&u)),
            description: uid.map_or_else(|| "uid unknown".to_string(), |u| format!("uid {u}")),
        };
        Ok((stream, peer))
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_stale_socket_is_ever_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("slam.db");
        std::fs::write(&file, b"precious").unwrap();
        let err = bind(&file, &[]).err().unwrap();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"precious");

        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(bind(&link, &[]).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"precious", "a link is not followed");

        let socket = dir.path().join("w.sock");
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        let live = bind(&socket, &[]).unwrap();
        assert!(bind(&socket, &[]).err().unwrap().to_string().contains("another SLAM worker"));
        drop(live);
    }
}
