//! The one client of the worker's named pipe, shared by the CLI (`slam-client`) and
//! the XP (`xp_slam.dll`, on SQL Server's own thread). No async runtime: the XP
//! must not start one inside `sqlservr.exe`.
//!
//! Why it exists: while the worker is stopped, any local user can create
//! `\\.\pipe\speediful-slam` and would receive the next request, which may carry a
//! Salesforce password, a security token or a key passphrase. So a client opens the
//! pipe, asks who serves it ([`PipeClient::verify_server`]: the pipe's owner, or if
//! that cannot be read, or under Wine, the server process's user; see
//! [`PipeClient::server_account`]) and only then writes. And a
//! client must never hang: every read and write is overlapped and waited on in
//! slices of at most 100 ms against a deadline, with a cancel callback (the XP's
//! `srv_got_attention`) looked at between slices; on cancel or deadline the
//! operation is cancelled (`CancelIoEx`) and then waited for, so no I/O is left
//! pointing at a buffer the caller frees.
//!
//! The pipe is opened with exactly the rights its DACL grants clients
//! ([`slam_protocol::PIPE_CLIENT_ACCESS`], which includes `READ_CONTROL`, so the
//! owner can be read), and with identification-level impersonation only, so
//! whatever serves the pipe cannot act as the client's account.

use crate::acl::{LocalDescriptor, sid_to_string};
use std::fmt;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr;
use std::time::{Duration, Instant};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, ERROR_FILE_NOT_FOUND, ERROR_IO_PENDING, ERROR_PIPE_BUSY,
    ERROR_PIPE_NOT_CONNECTED, ERROR_SUCCESS, GetLastError, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_KERNEL_OBJECT};
use windows_sys::Win32::Security::{OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING, ReadFile, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
    WriteFile,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::{GetNamedPipeServerProcessId, WaitNamedPipeW};
use windows_sys::Win32::System::Threading::{CreateEventW, WaitForSingleObject};

/// The longest single wait between two looks at the cancel callback.
const SLICE: Duration = Duration::from_millis(100);

/// LocalSystem (`S-1-5-18`): always trusted to serve the pipe; it can read the keys
/// anyway.
pub const LOCAL_SYSTEM_SID: &str = "S-1-5-18";
/// `BUILTIN\Administrators` (`S-1-5-32-544`): always trusted; an elevated
/// process's objects are owned by Administrators, not by its user.
pub const ADMINISTRATORS_SID: &str = "S-1-5-32-544";

/// Why opening, reading or writing the pipe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeClientError {
    /// No pipe of that name: nothing listens.
    NotFound,
    /// The pipe's DACL does not admit this account.
    AccessDenied,
    /// Every instance stayed busy until the busy deadline.
    Busy,
    /// The cancel callback said stop (a query cancel).
    Cancelled,
    /// The deadline passed.
    TimedOut,
    /// The server closed the pipe while a request was being written.
    Closed,
    /// Anything else, with the Windows error code.
    Io {
        /// The Windows error code (`GetLastError`).
        code: u32,
    },
}

impl fmt::Display for PipeClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeClientError::NotFound => f.write_str("no such pipe"),
            PipeClientError::AccessDenied => f.write_str("the pipe refused this account"),
            PipeClientError::Busy => f.write_str("every instance of the pipe stayed busy"),
            PipeClientError::Cancelled => f.write_str("cancelled"),
            PipeClientError::TimedOut => f.write_str("the deadline passed"),
            PipeClientError::Closed => f.write_str("the server closed the pipe"),
            PipeClientError::Io { code } => {
                write!(f, "{} (Windows error {code})", io::Error::from_raw_os_error(*code as i32))
            }
        }
    }
}

impl std::error::Error for PipeClientError {}

