//! End-to-end tests of the `slam` binary: real processes, real files, real crypto.
//!
//! These run on Linux and, cross-compiled, under Wine (scripts/windows-lane.sh).
//! The `openssl` cross-checks need the openssl command, so they run on Linux only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod connections;
mod install_sql;
mod keys;
mod login;
#[cfg(not(windows))]
mod openssl;
mod sqlserver_store;
mod support;
mod worker;
