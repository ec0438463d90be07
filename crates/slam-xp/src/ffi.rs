//! The ODS functions, found at run time in the `opends60.dll` that SQL Server has
//! already loaded, and the [`Ods`] trait implemented over them.
//!
//! Looking them up (rather than linking `opends60.lib`) needs no import library and
//! fails closed: if the module or any function is missing, the call returns 1 and
//! nothing else happens. The table is built per call and kept nowhere.

#![allow(unsafe_code)]

use crate::ods::{Ods, ParamInfo};
use std::ffi::{CString, c_char, c_void};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

/// SQL Server's opaque per-call structure (`SRV_PROC`).
pub(crate) type SrvProc = c_void;

// Signatures from srv.h: `int` and `long` are 32-bit on Windows, BOOL is an int.
type RpcParams = unsafe extern "C" fn(*mut SrvProc) -> i32;
type ParamInfoFn = unsafe extern "C" fn(*mut SrvProc, i32, *mut u8, *mut u32, *mut u32, *mut u8, *mut i32) -> i32;
type ParamStatus = unsafe extern "C" fn(*mut SrvProc, i32) -> i32;
type ParamSetOutput = unsafe extern "C" fn(*mut SrvProc, i32, *mut u8, u32, i32) -> i32;
type WSendMsg = unsafe extern "C" fn(*mut SrvProc, i32, u8, *mut u16, i32) -> i32;
type Describe = unsafe extern "C" fn(*mut SrvProc, i32, *mut c_char, i32, i32, i32, i32, i32, *mut c_void) -> i32;
type SetColData = unsafe extern "C" fn(*mut SrvProc, i32, *mut c_void) -> i32;
type SetColLen = unsafe extern "C" fn(*mut SrvProc, i32, i32) -> i32;
type SendRow = unsafe extern "C" fn(*mut SrvProc) -> i32;
type SendDone = unsafe extern "C" fn(*mut SrvProc, u16, u16, i32) -> i32;
type GotAttention = unsafe extern "C" fn(*mut SrvProc) -> i32;

/// `SUCCEED` in srv.h.
const SUCCEED: i32 = 1;
/// `SRV_NULLTERM`: the string is NUL-terminated.
const NULLTERM: i32 = -1;

/// The ODS entry points.
pub(crate) struct OdsLibrary {
    rpcparams: RpcParams,
    paraminfo: ParamInfoFn,
    paramstatus: ParamStatus,
    paramsetoutput: ParamSetOutput,
    wsendmsg: WSendMsg,
    describe: Describe,
    setcoldata: SetColData,
    setcollen: SetColLen,
    sendrow: SendRow,
    senddone: SendDone,
    got_attention: GotAttention,
}

macro_rules! lookup {
    ($module:expr, $name:literal, $ty:ty) => {{
        // SAFETY: `$module` is a loaded module handle and the name is NUL-terminated.
        let f = unsafe { GetProcAddress($module, concat!($name, "\0").as_ptr()) }?;
        // SAFETY: the function has this signature in srv.h; on x64 "C" and "system"
        // are the same calling convention.
        unsafe { std::mem::transmute::<unsafe extern "system" fn() -> isize, $ty>(f) }
    }};
}

impl OdsLibrary {
    /// The functions of the `opends60.dll` loaded in this process, or `None`.
    pub(crate) fn load() -> Option<Self> {
        let name: Vec<u16> = "opends60.dll\0".encode_utf16().collect();
        // SAFETY: a NUL-terminated UTF-16 name; no reference count is taken.
        let module = unsafe { GetModuleHandleW(name.as_ptr()) };
        if module.is_null() {
            return None;
        }
        Some(Self {
            rpcparams: lookup!(module, "srv_rpcparams", RpcParams),
            paraminfo: lookup!(module, "srv_paraminfo", ParamInfoFn),
            paramstatus: lookup!(module, "srv_paramstatus", ParamStatus),
            paramsetoutput: lookup!(module, "srv_paramsetoutput", ParamSetOutput),
            wsendmsg: lookup!(module, "srv_wsendmsg", WSendMsg),
            describe: lookup!(module, "srv_describe", Describe),
            setcoldata: lookup!(module, "srv_setcoldata", SetColData),
            setcollen: lookup!(module, "srv_setcollen", SetColLen),
            sendrow: lookup!(module, "srv_sendrow", SendRow),
            senddone: lookup!(module, "srv_senddone", SendDone),
            got_attention: lookup!(module, "srv_got_attention", GotAttention),
        })
    }
}

/// One call's `SRV_PROC` with the functions that act on it.
pub(crate) struct Server<'a> {
    lib: &'a OdsLibrary,
    proc: *mut SrvProc,
}

impl<'a> Server<'a> {
    /// `proc` must be the non-null `SRV_PROC` SQL Server passed to this call.
    pub(crate) fn new(lib: &'a OdsLibrary, proc: *mut SrvProc) -> Self {
        Self { lib, proc }
    }
}

