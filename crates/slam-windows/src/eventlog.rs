//! The Windows event log: where an administrator looks first when a service does
//! not start. The worker reports start, stop and fatal errors there; everything
//! else goes to its log file.
//!
//! The source is registered under
//! `HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\<source>` by
//! `slam-worker service install` (which runs elevated) and removed by `uninstall`.
//! `slam-worker.exe` embeds a message table (`crates/slam-worker/res/events.mc`)
//! whose messages are just `%1`, so Event Viewer shows our text as written.
//! Reporting never fails the caller: the event log is a courtesy.

use crate::acl::wide;
use std::io;
use std::ptr;
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE, REPORT_EVENT_TYPE,
    RegisterEventSourceW, ReportEventW,
};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_LOCAL_MACHINE, KEY_SET_VALUE, REG_DWORD, REG_EXPAND_SZ, REG_OPTION_NON_VOLATILE, RegCloseKey,
    RegCreateKeyExW, RegDeleteKeyW, RegSetValueExW,
};

/// How serious an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Started, stopped.
    Information,
    /// Something an administrator should look at.
    Warning,
    /// The service could not start or stopped on a failure.
    Error,
}

fn registry_path(source: &str) -> Vec<u16> {
    wide(format!(r"SYSTEM\CurrentControlSet\Services\EventLog\Application\{source}").as_ref())
}

/// Registers `source` in the Application log, with `message_file` (normally the
/// worker's executable) as its message file.
pub fn register_source(source: &str, message_file: &std::path::Path) -> io::Result<()> {
    let path = registry_path(source);
    let mut key: HKEY = ptr::null_mut();
    // SAFETY: `path` is NUL-terminated; `key` is a valid out pointer, closed below.
    let status = unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            path.as_ptr(),
            0,
            ptr::null(),
            REG_OPTION_NON_VOLATILE,
            KEY_SET_VALUE,
            ptr::null(),
            &mut key,
            ptr::null_mut(),
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    let file = wide(message_file.as_os_str());
    let types: u32 = u32::from(EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE);
    let file_bytes = u32::try_from(file.len() * 2).unwrap_or(u32::MAX);
    let set = |name: &str, kind, data: *const u8, len: u32| {
        let name = wide(name.as_ref());
        // SAFETY: `key` is open with KEY_SET_VALUE; `data` points to `len` readable bytes.
        unsafe { RegSetValueExW(key, name.as_ptr(), 0, kind, data, len) }
    };
    let mut status = set("EventMessageFile", REG_EXPAND_SZ, file.as_ptr().cast(), file_bytes);
    if status == 0 {
        status = set("TypesSupported", REG_DWORD, (&raw const types).cast(), 4);
    }
    // SAFETY: `key` was opened above and is closed exactly once.
    unsafe { RegCloseKey(key) };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    Ok(())
}

/// Removes the registration of `source` (absent is fine).
pub fn unregister_source(source: &str) -> io::Result<()> {
    let path = registry_path(source);
    // SAFETY: `path` is NUL-terminated.
    let status = unsafe { RegDeleteKeyW(HKEY_LOCAL_MACHINE, path.as_ptr()) };
    match status {
        0 | 2 => Ok(()), // ERROR_FILE_NOT_FOUND: nothing to remove
        other => Err(io::Error::from_raw_os_error(other as i32)),
    }
}

/// Writes one event; returns whether Windows accepted it.
pub fn report(source: &str, kind: EventKind, event_id: u32, text: &str) -> bool {
    let source_w = wide(source.as_ref());
    // SAFETY: `source_w` is NUL-terminated; a null server name means this machine.
    let handle = unsafe { RegisterEventSourceW(ptr::null(), source_w.as_ptr()) };
    if handle.is_null() {
        return false;
    }
    let text_w = wide(text.as_ref());
    let strings = [text_w.as_ptr()];
    let kind: REPORT_EVENT_TYPE = match kind {
        EventKind::Information => EVENTLOG_INFORMATION_TYPE,
        EventKind::Warning => EVENTLOG_WARNING_TYPE,
        EventKind::Error => EVENTLOG_ERROR_TYPE,
    };
    // SAFETY: `handle` is a valid event source; `strings` holds one NUL-terminated
    // string alive for the call; no SID and no binary data.
    let ok = unsafe { ReportEventW(handle, kind, 0, event_id, ptr::null_mut(), 1, 0, strings.as_ptr(), ptr::null()) };
    // SAFETY: `handle` came from RegisterEventSourceW and is released once.
    unsafe { DeregisterEventSource(handle) };
    ok != 0
}

/// The text Event Viewer shows for event `event_id` with insert `text`, rendered
/// from the message table of `message_file` (as registered): proves the table is
/// embedded and maps our ids.
pub fn rendered_message(message_file: &std::path::Path, event_id: u32, text: &str) -> io::Result<String> {
    use windows_sys::Win32::Foundation::FreeLibrary;
    use windows_sys::Win32::System::Diagnostics::Debug::{
        FORMAT_MESSAGE_ALLOCATE_BUFFER, FORMAT_MESSAGE_ARGUMENT_ARRAY, FORMAT_MESSAGE_FROM_HMODULE, FormatMessageW,
    };
    use windows_sys::Win32::System::LibraryLoader::{LOAD_LIBRARY_AS_DATAFILE, LoadLibraryExW};
    let path = wide(message_file.as_os_str());
    // SAFETY: `path` is NUL-terminated; loading as a data file runs no code.
    let module = unsafe { LoadLibraryExW(path.as_ptr(), ptr::null_mut(), LOAD_LIBRARY_AS_DATAFILE) };
    if module.is_null() {
        return Err(io::Error::last_os_error());
    }
    let insert = wide(text.as_ref());
    let arguments = [insert.as_ptr() as usize];
    let mut buffer: *mut u16 = ptr::null_mut();
    // SAFETY: with ALLOCATE_BUFFER the "buffer" argument is a pointer to our
    // pointer, which receives a LocalAlloc'd string; `arguments` is an array of one
    // pointer to a NUL-terminated string, alive for the call; `module` is loaded.
    let length = unsafe {
        FormatMessageW(
            FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_ARGUMENT_ARRAY,
            module.cast_const(),
            event_id,
            0,
            (&raw mut buffer).cast::<u16>(),
            0,
            arguments.as_ptr().cast(),
        )
    };
    let result = if length == 0 || buffer.is_null() {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: on success `buffer` is a NUL-terminated LocalAlloc'd string.
        Ok(unsafe { crate::acl::take_local_wide(buffer) })
    };
    // SAFETY: `module` was loaded above and is freed once.
    unsafe { FreeLibrary(module) };
    result
}
