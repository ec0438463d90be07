//! Where the worker listens, as the XP finds it: the environment variable
//! `SLAM_XP_PIPE` (tests, and a service-level override), else the registry value
//! `HKLM\SOFTWARE\Speediful\SLAM\PipeName` (REG_SZ, written by the installer), else
//! `\\.\pipe\speediful-slam`. Read on every call: nothing is cached in the DLL.

#![allow(unsafe_code)]

use windows_sys::Win32::Foundation::ERROR_SUCCESS;
use windows_sys::Win32::System::Registry::{HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ, RegGetValueW};

/// The registry key the installer writes.
pub(crate) const REGISTRY_KEY: &str = r"SOFTWARE\Speediful\SLAM";
/// The value naming the pipe.
pub(crate) const REGISTRY_VALUE: &str = "PipeName";

pub(crate) fn pipe_name() -> String {
    if let Some(name) = std::env::var_os("SLAM_XP_PIPE").and_then(|v| v.into_string().ok()).filter(|v| !v.is_empty()) {
        return name;
    }
    registry_pipe_name().unwrap_or_else(|| slam_protocol::DEFAULT_PIPE.to_string())
}

fn registry_pipe_name() -> Option<String> {
    let wide = |s: &str| s.encode_utf16().chain(Some(0)).collect::<Vec<u16>>();
    let (key, value) = (wide(REGISTRY_KEY), wide(REGISTRY_VALUE));
    let mut buffer = [0u16; 512];
    let mut size = (buffer.len() * 2) as u32;
    // SAFETY: NUL-terminated names; the buffer and its size in bytes are valid, and
    // RRF_RT_REG_SZ guarantees a NUL-terminated string if it fits.
    let status = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_SZ,
            std::ptr::null_mut(),
            buffer.as_mut_ptr().cast(),
            &mut size,
        )
    };
    if status != ERROR_SUCCESS {
        return None;
    }
    let units = (size as usize / 2).min(buffer.len());
    let text = String::from_utf16_lossy(&buffer[..units]);
    let text = text.trim_end_matches('\0').trim().to_string();
    (!text.is_empty()).then_some(text)
}