impl Ods for Server<'_> {
    fn param_count(&mut self) -> i32 {
        // SAFETY: `proc` is this call's SRV_PROC (checked non-null by the export).
        unsafe { (self.lib.rpcparams)(self.proc) }
    }

    fn param_info(&mut self, n: i32) -> Option<ParamInfo> {
        let (mut ty, mut max_len, mut len, mut is_null) = (0u8, 0u32, 0u32, 0i32);
        // SAFETY: the first of the two documented calls: no data buffer, every
        // out-pointer valid for the call.
        let ok = unsafe {
            (self.lib.paraminfo)(self.proc, n, &mut ty, &mut max_len, &mut len, std::ptr::null_mut(), &mut is_null)
        };
        (ok == SUCCEED).then_some(ParamInfo { ty, max_len, len, is_null: is_null != 0 })
    }

    fn param_data(&mut self, n: i32, len: u32) -> Option<Vec<u8>> {
        // Two spare bytes for the wide NUL some servers write after the data.
        let mut buffer = vec![0u8; len as usize + 2];
        let (mut ty, mut max_len, mut actual, mut is_null) = (0u8, 0u32, 0u32, 0i32);
        // SAFETY: the second documented call, with a buffer of the length the first
        // call reported (plus room for a terminator).
        let ok = unsafe {
            (self.lib.paraminfo)(self.proc, n, &mut ty, &mut max_len, &mut actual, buffer.as_mut_ptr(), &mut is_null)
        };
        if ok != SUCCEED || actual > len {
            return None;
        }
        buffer.truncate(actual as usize);
        Some(buffer)
    }

    fn param_status(&mut self, n: i32) -> i32 {
        // SAFETY: this call's SRV_PROC.
        unsafe { (self.lib.paramstatus)(self.proc, n) }
    }

    fn set_output(&mut self, n: i32, data: Option<&[u8]>) -> bool {
        let ok = match data {
            // SAFETY: ODS copies the bytes during the call; the pointer is valid for `len`.
            Some(bytes) => unsafe {
                let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                (self.lib.paramsetoutput)(self.proc, n, bytes.as_ptr().cast_mut(), len, 0)
            },
            // SAFETY: NULL output: no data pointer is read.
            None => unsafe { (self.lib.paramsetoutput)(self.proc, n, std::ptr::null_mut(), 0, 1) },
        };
        ok == SUCCEED
    }

    fn send_message(&mut self, text: &[u16]) -> bool {
        let len = i32::try_from(text.len()).unwrap_or(i32::MAX);
        // SAFETY: ODS reads `len` UTF-16 units during the call; message number 0,
        // class 0: an informational message, like PRINT.
        unsafe { (self.lib.wsendmsg)(self.proc, 0, 0, text.as_ptr().cast_mut(), len) == SUCCEED }
    }

    fn describe(&mut self, column: i32, name: &str, ty: u8, max_len: u32) -> bool {
        let Ok(name) = CString::new(name) else { return false };
        let len = i32::try_from(max_len).unwrap_or(i32::MAX);
        let ty = i32::from(ty);
        // SAFETY: the name is NUL-terminated and read during the call; no source data
        // is bound here (each row sets its own with srv_setcoldata).
        let described = unsafe {
            (self.lib.describe)(
                self.proc,
                column,
                name.as_ptr().cast_mut(),
                NULLTERM,
                ty,
                len,
                ty,
                len,
                std::ptr::null_mut(),
            )
        };
        described == column
    }

    fn send_row(&mut self, cells: &[Option<Vec<u8>>]) -> bool {
        for (i, cell) in cells.iter().enumerate() {
            let column = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let (data, len) = match cell {
                Some(bytes) => (bytes.as_ptr().cast_mut().cast::<c_void>(), i32::try_from(bytes.len()).unwrap_or(0)),
                None => (std::ptr::null_mut(), 0),
            };
            // SAFETY: `cells` outlives srv_sendrow below, which is when ODS reads the
            // data; a length of 0 on a nullable column sends NULL.
            let ok = unsafe {
                (self.lib.setcoldata)(self.proc, column, data) == SUCCEED
                    && (self.lib.setcollen)(self.proc, column, len) == SUCCEED
            };
            if !ok {
                return false;
            }
        }
        // SAFETY: every column's data was set above and is still alive.
        unsafe { (self.lib.sendrow)(self.proc) == SUCCEED }
    }

    fn send_done(&mut self, status: u16, count: i32) -> bool {
        // SAFETY: this call's SRV_PROC.
        unsafe { (self.lib.senddone)(self.proc, status, 0, count) == SUCCEED }
    }

    fn got_attention(&mut self) -> bool {
        // SAFETY: this call's SRV_PROC.
        unsafe { (self.lib.got_attention)(self.proc) != 0 }
    }
}