impl From<PipeClientError> for io::Error {
    fn from(error: PipeClientError) -> Self {
        let kind = match error {
            PipeClientError::NotFound => io::ErrorKind::NotFound,
            PipeClientError::AccessDenied => io::ErrorKind::PermissionDenied,
            PipeClientError::Busy => io::ErrorKind::ResourceBusy,
            PipeClientError::Cancelled => io::ErrorKind::Interrupted,
            PipeClientError::TimedOut => io::ErrorKind::TimedOut,
            PipeClientError::Closed => io::ErrorKind::BrokenPipe,
            PipeClientError::Io { code } => return io::Error::from_raw_os_error(code as i32),
        };
        io::Error::new(kind, error)
    }
}

/// The server of the pipe runs as an account not in the trusted list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    /// The account found (a SID), or why none could be read.
    pub found: String,
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the pipe is served by {}, an account not trusted to serve it", self.found)
    }
}

impl std::error::Error for Untrusted {}

/// The accounts trusted to serve the pipe: LocalSystem, Administrators and
/// `worker` (a SID, see [`resolve_worker_account`]).
pub fn trusted_accounts(worker: &str) -> Vec<String> {
    let mut trusted = vec![LOCAL_SYSTEM_SID.to_string(), ADMINISTRATORS_SID.to_string()];
    if !trusted.iter().any(|t| t.eq_ignore_ascii_case(worker)) {
        trusted.push(worker.to_string());
    }
    trusted
}

/// The SID of the account the worker runs as: `None` is the service's virtual
/// account `NT SERVICE\SpeedifulSLAM` ([`slam_protocol::DEFAULT_WORKER_SID`]); a
/// string starting with `S-1-` is taken as a SID; anything else is an account name
/// (`DOMAIN\svc-slam`), looked up.
pub fn resolve_worker_account(account: Option<&str>) -> io::Result<String> {
    match account.map(str::trim) {
        None | Some("") => Ok(slam_protocol::DEFAULT_WORKER_SID.to_string()),
        Some(sid) if sid.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("S-1-")) => Ok(sid.to_ascii_uppercase()),
        Some(name) => crate::account::lookup_account_sid(name),
    }
}

/// An open client end of a named pipe. Dropping it closes the pipe.
#[derive(Debug)]
pub struct PipeClient {
    pipe: OwnedHandle,
    event: OwnedHandle,
}

/// What one overlapped operation came to.
enum Outcome {
    Done(usize),
    Closed,
}

/// Milliseconds to wait now: one slice, or what is left before `deadline` (at
/// least 1, so a passed deadline is still looked at once more).
fn slice_ms(deadline: Instant) -> u32 {
    let left = deadline.saturating_duration_since(Instant::now()).min(SLICE);
    u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1)
}

fn last_error() -> u32 {
    // SAFETY: reads this thread's last error; no preconditions.
    unsafe { GetLastError() }
}

