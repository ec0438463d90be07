//! The Unix transport: a domain socket, whose server is checked by uid
//! (`SO_PEERCRED`) before anything is sent.

use super::{CallOptions, ClientError, WorkerAccount};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

pub(super) fn connect(pipe: &str, options: &CallOptions) -> Result<UnixStream, ClientError> {
    let stream = UnixStream::connect(pipe).map_err(|source| {
        let pipe = pipe.to_string();
        match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotListening { pipe, source },
            io::ErrorKind::PermissionDenied => ClientError::AccessDenied { pipe, source },
            _ => ClientError::Connect { pipe, source },
        }
    })?;
    let server = rustix::net::sockopt::socket_peercred(&stream)
        .map_err(|e| ClientError::Connect { pipe: pipe.to_string(), source: e.into() })?
        .uid
        .as_raw();
    let trusted = trusted_uids(pipe, &options.worker_account)?;
    if !trusted.contains(&server) {
        let expected: Vec<String> = trusted.iter().map(|u| format!("uid {u}")).collect();
        return Err(ClientError::UntrustedServer {
            pipe: pipe.to_string(),
            found: format!("uid {server}"),
            expected: expected.join(" or "),
        });
    }
    for timeout in [|s: &UnixStream, t| s.set_read_timeout(t), |s: &UnixStream, t| s.set_write_timeout(t)] {
        timeout(&stream, Some(options.read_timeout))
            .map_err(|source| ClientError::Connect { pipe: pipe.to_string(), source })?;
    }
    Ok(stream)
}

/// root, and the configured worker uid, or by default the owner of the socket's
/// directory: whoever can create a socket there is the worker's own account (or
/// root), while a squatter elsewhere cannot pass.
fn trusted_uids(pipe: &str, account: &WorkerAccount) -> Result<Vec<u32>, ClientError> {
    let worker = match account {
        WorkerAccount::Named(uid) => uid.parse::<u32>().map_err(|_| ClientError::Connect {
            pipe: pipe.to_string(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the worker account `{uid}` is not a uid (SLAM_WORKER_ACCOUNT takes a number on Unix)"),
            ),
        })?,
        WorkerAccount::Default => {
            let dir = Path::new(pipe).parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::metadata(dir).map_err(|source| ClientError::Connect { pipe: pipe.to_string(), source })?.uid()
        }
    };
    Ok(if worker == 0 { vec![0] } else { vec![0, worker] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, call};
    use slam_protocol::{PROTOCOL_VERSION, Request};
    use std::io::Read;

    fn ping() -> Request {
        Request {
            version: PROTOCOL_VERSION,
            id: "p".into(),
            operation: "ping".into(),
            args: Default::default(),
            caller: Default::default(),
        }
    }

    /// A server that records every byte a client sends it.
    fn squatter(path: &Path) -> std::thread::JoinHandle<Vec<u8>> {
        let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
            let mut received = Vec::new();
            let _ = stream.read_to_end(&mut received);
            received
        })
    }

    /// A server in another process that reports how many bytes it received; run
    /// as uid 65534 when the tests run as root (root is always trusted).
    fn squatter_process(path: &Path) -> std::process::Child {
        let script = "import socket,sys\n\
s=socket.socket(socket.AF_UNIX);s.bind(sys.argv[1]);s.listen(1);print('ready',flush=True)\n\
c,_=s.accept();c.settimeout(2);n=0\n\
try:\n  while True:\n    b=c.recv(65536)\n    if not b: break\n    n+=len(b)\n\
except Exception: pass\n\
print(n,flush=True)\n";
        let mut command = if rustix::process::getuid().is_root() {
            let dir = path.parent().unwrap();
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
            let mut c = std::process::Command::new("setpriv");
            // Debian's own python (scripts/test.sh installs it): uid 65534 cannot reach a
            // python under /root.
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3"]);
            c
        } else {
            std::process::Command::new("python3")
        };
        let mut child =
            command.args(["-c", script, path.to_str().unwrap()]).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut ready = [0u8; 6];
        child.stdout.as_mut().unwrap().read_exact(&mut ready).unwrap();
        assert_eq!(&ready, b"ready\n");
        child
    }

    #[test]
    fn a_server_running_as_another_account_receives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slam.sock");
        let squatter = squatter_process(&path);
        let options = CallOptions { worker_account: WorkerAccount::Named("4242".into()), ..CallOptions::default() };
        let error = call(path.to_str().unwrap(), &ping(), &options, |_| {}).unwrap_err();
        let slam = error.to_slam_error();
        assert_eq!(slam.code, ErrorCode::WorkerNotTrusted, "{error}");
        assert!(slam.message.contains("not as the SLAM worker's account (uid 0 or uid 4242)"), "{slam}");
        let output = squatter.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "0", "not a byte may reach an untrusted server");
    }

    #[test]
    fn by_default_the_owner_of_the_socket_directory_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slam.sock");
        let received = squatter(&path);
        // The server is us, and so is the directory's owner: the request is sent
        // (the squatter then closes without an answer).
        let options = CallOptions { worker_account: WorkerAccount::Default, ..CallOptions::default() };
        let error = call(path.to_str().unwrap(), &ping(), &options, |_| {}).unwrap_err();
        assert!(matches!(error, ClientError::ConnectionLost { .. }), "{error}");
        assert!(!received.join().unwrap().is_empty());
        let trusted = trusted_uids(path.to_str().unwrap(), &WorkerAccount::Default).unwrap();
        assert!(trusted.contains(&0) && trusted.contains(&rustix::process::getuid().as_raw()), "{trusted:?}");
    }

    #[test]
    fn a_silent_server_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slam.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let options = CallOptions {
            read_timeout: std::time::Duration::from_millis(200),
            worker_account: WorkerAccount::Default,
            ..CallOptions::default()
        };
        let started = std::time::Instant::now();
        let error = call(path.to_str().unwrap(), &ping(), &options, |_| {}).unwrap_err();
        assert!(matches!(error, ClientError::TimedOut { .. }), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        drop(listener);
    }
}
