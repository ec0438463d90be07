//! The client end of the worker's named pipe, for a caller that must never block
//! without a deadline: SQL Server's own thread.
//!
//! Every read and write is overlapped and waited on in slices of at most 100 ms;
//! between slices the query's cancel flag (`srv_got_attention`) is checked, and the
//! operation is cancelled (`CancelIoEx`, then waited for, so no I/O is left pointing
//! at freed memory) when the query is cancelled or the deadline passes. The pipe is
//! opened with exactly the rights its DACL grants clients, and with
//! identification-level impersonation only, so whatever serves the pipe cannot act
//! as SQL Server's account.

#![allow(unsafe_code)]

use crate::ods::Ods;
use crate::relay::{Pipe, PipeError};
use std::time::{Duration, Instant};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, ERROR_FILE_NOT_FOUND, ERROR_IO_PENDING, ERROR_PIPE_BUSY,
    ERROR_PIPE_NOT_CONNECTED, GetLastError, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING, ReadFile, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
    WriteFile,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::WaitNamedPipeW;
use windows_sys::Win32::System::Threading::{CreateEventW, WaitForSingleObject};

/// How long to keep trying to open a pipe whose instances are all busy.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
/// How long a whole call may wait for the worker: longer than the worker's own
/// request limit (120 s by default), so the worker reports its own timeout first.
const ANSWER_DEADLINE: Duration = Duration::from_secs(150);
/// The longest single wait between two looks at the cancel flag.
const SLICE_MS: u32 = 100;

struct Handle(HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is owned, valid and closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// An open connection to the worker. Dropping it closes the pipe: the worker sees
/// the client gone.
struct NamedPipe {
    event: Handle,
    pipe: Handle,
    deadline: Instant,
}

/// Opens the worker's pipe `name`.
pub(crate) fn connect(name: &str, ods: &mut dyn Ods) -> Result<Box<dyn Pipe>, PipeError> {
    let path = slam_protocol::windows_pipe_path(name);
    let wide: Vec<u16> = path.encode_utf16().chain(Some(0)).collect();
    let started = Instant::now();
    let pipe = loop {
        if ods.got_attention() {
            return Err(PipeError::Cancelled);
        }
        // SAFETY: a NUL-terminated path; no security attributes or template.
        let handle = unsafe {
            CreateFileW(
                wide.as_ptr(),
                slam_protocol::PIPE_CLIENT_ACCESS,
                0,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                std::ptr::null_mut(),
            )
        };
        if handle != INVALID_HANDLE_VALUE {
            break Handle(handle);
        }
        // SAFETY: reads this thread's last error.
        match unsafe { GetLastError() } {
            ERROR_FILE_NOT_FOUND => return Err(PipeError::NotListening { pipe: path }),
            ERROR_ACCESS_DENIED => return Err(PipeError::AccessDenied { pipe: path }),
            ERROR_PIPE_BUSY if started.elapsed() < CONNECT_DEADLINE => {
                // SAFETY: a NUL-terminated path; waits at most one slice.
                unsafe { WaitNamedPipeW(wide.as_ptr(), SLICE_MS) };
            }
            ERROR_PIPE_BUSY => return Err(PipeError::Busy { pipe: path }),
            code => return Err(PipeError::Io { detail: format!("opening {path} failed (Windows error {code})") }),
        }
    };
    // SAFETY: an unnamed manual-reset event, initially not signalled.
    let event = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
    if event.is_null() {
        return Err(PipeError::Io { detail: "creating an event failed".to_string() });
    }
    Ok(Box::new(NamedPipe { event: Handle(event), pipe, deadline: Instant::now() + ANSWER_DEADLINE }))
}

/// What one overlapped operation came to.
enum Outcome {
    Done(usize),
    Closed,
}

impl NamedPipe {
    /// Starts an operation with `start` and waits for it in slices.
    fn overlapped(
        &mut self,
        cancelled: &mut dyn FnMut() -> bool,
        start: &mut dyn FnMut(HANDLE, *mut OVERLAPPED) -> i32,
    ) -> Result<Outcome, PipeError> {
        // SAFETY: OVERLAPPED is plain data; all zero is its documented initial state.
        let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
        overlapped.hEvent = self.event.0;
        let mut transferred = 0u32;
        if start(self.pipe.0, &mut overlapped) == 0 {
            // SAFETY: reads this thread's last error.
            match unsafe { GetLastError() } {
                ERROR_IO_PENDING => {}
                ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED => return Ok(Outcome::Closed),
                code => return Err(PipeError::Io { detail: format!("pipe I/O failed (Windows error {code})") }),
            }
        }
        loop {
            // SAFETY: the event belongs to this pipe and lives as long as it.
            let waited = unsafe { WaitForSingleObject(self.event.0, SLICE_MS) };
            if waited == WAIT_OBJECT_0 {
                // SAFETY: the operation completed; `overlapped` is the one it used.
                let ok = unsafe { GetOverlappedResult(self.pipe.0, &overlapped, &mut transferred, 0) };
                if ok == 0 {
                    // SAFETY: reads this thread's last error.
                    return match unsafe { GetLastError() } {
                        ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED => Ok(Outcome::Closed),
                        code => Err(PipeError::Io { detail: format!("pipe I/O failed (Windows error {code})") }),
                    };
                }
                return Ok(Outcome::Done(transferred as usize));
            }
            let stop = if cancelled() {
                Some(PipeError::Cancelled)
            } else if Instant::now() >= self.deadline {
                Some(PipeError::Timeout { seconds: ANSWER_DEADLINE.as_secs() })
            } else {
                None
            };
            if let Some(error) = stop {
                // SAFETY: cancels this very operation, then waits until the system no
                // longer uses `overlapped` or the buffer (bWait = TRUE).
                unsafe {
                    CancelIoEx(self.pipe.0, &overlapped);
                    GetOverlappedResult(self.pipe.0, &overlapped, &mut transferred, 1);
                }
                return Err(error);
            }
        }
    }
}

impl Pipe for NamedPipe {
    fn write_all(&mut self, bytes: &[u8], cancelled: &mut dyn FnMut() -> bool) -> Result<(), PipeError> {
        let mut written = 0;
        while written < bytes.len() {
            let rest = &bytes[written..];
            let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            let outcome = self.overlapped(cancelled, &mut |pipe, overlapped| {
                // SAFETY: `rest` outlives the operation: `overlapped` returns only
                // once it has completed or been cancelled and waited for.
                unsafe { WriteFile(pipe, rest.as_ptr(), len, std::ptr::null_mut(), overlapped) }
            })?;
            match outcome {
                Outcome::Done(n) => written += n,
                Outcome::Closed => {
                    return Err(PipeError::Io {
                        detail: "the worker closed the pipe while the request was sent".into(),
                    });
                }
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], cancelled: &mut dyn FnMut() -> bool) -> Result<usize, PipeError> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let ptr = buf.as_mut_ptr();
        let outcome = self.overlapped(cancelled, &mut |pipe, overlapped| {
            // SAFETY: `buf` outlives the operation, as for the write above.
            unsafe { ReadFile(pipe, ptr, len, std::ptr::null_mut(), overlapped) }
        })?;
        Ok(match outcome {
            Outcome::Done(n) => n,
            Outcome::Closed => 0,
        })
    }
}