impl PipeClient {
    /// Opens the pipe `path` (`\\.\pipe\NAME`). While every instance is busy it
    /// waits (`WaitNamedPipeW`, one slice at a time) until `busy_deadline`;
    /// `cancelled` is looked at before every attempt.
    pub fn open(
        path: &str,
        busy_deadline: Instant,
        cancelled: &mut dyn FnMut() -> bool,
    ) -> Result<Self, PipeClientError> {
        let wide: Vec<u16> = path.encode_utf16().chain(Some(0)).collect();
        let pipe = loop {
            if cancelled() {
                return Err(PipeClientError::Cancelled);
            }
            // SAFETY: a NUL-terminated path that outlives the call; no security
            // attributes and no template.
            let handle = unsafe {
                CreateFileW(
                    wide.as_ptr(),
                    slam_protocol::PIPE_CLIENT_ACCESS,
                    0,
                    ptr::null(),
                    OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                    ptr::null_mut(),
                )
            };
            if handle != INVALID_HANDLE_VALUE {
                // SAFETY: a handle just opened and owned by nothing else.
                break unsafe { OwnedHandle::from_raw_handle(handle) };
            }
            match last_error() {
                ERROR_FILE_NOT_FOUND => return Err(PipeClientError::NotFound),
                ERROR_ACCESS_DENIED => return Err(PipeClientError::AccessDenied),
                ERROR_PIPE_BUSY if Instant::now() < busy_deadline => {
                    // SAFETY: a NUL-terminated path; waits at most one slice. Its
                    // result does not matter: the open is simply tried again.
                    unsafe { WaitNamedPipeW(wide.as_ptr(), slice_ms(busy_deadline)) };
                }
                ERROR_PIPE_BUSY => return Err(PipeClientError::Busy),
                code => return Err(PipeClientError::Io { code }),
            }
        };
        // SAFETY: an unnamed manual-reset event, initially not signalled; no
        // security attributes.
        let event = unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) };
        if event.is_null() {
            return Err(PipeClientError::Io { code: last_error() });
        }
        // SAFETY: an event just created and owned by nothing else.
        let event = unsafe { OwnedHandle::from_raw_handle(event) };
        Ok(Self { pipe, event })
    }

    /// The owner of the pipe (`S-1-5-...`) as the kernel holds it: the account of
    /// whoever created its first instance, or Administrators when that process was
    /// elevated.
    pub fn server_owner_sid(&self) -> io::Result<String> {
        let mut owner: PSID = ptr::null_mut();
        let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: a valid pipe handle opened with READ_CONTROL; only the owner is
        // asked for and the other out pointers may be null; `descriptor` receives
        // a LocalAlloc'd block, owned below, into which `owner` points.
        let status = unsafe {
            GetSecurityInfo(
                self.pipe.as_raw_handle() as HANDLE,
                SE_KERNEL_OBJECT,
                OWNER_SECURITY_INFORMATION,
                &mut owner,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                &mut descriptor,
            )
        };
        if status != ERROR_SUCCESS {
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        let descriptor = LocalDescriptor(descriptor);
        if owner.is_null() {
            return Err(io::Error::other("the pipe's security descriptor names no owner"));
        }
        // SAFETY: `owner` points into `descriptor`, alive until the end of this function.
        let sid = unsafe { sid_to_string(owner) };
        drop(descriptor);
        sid
    }

    /// The process id of the pipe's server, for messages.
    pub fn server_process_id(&self) -> io::Result<u32> {
        let mut pid = 0u32;
        // SAFETY: a valid pipe handle; `pid` is a valid out pointer.
        if unsafe { GetNamedPipeServerProcessId(self.pipe.as_raw_handle() as HANDLE, &mut pid) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(pid)
    }

    /// The user the server process runs as, from its token (needs rights over that
    /// process that Windows grants across accounts only to administrators).
    pub fn server_process_user_sid(&self) -> io::Result<String> {
        crate::account::process_user_sid(self.server_process_id()?)
    }

    /// The account serving the pipe. On Windows: the pipe's owner, or, when the
    /// owner cannot be read, the server process's user. Under Wine the other way
    /// round: Wine gives a pipe created without a descriptor no owner at all, and
    /// one created with an owner-less descriptor (as the worker's is) its token's
    /// default owner, which Wine sets to the user's primary group (`...-513`, "Domain
    /// Users"), not to the user; the server process's token says who it runs as.
    pub fn server_account(&self) -> Result<String, String> {
        let owner = self.server_owner_sid().map_err(|e| format!("the pipe's owner cannot be read: {e}"));
        let user =
            || self.server_process_user_sid().map_err(|e| format!("the server process's user cannot be read: {e}"));
        if crate::running_under_wine() {
            user().or_else(|user_error| {
                owner.map_err(|owner_error| format!("an unknown account ({user_error}; {owner_error})"))
            })
        } else {
            owner.or_else(|owner_error| {
                user().map_err(|user_error| format!("an unknown account ({owner_error}; {user_error})"))
            })
        }
    }

    /// Succeeds when the pipe is served by LocalSystem, Administrators or one of
    /// `trusted` (SIDs): call it before writing anything.
    pub fn verify_server(&self, trusted: &[String]) -> Result<(), Untrusted> {
        let found = self.server_account().map_err(|found| Untrusted { found })?;
        let ok = [LOCAL_SYSTEM_SID, ADMINISTRATORS_SID]
            .into_iter()
            .chain(trusted.iter().map(String::as_str))
            .any(|sid| sid.eq_ignore_ascii_case(&found));
        if ok { Ok(()) } else { Err(Untrusted { found }) }
    }

    /// Reads what has arrived into `buf`: 0 when the server closed the pipe.
    pub fn read(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        cancelled: &mut dyn FnMut() -> bool,
    ) -> Result<usize, PipeClientError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let data = buf.as_mut_ptr();
        let outcome = self.overlapped(deadline, cancelled, &mut |pipe, overlapped| {
            // SAFETY: `buf` outlives the operation: `overlapped` returns only once
            // it has completed, or has been cancelled and waited for.
            unsafe { ReadFile(pipe, data, len, ptr::null_mut(), overlapped) }
        })?;
        Ok(match outcome {
            Outcome::Done(n) => n,
            Outcome::Closed => 0,
        })
    }

    /// Writes all of `bytes`.
    pub fn write_all(
        &mut self,
        bytes: &[u8],
        deadline: Instant,
        cancelled: &mut dyn FnMut() -> bool,
    ) -> Result<(), PipeClientError> {
        let mut written = 0;
        while written < bytes.len() {
            let rest = &bytes[written..];
            let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            let outcome = self.overlapped(deadline, cancelled, &mut |pipe, overlapped| {
                // SAFETY: `rest` outlives the operation, as for the read above.
                unsafe { WriteFile(pipe, rest.as_ptr(), len, ptr::null_mut(), overlapped) }
            })?;
            match outcome {
                Outcome::Done(n) => written += n,
                Outcome::Closed => return Err(PipeClientError::Closed),
            }
        }
        Ok(())
    }

    /// Starts an operation with `start` and waits for it in slices until it
    /// completes, `cancelled` says stop or `deadline` passes.
    fn overlapped(
        &mut self,
        deadline: Instant,
        cancelled: &mut dyn FnMut() -> bool,
        start: &mut dyn FnMut(HANDLE, *mut OVERLAPPED) -> i32,
    ) -> Result<Outcome, PipeClientError> {
        let pipe = self.pipe.as_raw_handle() as HANDLE;
        let event = self.event.as_raw_handle() as HANDLE;
        // SAFETY: OVERLAPPED is plain data; all zero is its documented initial state.
        let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
        overlapped.hEvent = event;
        let mut transferred = 0u32;
        if start(pipe, &mut overlapped) == 0 {
            match last_error() {
                ERROR_IO_PENDING => {}
                ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED => return Ok(Outcome::Closed),
                code => return Err(PipeClientError::Io { code }),
            }
        }
        loop {
            // SAFETY: the event belongs to this client and lives as long as it.
            let waited = unsafe { WaitForSingleObject(event, slice_ms(deadline)) };
            if waited == WAIT_OBJECT_0 {
                // SAFETY: the operation completed; `overlapped` is the one it used.
                let ok = unsafe { GetOverlappedResult(pipe, &overlapped, &mut transferred, 0) };
                if ok == 0 {
                    return match last_error() {
                        ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED => Ok(Outcome::Closed),
                        code => Err(PipeClientError::Io { code }),
                    };
                }
                return Ok(Outcome::Done(transferred as usize));
            }
            let stop = if cancelled() {
                Some(PipeClientError::Cancelled)
            } else if Instant::now() >= deadline {
                Some(PipeClientError::TimedOut)
            } else {
                None
            };
            if let Some(error) = stop {
                // SAFETY: cancels this very operation, then waits until the system no
                // longer uses `overlapped` or the buffer (bWait = TRUE).
                unsafe {
                    CancelIoEx(pipe, &overlapped);
                    GetOverlappedResult(pipe, &overlapped, &mut transferred, 1);
                }
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
    use windows_sys::Win32::System::Pipes::{ConnectNamedPipe, CreateNamedPipeW, PIPE_TYPE_BYTE, PIPE_WAIT};

    /// A pipe served by this process that accepts one client and counts what it
    /// receives until the client goes away.
    fn recording_server(path: &str) -> std::thread::JoinHandle<usize> {
        let wide: Vec<u16> = path.encode_utf16().chain(Some(0)).collect();
        // SAFETY: a NUL-terminated name; default security.
        let handle = unsafe {
            CreateNamedPipeW(
                wide.as_ptr(),
                PIPE_ACCESS_DUPLEX,
                PIPE_TYPE_BYTE | PIPE_WAIT,
                1,
                4096,
                4096,
                0,
                ptr::null(),
            )
        };
        assert_ne!(handle, INVALID_HANDLE_VALUE);
        let handle = handle as usize;
        std::thread::spawn(move || {
            let handle = handle as HANDLE;
            let mut received = 0;
            let mut buf = [0u8; 4096];
            // SAFETY: a pipe handle owned by this thread, closed once at the end.
            unsafe {
                ConnectNamedPipe(handle, ptr::null_mut());
                loop {
                    let mut n = 0u32;
                    if ReadFile(handle, buf.as_mut_ptr(), buf.len() as u32, &mut n, ptr::null_mut()) == 0 || n == 0 {
                        break;
                    }
                    received += n as usize;
                }
                CloseHandle(handle);
            }
            received
        })
    }

    #[test]
    fn the_server_is_identified_before_anything_is_written() {
        let path = format!(r"\\.\pipe\slam-pipe-client-test-{}", std::process::id());
        let server = recording_server(&path);
        let mut client = PipeClient::open(&path, Instant::now() + Duration::from_secs(5), &mut || false).unwrap();
        let own = crate::current_user_sid().unwrap();
        let owner = client.server_owner_sid();
        let token = client.server_process_user_sid();
        println!("pipe owner: {owner:?}; server process user: {token:?}; this process runs as {own}");
        assert_eq!(client.server_process_id().unwrap(), std::process::id());
        let account = client.server_account().unwrap();
        assert!(account == own || account == ADMINISTRATORS_SID, "served by us: {account}");
        assert!(client.verify_server(std::slice::from_ref(&own)).is_ok());
        if account == own {
            let refused = client.verify_server(&[slam_protocol::DEFAULT_WORKER_SID.to_string()]).unwrap_err();
            assert_eq!(refused.found, own);
        }
        client.write_all(b"ping", Instant::now() + Duration::from_secs(5), &mut || false).unwrap();
        drop(client);
        assert_eq!(server.join().unwrap(), 4);
    }

    /// This process's token's default owner: what the kernel makes the owner of an
    /// object created with a descriptor that names none.
    fn default_owner() -> String {
        use windows_sys::Win32::Security::{GetTokenInformation, TOKEN_OWNER, TOKEN_QUERY, TokenOwner};
        use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
        let mut token = ptr::null_mut();
        // SAFETY: the current process pseudo-handle; `token` is a valid out pointer.
        assert!(unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } != 0);
        // SAFETY: a handle just opened, owned here.
        let token = unsafe { OwnedHandle::from_raw_handle(token) };
        let mut buffer = vec![0u64; 128];
        let mut needed = 0;
        // SAFETY: `buffer` is 1024 aligned bytes, more than a TOKEN_OWNER and its SID need.
        let ok = unsafe {
            GetTokenInformation(token.as_raw_handle(), TokenOwner, buffer.as_mut_ptr().cast(), 1024, &mut needed)
        };
        assert!(ok != 0);
        // SAFETY: on success the buffer starts with a TOKEN_OWNER whose SID points inside it.
        unsafe { sid_to_string((*buffer.as_ptr().cast::<TOKEN_OWNER>()).Owner).unwrap() }
    }

    #[test]
    fn the_owner_read_back_is_the_one_the_kernel_assigned() {
        use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
        let path = format!(r"\\.\pipe\slam-pipe-client-owner-{}", std::process::id());
        let wide: Vec<u16> = path.encode_utf16().chain(Some(0)).collect();
        // Like the worker's: a DACL and no owner.
        let descriptor = LocalDescriptor::from_sddl("D:P(A;;GA;;;WD)").unwrap();
        let attributes = SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: descriptor.0,
            bInheritHandle: 0,
        };
        // SAFETY: a NUL-terminated name and a valid descriptor, both alive for the call.
        let server = unsafe {
            CreateNamedPipeW(
                wide.as_ptr(),
                PIPE_ACCESS_DUPLEX,
                PIPE_TYPE_BYTE | PIPE_WAIT,
                1,
                4096,
                4096,
                0,
                &attributes,
            )
        };
        assert_ne!(server, INVALID_HANDLE_VALUE);
        // SAFETY: a handle just created, owned here.
        let _server = unsafe { OwnedHandle::from_raw_handle(server) };
        let client = PipeClient::open(&path, Instant::now() + Duration::from_secs(5), &mut || false).unwrap();
        let owner = client.server_owner_sid().unwrap();
        let default = default_owner();
        println!(
            "owner of a pipe created with an owner-less descriptor: {owner}; this process's default owner: {default}; \
             its user: {}",
            crate::current_user_sid().unwrap()
        );
        assert_eq!(owner, default);
    }

    #[test]
    fn a_silent_server_times_out_and_a_cancel_ends_the_wait() {
        let path = format!(r"\\.\pipe\slam-pipe-client-silent-{}", std::process::id());
        let server = recording_server(&path);
        let mut client = PipeClient::open(&path, Instant::now() + Duration::from_secs(5), &mut || false).unwrap();
        let mut buf = [0u8; 16];
        let started = Instant::now();
        let error = client.read(&mut buf, Instant::now() + Duration::from_millis(250), &mut || false).unwrap_err();
        assert_eq!(error, PipeClientError::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        let mut polls = 0;
        let error = client
            .read(&mut buf, Instant::now() + Duration::from_secs(30), &mut || {
                polls += 1;
                polls > 2
            })
            .unwrap_err();
        assert_eq!(error, PipeClientError::Cancelled);
        drop(client);
        assert_eq!(server.join().unwrap(), 0);
    }

    #[test]
    fn nothing_listening_is_not_found() {
        let path = format!(r"\\.\pipe\slam-pipe-client-nobody-{}", std::process::id());
        let error = PipeClient::open(&path, Instant::now(), &mut || false).unwrap_err();
        assert_eq!(error, PipeClientError::NotFound);
    }

    #[test]
    fn worker_accounts_resolve_to_sids() {
        assert_eq!(resolve_worker_account(None).unwrap(), slam_protocol::DEFAULT_WORKER_SID);
        assert_eq!(resolve_worker_account(Some(" ")).unwrap(), slam_protocol::DEFAULT_WORKER_SID);
        assert_eq!(resolve_worker_account(Some("s-1-5-21-1-2-3-1001")).unwrap(), "S-1-5-21-1-2-3-1001");
        let trusted = trusted_accounts("S-1-5-21-1-2-3-1001");
        assert_eq!(trusted, [LOCAL_SYSTEM_SID, ADMINISTRATORS_SID, "S-1-5-21-1-2-3-1001"]);
        assert_eq!(trusted_accounts(LOCAL_SYSTEM_SID).len(), 2);
        match resolve_worker_account(Some("no-such-account-slam-test")) {
            Ok(sid) => panic!("an unknown account resolved to {sid}"),
            Err(e) => println!("an unknown account: {e}"),
        }
    }
}
