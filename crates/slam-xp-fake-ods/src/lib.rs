//! Test only: a fake `opends60.dll`, the library through which an extended procedure
//! talks to SQL Server. `xp_slam.dll` looks its functions up by name in the module
//! called `opends60.dll`; a test host loads this one first, builds a fake `SRV_PROC`
//! with the parameters SQL Server would pass, calls `xp_slam`, and reads back every
//! call the DLL made (messages, columns, rows, OUTPUT parameters) as JSON.
//!
//! The `srv_*` functions follow srv.h: `SUCCEED` is 1, lengths are in bytes
//! (`srv_wsendmsg`: in UTF-16 units), zero-length column data is NULL. The fake is
//! stricter than SQL Server where that catches bugs: an OUTPUT value longer than the
//! parameter's declared length, or a row sent before every column was described, is
//! refused and recorded.

#![allow(unsafe_code, clippy::missing_safety_doc, clippy::not_unsafe_ptr_arg_deref)]

use serde_json::{Value, json};
use std::ffi::{CStr, c_char, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

const SUCCEED: i32 = 1;
const FAIL: i32 = 0;

struct Param {
    ty: u8,
    max_len: u32,
    data: Option<Vec<u8>>,
    output: bool,
}

/// A fake `SRV_PROC`: one call's parameters and everything the DLL did with it.
pub struct FakeProc {
    params: Vec<Param>,
    attention: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    log: Vec<Value>,
    columns: usize,
    cells: Vec<(usize, i32)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fake's state; a poisoned lock is still usable (a recorder has no invariant).
fn state(proc: &FakeProc) -> std::sync::MutexGuard<'_, State> {
    proc.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// # Safety
/// `p` is null or a pointer returned by `fake_proc_new` and not yet freed.
unsafe fn from<'a>(p: *mut c_void) -> Option<&'a FakeProc> {
    // SAFETY: per the function's contract.
    unsafe { p.cast::<FakeProc>().as_ref() }
}

// ----- for the test host -----------------------------------------------------------

/// A new, empty call.
#[unsafe(no_mangle)]
pub extern "C" fn fake_proc_new() -> *mut c_void {
    let proc = FakeProc { params: Vec::new(), attention: AtomicBool::new(false), state: Mutex::default() };
    Box::into_raw(Box::new(proc)).cast()
}

/// Adds the next parameter: its ODS type, declared length, data (`is_null` for NULL)
/// and whether it is OUTPUT.
#[unsafe(no_mangle)]
pub extern "C" fn fake_proc_add_param(
    p: *mut c_void,
    ty: u8,
    max_len: u32,
    data: *const u8,
    len: u32,
    is_null: i32,
    is_output: i32,
) {
    // SAFETY: the host passes a live proc it owns exclusively while adding.
    let Some(proc) = (unsafe { p.cast::<FakeProc>().as_mut() }) else { return };
    let data = (is_null == 0).then(|| {
        if data.is_null() || len == 0 {
            Vec::new()
        } else {
            // SAFETY: the host passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(data, len as usize) }.to_vec()
        }
    });
    proc.params.push(Param { ty, max_len, data, output: is_output != 0 });
}

/// Sets or clears the query's cancel flag (from any thread).
#[unsafe(no_mangle)]
pub extern "C" fn fake_proc_set_attention(p: *mut c_void, on: i32) {
    // SAFETY: a live proc; the flag is atomic.
    if let Some(proc) = unsafe { from(p) } {
        proc.attention.store(on != 0, Ordering::SeqCst);
    }
}

/// Copies the JSON log of every call into `buf` (up to `cap` bytes); returns its
/// full length, so a host can ask again with a bigger buffer.
#[unsafe(no_mangle)]
pub extern "C" fn fake_proc_log(p: *mut c_void, buf: *mut u8, cap: u32) -> u32 {
    // SAFETY: a live proc.
    let Some(proc) = (unsafe { from(p) }) else { return 0 };
    let text = Value::Array(state(proc).log.clone()).to_string();
    if !buf.is_null() {
        let n = text.len().min(cap as usize);
        // SAFETY: the host passes `cap` writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buf, n) };
    }
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

/// Frees a proc made by `fake_proc_new`.
#[unsafe(no_mangle)]
pub extern "C" fn fake_proc_free(p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: made by Box::into_raw in fake_proc_new, freed once.
        drop(unsafe { Box::from_raw(p.cast::<FakeProc>()) });
    }
}

// ----- srv.h -----------------------------------------------------------------------

/// `srv_rpcparams`: the number of parameters.
#[unsafe(no_mangle)]
pub extern "C" fn srv_rpcparams(p: *mut c_void) -> i32 {
    // SAFETY: the DLL passes the proc it was called with.
    unsafe { from(p) }.map_or(-1, |proc| i32::try_from(proc.params.len()).unwrap_or(-1))
}

/// `srv_paraminfo`: a parameter's type and lengths, and its data when a buffer is given.
#[unsafe(no_mangle)]
pub extern "C" fn srv_paraminfo(
    p: *mut c_void,
    n: i32,
    ty: *mut u8,
    max_len: *mut u32,
    len: *mut u32,
    data: *mut u8,
    is_null: *mut i32,
) -> i32 {
    // SAFETY: the DLL passes its proc.
    let Some(proc) = (unsafe { from(p) }) else { return FAIL };
    let Some(param) = usize::try_from(n).ok().and_then(|n| n.checked_sub(1)).and_then(|i| proc.params.get(i)) else {
        return FAIL;
    };
    let actual = param.data.as_ref().map_or(0, Vec::len);
    // SAFETY: srv.h: every out-pointer is valid; `data`, when given, has room for
    // the actual length (the two-call pattern).
    unsafe {
        if ty.is_null() || max_len.is_null() || len.is_null() || is_null.is_null() {
            return FAIL;
        }
        *ty = param.ty;
        *max_len = param.max_len;
        *len = u32::try_from(actual).unwrap_or(u32::MAX);
        *is_null = i32::from(param.data.is_none());
        if let (false, Some(bytes)) = (data.is_null(), &param.data) {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        }
    }
    state(proc).log.push(json!({"call": "paraminfo", "n": n, "with_buffer": !data.is_null()}));
    SUCCEED
}

/// `srv_paramstatus`: 1 for an OUTPUT parameter.
#[unsafe(no_mangle)]
pub extern "C" fn srv_paramstatus(p: *mut c_void, n: i32) -> i32 {
    // SAFETY: the DLL passes its proc.
    let Some(proc) = (unsafe { from(p) }) else { return 0 };
    usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| proc.params.get(i))
        .map_or(0, |p| i32::from(p.output))
}

/// `srv_paramsetoutput`: records an OUTPUT value (refused if longer than declared).
#[unsafe(no_mangle)]
pub extern "C" fn srv_paramsetoutput(p: *mut c_void, n: i32, data: *mut u8, len: u32, is_null: i32) -> i32 {
    // SAFETY: the DLL passes its proc.
    let Some(proc) = (unsafe { from(p) }) else { return FAIL };
    let Some(param) = usize::try_from(n).ok().and_then(|n| n.checked_sub(1)).and_then(|i| proc.params.get(i)) else {
        return FAIL;
    };
    if !param.output || (is_null == 0 && len > param.max_len) {
        state(proc).log.push(json!({"call": "output_refused", "n": n, "len": len}));
        return FAIL;
    }
    let value = if is_null != 0 || data.is_null() {
        Value::Null
    } else {
        // SAFETY: `len` readable bytes, per srv.h.
        Value::String(hex(unsafe { std::slice::from_raw_parts(data, len as usize) }))
    };
    state(proc).log.push(json!({"call": "output", "n": n, "data": value}));
    SUCCEED
}

/// `srv_wsendmsg`: records a UTF-16 message.
#[unsafe(no_mangle)]
pub extern "C" fn srv_wsendmsg(p: *mut c_void, number: i32, class: u8, text: *mut u16, len: i32) -> i32 {
    // SAFETY: the DLL passes its proc.
    let Some(proc) = (unsafe { from(p) }) else { return FAIL };
    if text.is_null() || !(0..=32242).contains(&len) {
        state(proc).log.push(json!({"call": "message_refused", "len": len}));
        return FAIL;
    }
    // SAFETY: `len` UTF-16 units, per srv.h.
    let units = unsafe { std::slice::from_raw_parts(text, len as usize) };
    let text = String::from_utf16(units).unwrap_or_else(|_| "<invalid UTF-16>".to_string());
    state(proc).log.push(json!({"call": "message", "number": number, "class": class, "text": text}));
    SUCCEED
}

/// `srv_describe`: records a column; columns must come in order.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn srv_describe(
    p: *mut c_void,
    column: i32,
    name: *mut c_char,
    name_len: i32,
    dest_type: i32,
    dest_len: i32,
    src_type: i32,
    src_len: i32,
    _src_data: *mut c_void,
) -> i32 {
    // SAFETY: the DLL passes its proc.
    let Some(proc) = (unsafe { from(p) }) else { return 0 };
    let name = if name.is_null() {
        String::new()
    } else if name_len == -1 {
        // SAFETY: SRV_NULLTERM: a NUL-terminated string.
        unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
    } else {
        // SAFETY: `name_len` bytes.
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(name.cast::<u8>(), name_len.max(0) as usize) })
            .into_owned()
    };
    let mut state = state(proc);
    if usize::try_from(column).ok() != Some(state.columns + 1) {
        state.log.push(json!({"call": "describe_refused", "column": column}));
        return 0;
    }
    state.columns += 1;
    state.cells.push((0, 0));
    state.log.push(json!({"call": "describe", "column": column, "name": name, "type": dest_type,
                          "max_len": dest_len, "src_type": src_type, "src_len": src_len}));
    column
}

