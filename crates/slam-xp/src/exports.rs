//! The two functions SQL Server calls. Each is a panic boundary: whatever happens
//! inside, `sqlservr.exe` gets a return code, never an unwinding panic or an abort.

#![allow(unsafe_code)]

use crate::ffi::{OdsLibrary, Server, SrvProc};
use crate::{config, pipe, relay};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// `ODS_VERSION` from srv.h: the ODS interface this DLL was written for.
const ODS_VERSION: u32 = 0x0700_0000;

/// The return code of any failure the relay could not report itself.
const FAILED: i32 = 1;

/// Tells SQL Server which ODS version the DLL expects.
#[unsafe(no_mangle)]
pub extern "C" fn __GetXpVersion() -> u32 {
    ODS_VERSION
}

/// `EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT`.
#[unsafe(no_mangle)]
pub extern "C" fn xp_slam(srvproc: *mut SrvProc) -> i32 {
    if srvproc.is_null() {
        return FAILED;
    }
    // AssertUnwindSafe: nothing captured outlives the call, so a panic leaves no
    // broken state behind for anyone to observe.
    catch_unwind(AssertUnwindSafe(|| {
        let Some(lib) = OdsLibrary::load() else { return FAILED };
        let mut server = Server::new(&lib, srvproc);
        let name = config::pipe_name();
        relay::run(&mut server, &mut |ods| pipe::connect(&name, ods))
    }))
    .unwrap_or(FAILED)
}
