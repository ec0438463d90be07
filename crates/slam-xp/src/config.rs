//! Where the worker listens and which account must serve it, as the XP finds them.
//!
//! The pipe: the environment variable `SLAM_XP_PIPE` (tests, and a service-level
//! override), else the registry value `HKLM\SOFTWARE\Speediful\SLAM\PipeName`
//! (REG_SZ, written by the installer), else `\\.\pipe\speediful-slam`.
//!
//! The worker's account, which the XP checks before it sends a request (see
//! `pipe`): `SLAM_XP_WORKER_ACCOUNT`, else the registry value `WorkerAccount` under
//! the same key (a SID `S-1-5-...` or an account name), else the service's virtual
//! account `NT SERVICE\SpeedifulSLAM`.
//!
//! Read on every call: nothing is cached in the DLL.

#![allow(unsafe_code)]

use windows_sys::Win32::Foundation::ERROR_SUCCESS;
use windows_sys::Win32::System::Registry::{HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ, RegGetValueW};

/// The registry key the installer writes.
pub(crate) const REGISTRY_KEY: &str = r"SOFTWARE\Speediful\SLAM";
/// The value naming the pipe.
pub(crate) const REGISTRY_VALUE: &str = "PipeName";
/// The value naming the account the worker runs as.
pub(crate) const REGISTRY_WORKER_ACCOUNT: &str = "WorkerAccount";

pub(crate) fn pipe_name() -> String {
    env_value("SLAM_XP_PIPE")
        .or_else(|| registry_string(REGISTRY_VALUE))
        .unwrap_or_else(|| slam_protocol::DEFAULT_PIPE.to_string())
}

/// The account the worker must run as (a SID or an account name); `None` is the
/// default, the service's virtual account.
pub(crate) fn worker_account() -> Option<String> {
    env_value("SLAM_XP_WORKER_ACCOUNT").or_else(|| registry_string(REGISTRY_WORKER_ACCOUNT))
}

fn env_value(name: &str) -> Option<String> {
    std::env::var_os(name).and_then(|v| v.into_string().ok()).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn registry_string(value: &str) -> Option<String> {
    let wide = |s: &str| s.encode_utf16().chain(Some(0)).collect::<Vec<u16>>();
    let (key, value) = (wide(REGISTRY_KEY), wide(value));
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
