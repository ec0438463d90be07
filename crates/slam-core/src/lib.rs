//! The operations of Speediful SLAM, independent of how they are invoked.
//!
//! The CLI (`slam --local`), the worker and the tests all call the functions in
//! [`ops`]; they differ only in where the output goes (an
//! [`OutputSink`](slam_protocol::OutputSink)). Below `ops`, each module does one job
//! and returns typed results and its own error enum:
//!
//! - [`keys`]: the JWT key vault — RSA keypairs and self-signed certificates under
//!   `DATA_DIR/keys`, generated, listed and removed safely.
//! - [`data_dir`]: where SLAM keeps its state, and checks that it is usable.
//! - [`salesforce`]: logging in (JWT Bearer, SOAP `login()`) and the connection test,
//!   over one HTTPS client with explicit trust, proxy, timeout and retry rules.
//! - [`seal`]: secrets at rest, sealed under the machine master key.
//! - [`clock`]: the current time, behind a trait so certificate validity can be
//!   tested at any instant.
//! - [`secret`]: the type that carries passwords and passphrases without ever
//!   printing them.
//! - [`trust`]: whether the data directory and the files in it could have been
//!   planted or changed by another local account.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod clock;
pub mod data_dir;
mod fs_private;
pub mod keys;
pub mod ops;
pub mod resident;
pub mod salesforce;
pub mod seal;
pub mod secret;
pub mod trust;
