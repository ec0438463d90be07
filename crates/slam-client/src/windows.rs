//! The Windows transport: a named pipe opened as a file.
use super::{CallOptions, ClientError};
use std::fs::File;
use std::os::windows::fs::OpenOptionsExt;
use std::time::Instant;

/// `ERROR_PIPE_BUSY`: every instance is serving another client.
const ERROR_PIPE_BUSY: i32 = 231;
/// `ERROR_FILE_NOT_FOUND`: no pipe of that name.
const ERROR_FILE_NOT_FOUND: i32 = 2;
/// `ERROR_ACCESS_DENIED`: the pipe's DACL does not admit this account.
const ERROR_ACCESS_DENIED: i32 = 5;

pub(super) fn connect(pipe: &str, options: &CallOptions) -> Result<File, ClientError> {
    let path = slam_protocol::windows_pipe_path(pipe);
    let started = Instant::now();
    loop {
        // Ask for exactly what the pipe's DACL grants clients (GENERIC_WRITE
        // would include the right to create pipe instances, which it refuses).
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .access_mode(slam_protocol::PIPE_CLIENT_ACCESS)
            .open(&path);
        match opened {
            Ok(file) => return Ok(file),
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => {
                // The worker creates the next instance right after accepting
                // one; a short sleep is all WaitNamedPipe would buy us.
                if started.elapsed() >= options.busy_wait {
                    return Err(ClientError::Busy { pipe: path, waited: started.elapsed() });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(source) => {
                return Err(match source.raw_os_error() {
                    Some(ERROR_FILE_NOT_FOUND) => ClientError::NotListening { pipe: path, source },
                    Some(ERROR_ACCESS_DENIED) => ClientError::AccessDenied { pipe: path, source },
                    _ => ClientError::Connect { pipe: path, source },
                });
            }
        }
    }
}
