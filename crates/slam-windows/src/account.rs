//! Accounts by name and by process, without tokio: the worker resolves the
//! accounts of its `allowed_clients` here, and the pipe's clients (CLI and XP)
//! resolve the account the worker must run as, and read who a pipe's server
//! process runs as when the pipe's owner cannot be read.

use crate::acl::{sid_to_string, token_user_sid, wide};
use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr;
use windows_sys::Win32::Security::{LookupAccountNameW, SID_NAME_USE, TOKEN_QUERY};
use windows_sys::Win32::System::Threading::{OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION};

/// The SID (`S-1-5-...`) of an account name such as `DOMAIN\svc-sql`.
pub fn lookup_account_sid(name: &str) -> io::Result<String> {
    let name_w = wide(name.as_ref());
    let mut sid_len = 0u32;
    let mut domain_len = 0u32;
    let mut use_kind: SID_NAME_USE = 0;
    // SAFETY: a size query: null buffers with zero lengths are allowed and set the
    // needed sizes.
    unsafe {
        LookupAccountNameW(
            ptr::null(),
            name_w.as_ptr(),
            ptr::null_mut(),
            &mut sid_len,
            ptr::null_mut(),
            &mut domain_len,
            &mut use_kind,
        )
    };
    if sid_len == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut sid = vec![0u64; (sid_len as usize).div_ceil(8)];
    let mut domain = vec![0u16; domain_len as usize + 1];
    // SAFETY: both buffers are at least as large as the sizes passed.
    let ok = unsafe {
        LookupAccountNameW(
            ptr::null(),
            name_w.as_ptr(),
            sid.as_mut_ptr().cast::<c_void>(),
            &mut sid_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut use_kind,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `sid` holds a valid SID, alive until the end of this function.
    unsafe { sid_to_string(sid.as_mut_ptr().cast::<c_void>()) }
}

/// The user (`S-1-5-...`) the process `pid` runs as, read from its token. Needs
/// `PROCESS_QUERY_LIMITED_INFORMATION` on the process and `TOKEN_QUERY` on its
/// token, which Windows grants across accounts only to administrators: a
/// fallback for when a pipe's owner cannot be read.
pub(crate) fn process_user_sid(pid: u32) -> io::Result<String> {
    // SAFETY: no handle is inherited; the returned handle, if any, is owned below.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `process` is a handle just opened and owned by nothing else.
    let process = unsafe { OwnedHandle::from_raw_handle(process) };
    let mut token = ptr::null_mut();
    // SAFETY: `process` is a valid process handle; `token` is a valid out pointer.
    if unsafe { OpenProcessToken(process.as_raw_handle(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `token` is a handle just opened and owned by nothing else.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    token_user_sid(token.as_raw_handle())
}
