//! The vocabulary shared by every SLAM transport.
//!
//! An operation (in `slam-core`) never prints and never knows who is listening: it
//! reports into an [`OutputSink`] a stream of [`Message`]s and [`ResultSet`]s, and
//! finishes either successfully or with a [`SlamError`]. The CLI renders that stream to
//! a terminal; the worker frames it onto the pipe, and the XP (`xp_slam.dll`) turns it
//! into `srv_wsendmsg` / `srv_describe` calls inside SQL Server. Keeping the stream the same
//! everywhere is what lets `slam --local` and a T-SQL call print the same things.
//!
//! Operations and their parameters live in [`catalogue`], error numbers in [`codes`],
//! each and nowhere else. On the local pipe between the
//! XP or CLI and the worker, a [`Request`] and its stream of [`Response`]s travel as
//! [`frame`]s.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod catalogue;
pub mod codes;
pub mod frame;
mod message;
mod output;

pub use codes::{ErrorCode, SlamError};

/// Where the worker listens and clients connect unless told otherwise: a named
/// pipe on Windows, a Unix domain socket elsewhere.
#[cfg(windows)]
pub const DEFAULT_PIPE: &str = r"\\.\pipe\speediful-slam";
/// Where the worker listens and clients connect unless told otherwise: a named
/// pipe on Windows, a Unix domain socket elsewhere.
#[cfg(not(windows))]
pub const DEFAULT_PIPE: &str = "/run/speediful/slam.sock";

/// The access a client asks for when it opens the worker's Windows pipe, and all
/// the pipe's DACL grants it: `FILE_READ_DATA | FILE_WRITE_DATA |
/// FILE_READ_ATTRIBUTES | FILE_READ_EA | READ_CONTROL | SYNCHRONIZE`. Not
/// `GENERIC_WRITE`, which includes `FILE_CREATE_PIPE_INSTANCE`: a client that could
/// create instances of the pipe could pose as the worker to other clients.
pub const PIPE_CLIENT_ACCESS: u32 = 0x0012_008B;

/// How long the XP and the CLI wait for the worker's answer, in seconds. The
/// worker's own request limit must be shorter, so that it reports its timeout
/// first, and the SQL Server store's lock timeout shorter still.
pub const CLIENT_ANSWER_DEADLINE_SECS: u64 = 150;

/// The account the worker's Windows service runs as unless installed otherwise:
/// the virtual account `NT SERVICE\SpeedifulSLAM`.
pub const DEFAULT_WORKER_ACCOUNT: &str = r"NT SERVICE\SpeedifulSLAM";

/// The SID of [`DEFAULT_WORKER_ACCOUNT`] (a service SID is computed from the
/// service's name, so it is the same on every machine; the worker's tests check it
/// against the computation).
pub const DEFAULT_WORKER_SID: &str = "S-1-5-80-1890278089-1195093792-4224173795-1800513709-2646672063";

/// The variable naming the account the worker runs as, for clients that must check
/// whoever serves the pipe before sending it a secret: a uid on Unix, a SID or
/// account name on Windows. The CLI reads it (or `--worker-account`); the XP reads
/// `SLAM_XP_WORKER_ACCOUNT`, then the registry value `WorkerAccount`.
pub const WORKER_ACCOUNT_ENV: &str = "SLAM_WORKER_ACCOUNT";

/// The full name of a Windows pipe: `speediful-slam` becomes
/// `\\.\pipe\speediful-slam`; a name already starting with `\\` is kept.
pub fn windows_pipe_path(name: &str) -> String {
    if name.starts_with(r"\\") { name.to_string() } else { format!(r"\\.\pipe\{name}") }
}
pub use message::{CallerContext, PROTOCOL_VERSION, Request, Response, WireError};
#[cfg(any(test, feature = "test-util"))]
pub use output::RecordingSink;
pub use output::{Column, ColumnType, Message, OutputSink, ResultSet, Severity, Value};
