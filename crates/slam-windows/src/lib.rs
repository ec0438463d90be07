//! Win32 helpers for SLAM. The whole crate is empty on other platforms.
//!
//! Unsafe code in SLAM's Windows support is confined to this crate, each block with
//! the reason it is sound.
//!
//! Why private directories need code here: on Windows, new folders under
//! `C:\ProgramData` inherit an ACL that lets every member of `BUILTIN\Users` read
//! them, and the JWT private keys live under `C:\ProgramData\Speediful\SLAM\keys`.
//! `restrict_to_owner` replaces that inherited ACL with a protected one.
//! `dpapi_protect` wraps the master key that seals stored secrets. `pipe` (feature
//! `pipe-server`, the only part that needs tokio) gives the worker's named pipe its
//! narrow DACL; `pipe_client` is the one client of that pipe the CLI and the XP share,
//! which checks who serves the pipe before a byte of a request (which may carry a
//! password) is sent; `eventlog` reports the service's start, stop and fatal errors.

#![cfg(windows)]
#![deny(missing_docs)]
#![allow(unsafe_code)]

mod account;
mod acl;
mod dpapi;
pub mod eventlog;
#[cfg(feature = "pipe-server")]
pub mod pipe;
pub mod pipe_client;

pub use account::lookup_account_sid;
pub use acl::{
    current_user_sid, describe_dacl, describe_owner_and_dacl, restrict_to_account, restrict_to_owner,
    running_under_wine,
};
pub use dpapi::{dpapi_protect, dpapi_unprotect};
