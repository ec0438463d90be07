//! The worker's named pipe: a security descriptor that admits only the accounts
//! we name, instances created with it, and who is on the other end.
//!
//! The DACL itself is composed by the worker (`slam_worker::pipe_acl`); this
//! module turns it into a descriptor and creates pipe instances with it.

pub use crate::account::lookup_account_sid;
use crate::acl::LocalDescriptor;
use std::ffi::c_void;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::ptr;
use tokio::net::windows::named_pipe::{NamedPipeServer, PipeMode, ServerOptions};
use windows_sys::Win32::Foundation::{ERROR_SUCCESS, HANDLE};
use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_KERNEL_OBJECT};
use windows_sys::Win32::Security::{DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES};
use windows_sys::Win32::System::Pipes::GetNamedPipeClientProcessId;

/// A security descriptor for pipe instances, built from SDDL.
pub struct PipeSecurity {
    descriptor: LocalDescriptor,
    sddl: String,
}

// SAFETY: the descriptor is a self-relative block owned by this value, never
// written after creation; CreateNamedPipeW only reads it. Sharing or moving it
// between threads is therefore sound.
unsafe impl Send for PipeSecurity {}
// SAFETY: as above; every access is a read.
unsafe impl Sync for PipeSecurity {}

impl PipeSecurity {
    /// Parses `sddl` (e.g. `D:P(A;;GA;;;SY)...`).
    pub fn from_sddl(sddl: &str) -> io::Result<Self> {
        Ok(Self { descriptor: LocalDescriptor::from_sddl(sddl)?, sddl: sddl.to_string() })
    }

    /// The SDDL it was built from.
    pub fn sddl(&self) -> &str {
        &self.sddl
    }
}

/// Creates one instance of the pipe `path` (`\\.\pipe\NAME`) with `security`,
/// byte mode, remote clients rejected. `first` makes creation fail if the pipe
/// already exists, so a second worker (or a squatter that got there first) is
/// detected at start.
pub fn create_pipe_instance(path: &str, first: bool, security: &PipeSecurity) -> io::Result<NamedPipeServer> {
    let mut attributes = SECURITY_ATTRIBUTES {
        nLength: u32::try_from(size_of::<SECURITY_ATTRIBUTES>()).unwrap_or(u32::MAX),
        lpSecurityDescriptor: security.descriptor.0,
        bInheritHandle: 0,
    };
    // SAFETY: `attributes` is a valid SECURITY_ATTRIBUTES whose descriptor lives in
    // `security`, which outlives this call; CreateNamedPipeW copies what it needs.
    unsafe {
        ServerOptions::new()
            .first_pipe_instance(first)
            .reject_remote_clients(true)
            .pipe_mode(PipeMode::Byte)
            .create_with_security_attributes_raw(path, (&raw mut attributes).cast::<c_void>())
    }
}

/// The process id of the client connected to `server`.
pub fn client_process_id(server: &NamedPipeServer) -> io::Result<u32> {
    let mut pid = 0u32;
    // SAFETY: the handle is a connected pipe server handle owned by `server`,
    // valid for the duration of the call; `pid` is a valid out pointer.
    if unsafe { GetNamedPipeClientProcessId(server.as_raw_handle() as HANDLE, &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

/// The DACL of a pipe instance as SDDL (what the kernel holds, for tests and
/// `--check-config`).
pub fn pipe_dacl(server: &NamedPipeServer) -> io::Result<String> {
    let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: a valid handle; only the DACL is asked for, other out pointers may be
    // null; `descriptor` receives a LocalAlloc'd block owned by LocalDescriptor.
    let status = unsafe {
        GetSecurityInfo(
            server.as_raw_handle() as HANDLE,
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut descriptor,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    LocalDescriptor(descriptor).to_sddl_parts(DACL_SECURITY_INFORMATION)
}