/// `srv_setcoldata`: remembers where a column's data is.
#[unsafe(no_mangle)]
pub extern "C" fn srv_setcoldata(p: *mut c_void, column: i32, data: *mut c_void) -> i32 {
    // SAFETY: the DLL passes its proc.
    let Some(proc) = (unsafe { from(p) }) else { return FAIL };
    let mut state = state(proc);
    match usize::try_from(column).ok().and_then(|c| c.checked_sub(1)).and_then(|i| state.cells.get_mut(i)) {
        Some(cell) => {
            cell.0 = data as usize;
            SUCCEED
        }
        None => FAIL,
    }
}

/// `srv_setcollen`: remembers a column's length (0 is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn srv_setcollen(p: *mut c_void, column: i32, len: i32) -> i32 {
    // SAFETY: the DLL passes its proc.
    let Some(proc) = (unsafe { from(p) }) else { return FAIL };
    let mut state = state(proc);
    match usize::try_from(column).ok().and_then(|c| c.checked_sub(1)).and_then(|i| state.cells.get_mut(i)) {
        Some(cell) => {
            cell.1 = len;
            SUCCEED
        }
        None => FAIL,
    }
}

/// `srv_sendrow`: records the row from the data and lengths set.
#[unsafe(no_mangle)]
pub extern "C" fn srv_sendrow(p: *mut c_void) -> i32 {
    // SAFETY: the DLL passes its proc.
    let Some(proc) = (unsafe { from(p) }) else { return FAIL };
    let mut state = state(proc);
    let cells: Vec<Value> = state
        .cells
        .iter()
        .map(|&(data, len)| {
            if data == 0 || len <= 0 {
                Value::Null
            } else {
                // SAFETY: srv.h: the data set for each column is valid until sendrow.
                Value::String(hex(unsafe { std::slice::from_raw_parts(data as *const u8, len as usize) }))
            }
        })
        .collect();
    state.log.push(json!({"call": "row", "cells": cells}));
    SUCCEED
}

/// `srv_senddone`: records the end of a result set.
#[unsafe(no_mangle)]
pub extern "C" fn srv_senddone(p: *mut c_void, status: u16, info: u16, count: i32) -> i32 {
    // SAFETY: the DLL passes its proc.
    let Some(proc) = (unsafe { from(p) }) else { return FAIL };
    let mut state = state(proc);
    state.columns = 0;
    state.cells.clear();
    state.log.push(json!({"call": "done", "status": status, "info": info, "count": count}));
    SUCCEED
}

/// `srv_got_attention`: the cancel flag the host sets.
#[unsafe(no_mangle)]
pub extern "C" fn srv_got_attention(p: *mut c_void) -> i32 {
    // SAFETY: the DLL passes its proc; the flag is atomic.
    unsafe { from(p) }.map_or(0, |proc| i32::from(proc.attention.load(Ordering::SeqCst)))
}
