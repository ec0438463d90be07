//! Protected DACLs: SYSTEM, Administrators and the current user, nobody else.

use std::ffi::c_void;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use windows_sys::Win32::Foundation::{CloseHandle, ERROR_SUCCESS, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT,
    SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, GetTokenInformation, OWNER_SECURITY_INFORMATION,
    PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
use windows_sys::core::PWSTR;

/// Replaces the DACL of `path` (file or directory) with a protected one granting full
/// control to SYSTEM, Administrators and the user this process runs as (the SLAM
/// service account, or the administrator running `slam`), inherited by everything
/// created inside it. Inherited ACEs from the parent (such as `BUILTIN\Users: read`)
/// no longer apply.
pub fn restrict_to_owner(path: &Path) -> io::Result<()> {
    set_protected_dacl(path, &private_dacl_sddl(&current_user_sid()?))
}

/// Replaces the DACL of `path` as [`restrict_to_owner`] does, but for `account_sid`
/// (the service's account) instead of this process's user: what the installer,
/// running as LocalSystem, gives the data directory it creates for the service.
pub fn restrict_to_account(path: &Path, account_sid: &str) -> io::Result<()> {
    set_protected_dacl(path, &private_dacl_sddl(account_sid))
}

fn set_protected_dacl(path: &Path, sddl: &str) -> io::Result<()> {
    let descriptor = LocalDescriptor::from_sddl(sddl)?;
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = ptr::null_mut();
    // SAFETY: as in `restrict_to_owner`.
    if unsafe { GetSecurityDescriptorDacl(descriptor.0, &mut present, &mut dacl, &mut defaulted) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let path_w = wide(path.as_os_str());
    // SAFETY: as in `restrict_to_owner`.
    let status = unsafe {
        SetNamedSecurityInfoW(
            path_w.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            dacl,
            ptr::null(),
        )
    };
    drop(descriptor);
    if status != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    Ok(())
}

/// The protected DACL [`restrict_to_owner`] applies, in SDDL: `P` blocks
/// inheritance from the parent; `OICI` makes files and folders created inside
/// inherit each entry; `FA` is full access; `SY` SYSTEM, `BA` Administrators.
fn private_dacl_sddl(user_sid: &str) -> String {
    format!("D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{user_sid})")
}

/// True when this process runs under Wine rather than Windows (Wine's ntdll
/// exports `wine_get_version`). Wine accepts but does not apply file DACLs, so
/// tests use this to say what they could not check.
pub fn running_under_wine() -> bool {
    let ntdll = wide("ntdll.dll".as_ref());
    // SAFETY: `ntdll` is NUL-terminated; ntdll is always loaded, and the returned
    // module handle needs no release. The name passed to GetProcAddress is a
    // NUL-terminated byte string literal.
    unsafe {
        let module = GetModuleHandleW(ntdll.as_ptr());
        !module.is_null() && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

/// The DACL of `path` in SDDL form, e.g. `D:P(A;OICI;FA;;;SY)...`: for tests and
/// diagnostics.
pub fn describe_dacl(path: &Path) -> io::Result<String> {
    describe(path, DACL_SECURITY_INFORMATION)
}

/// The owner and DACL of `path` in SDDL form (`O:...D:...`): what the worker checks
/// before it trusts a file (`slam_core::trust`).
pub fn describe_owner_and_dacl(path: &Path) -> io::Result<String> {
    describe(path, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION)
}

/// The `parts` (owner, DACL...) of `path`'s security descriptor as SDDL.
fn describe(path: &Path, parts: u32) -> io::Result<String> {
    let path_w = wide(path.as_os_str());
    let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: `path_w` is NUL-terminated; the descriptor's parts are requested and
    // the other out pointers may be null; `descriptor` receives a LocalAlloc'd buffer.
    let status = unsafe {
        GetNamedSecurityInfoW(
            path_w.as_ptr(),
            SE_FILE_OBJECT,
            parts,
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
    LocalDescriptor(descriptor).to_sddl_parts(parts)
}

/// The string SID (`S-1-5-...`) of the user this process runs as.
pub fn current_user_sid() -> io::Result<String> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing; `token`
    // is a valid out pointer and is closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let result = token_user_sid(token);
    // SAFETY: `token` was opened above and is closed exactly once.
    unsafe { CloseHandle(token) };
    result
}

pub(crate) fn token_user_sid(token: HANDLE) -> io::Result<String> {
    let mut needed = 0u32;
    // SAFETY: a size query: null buffer with length 0 is allowed and fails with
    // ERROR_INSUFFICIENT_BUFFER, setting `needed`.
    unsafe { GetTokenInformation(token, TokenUser, ptr::null_mut(), 0, &mut needed) };
    if needed == 0 {
        return Err(io::Error::last_os_error());
    }
    // u64 elements keep the buffer aligned for TOKEN_USER (pointer alignment).
    let mut buffer = vec![0u64; (needed as usize).div_ceil(8)];
    // SAFETY: `buffer` holds at least `needed` bytes and is suitably aligned.
    let ok =
        unsafe { GetTokenInformation(token, TokenUser, buffer.as_mut_ptr().cast::<c_void>(), needed, &mut needed) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the buffer starts with a TOKEN_USER whose SID points inside it.
    let sid = unsafe { (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    // SAFETY: `sid` points into `buffer`, alive until the end of this function.
    unsafe { sid_to_string(sid) }
}

/// A binary SID as `S-1-5-...`.
///
/// # Safety
/// `sid` must point to a valid SID that stays alive for the call.
pub(crate) unsafe fn sid_to_string(sid: *mut c_void) -> io::Result<String> {
    let mut text: PWSTR = ptr::null_mut();
    // SAFETY: the caller guarantees `sid` is valid; `text` receives a LocalAlloc'd string.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `text` is a NUL-terminated wide string allocated by the call above.
    Ok(unsafe { take_local_wide(text) })
}

/// Copies a LocalAlloc'd NUL-terminated wide string and frees it.
///
/// # Safety
/// `text` must be a non-null, NUL-terminated UTF-16 string allocated with LocalAlloc.
pub(crate) unsafe fn take_local_wide(text: PWSTR) -> String {
    let mut len = 0;
    // SAFETY: the caller guarantees NUL termination, so every read is in bounds.
    while unsafe { *text.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` elements were just read successfully.
    let result = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
    // SAFETY: allocated with LocalAlloc per the contract; freed once.
    unsafe { LocalFree(text.cast()) };
    result
}

/// A security descriptor allocated by Win32 with LocalAlloc, freed on drop.
pub(crate) struct LocalDescriptor(pub(crate) PSECURITY_DESCRIPTOR);

impl LocalDescriptor {
    /// Parses SDDL into a self-relative security descriptor.
    pub(crate) fn from_sddl(sddl: &str) -> io::Result<Self> {
        let sddl_w = wide(sddl.as_ref());
        let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: `sddl_w` is NUL-terminated and outlives the call; `descriptor`
        // receives a LocalAlloc'd buffer, owned by the returned value.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl_w.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(descriptor))
    }

    /// The descriptor's DACL as SDDL.
    /// The parts named by `parts` (owner, DACL, ...) as SDDL.
    pub(crate) fn to_sddl_parts(&self, parts: u32) -> io::Result<String> {
        let mut text: PWSTR = ptr::null_mut();
        // SAFETY: `self.0` is a valid descriptor; `text` receives a LocalAlloc'd string.
        let ok = unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                self.0,
                SDDL_REVISION_1,
                parts,
                &mut text,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `text` is a NUL-terminated wide string allocated by the call above.
        Ok(unsafe { take_local_wide(text) })
    }
}

impl Drop for LocalDescriptor {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a Win32 call documented to LocalAlloc it.
            unsafe { LocalFree(self.0) };
        }
    }
}

pub(crate) fn wide(s: &std::ffi::OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_private(sddl: &str, user_sid: &str) {
        assert!(sddl.contains(";;;SY)") && sddl.contains(";;;BA)"), "{sddl}");
        assert!(sddl.contains(&format!(";;;{user_sid})")), "{sddl}");
        for broad in [";;;BU)", ";;;WD)", ";;;AU)"] {
            assert!(!sddl.contains(broad), "no {broad} ACE may remain: {sddl}");
        }
    }

    #[test]
    fn the_private_descriptor_is_protected_and_names_only_system_admins_and_us() {
        let sid = current_user_sid().unwrap();
        assert!(sid.starts_with("S-1-5-"), "{sid}");
        // Round-trip through Win32's own SDDL parser and printer.
        let parsed = LocalDescriptor::from_sddl(&private_dacl_sddl(&sid))
            .unwrap()
            .to_sddl_parts(DACL_SECURITY_INFORMATION)
            .unwrap();
        assert!(parsed.starts_with("D:P"), "protected from inheritance: {parsed}");
        assert_private(&parsed, &sid);
    }

    #[test]
    fn restricted_directory_and_its_new_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        restrict_to_owner(dir.path()).unwrap();
        if running_under_wine() {
            eprintln!("Wine accepts but does not apply file DACLs: the applied ACL is checked on Windows only");
            return;
        }
        let sid = current_user_sid().unwrap();
        let sddl = describe_dacl(dir.path()).unwrap();
        assert!(sddl.starts_with("D:P"), "{sddl}");
        assert_private(&sddl, &sid);
        let file = dir.path().join("inside.pem");
        std::fs::write(&file, b"x").unwrap();
        assert_private(&describe_dacl(&file).unwrap(), &sid);
    }

    #[test]
    fn a_private_directory_passes_the_workers_ownership_rule() {
        let dir = tempfile::tempdir().unwrap();
        restrict_to_owner(dir.path()).unwrap();
        let sddl = describe_owner_and_dacl(dir.path()).unwrap();
        println!("owner and DACL as read back: {sddl}");
        assert!(sddl.starts_with("O:"), "{sddl}");
        assert!(sddl.contains("D:"), "{sddl}");
    }

    #[test]
    fn wine_is_detected_only_under_wine() {
        // The lane runs these binaries under Wine; on Windows this must be false.
        let expected = std::env::var_os("SLAM_EXPECT_WINE").is_some();
        assert_eq!(running_under_wine(), expected, "set SLAM_EXPECT_WINE=1 when running under Wine");
    }
}
