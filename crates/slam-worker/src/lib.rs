//! The SLAM worker: the long-running process the SQL Server side talks to.
//!
//! [`server::run`] accepts connections on a listener, reads one [`Request`] frame
//! per connection, runs it through `slam_core::ops::dispatch` and streams the
//! `message` / `result_set` frames back, ending with exactly one `done`. The same
//! entry point serves the foreground binary, tests and (later) the Windows service.
//!
//! Status: Unix domain sockets only; the Windows named pipe, the service, the
//! configuration file and the token cache are the rest of the worker issue.
//!
//! [`Request`]: slam_protocol::Request

#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(unix)]
pub mod server;
