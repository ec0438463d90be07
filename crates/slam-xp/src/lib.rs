//! `xp_slam.dll`: the SQL Server extended procedure behind every SLAM procedure.
//!
//! ```sql
//! EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
//! ```
//!
//! It is a relay and nothing else: it sends `@request` (the protocol's request JSON)
//! to the SLAM worker over the local pipe, turns the worker's messages and result
//! sets into SQL Server output as they arrive, and puts the final error into the
//! OUTPUT parameters and the return code (0 success, 1 failure). The T-SQL wrapper
//! raises that error.
//!
//! It runs on SQL Server's own thread inside `sqlservr.exe`, so: every export is
//! inside a panic boundary, no thread or runtime outlives a call (so
//! `DBCC xp_slam(FREE)` is safe), there is no global mutable state, every size from
//! the wire is capped, and every wait has a deadline and watches for a query cancel.
//!
//! [`relay`] is the logic, over the [`ods::Ods`] trait and the [`relay::Pipe`] trait,
//! tested on Linux; `ffi`, `exports`, `pipe` and `config` are the Windows plumbing.

#![deny(missing_docs)]

pub mod ods;
pub mod relay;

#[cfg(windows)]
mod config;
#[cfg(windows)]
mod exports;
#[cfg(windows)]
mod ffi;
#[cfg(windows)]
mod pipe;

/// The DLL's exports, public so that they are reachable items and not only symbols.
#[cfg(windows)]
pub use exports::{__GetXpVersion, xp_slam};
