//! DPAPI: wrap the SLAM master key so the file alone is useless on another machine
//! or to another account.

use std::io;
use std::ptr;
use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Security::Cryptography::{
    CRYPT_INTEGER_BLOB, CRYPTPROTECT_UI_FORBIDDEN, CryptProtectData, CryptUnprotectData,
};

/// Encrypts `data` for the current user account on this machine.
pub fn dpapi_protect(data: &[u8]) -> io::Result<Vec<u8>> {
    transform(data, true)
}

/// Decrypts a blob from [`dpapi_protect`]; fails for another account or machine.
pub fn dpapi_unprotect(blob: &[u8]) -> io::Result<Vec<u8>> {
    transform(blob, false)
}

fn transform(input: &[u8], protect: bool) -> io::Result<Vec<u8>> {
    let len = u32::try_from(input.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let in_blob = CRYPT_INTEGER_BLOB { cbData: len, pbData: input.as_ptr().cast_mut() };
    let mut out_blob = CRYPT_INTEGER_BLOB { cbData: 0, pbData: ptr::null_mut() };
    // SAFETY: `in_blob` points at `input`, which outlives the call and is only read;
    // optional arguments are null; `out_blob` receives a LocalAlloc'd buffer freed below.
    let ok = unsafe {
        if protect {
            CryptProtectData(
                &in_blob,
                ptr::null(),
                ptr::null(),
                ptr::null(),
                ptr::null(),
                CRYPTPROTECT_UI_FORBIDDEN,
                &mut out_blob,
            )
        } else {
            CryptUnprotectData(
                &in_blob,
                ptr::null_mut(),
                ptr::null(),
                ptr::null(),
                ptr::null(),
                CRYPTPROTECT_UI_FORBIDDEN,
                &mut out_blob,
            )
        }
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let len = out_blob.cbData as usize;
    // SAFETY: on success `out_blob` describes `len` bytes at `pbData`.
    let output = unsafe { std::slice::from_raw_parts(out_blob.pbData, len) }.to_vec();
    // The buffer may hold the unwrapped master key: wipe it before handing it back.
    for i in 0..len {
        // SAFETY: `i < len`, inside the buffer described above; volatile so the
        // compiler cannot drop the wipe as a dead store.
        unsafe { std::ptr::write_volatile(out_blob.pbData.add(i), 0) };
    }
    // SAFETY: allocated by CryptProtectData/CryptUnprotectData with LocalAlloc; freed once.
    unsafe { LocalFree(out_blob.pbData.cast()) };
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protect_round_trips_and_hides_the_bytes() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let blob = dpapi_protect(secret).unwrap();
        assert!(!blob.windows(secret.len()).any(|w| w == secret));
        assert_eq!(dpapi_unprotect(&blob).unwrap(), secret);
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0xff;
        assert!(dpapi_unprotect(&tampered).is_err());
    }
}
