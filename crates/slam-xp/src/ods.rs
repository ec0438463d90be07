//! The part of SQL Server's Open Data Services API the relay uses, as a trait.
//!
//! Inside `sqlservr.exe` the trait is implemented by calls into `opends60.dll`
//! (`ffi`); in tests by a recorder. Keeping the relay behind this trait is what lets
//! its logic (parameter decoding, message splitting, result-set typing, errors into
//! OUTPUT parameters) run under `cargo test` on Linux.

/// ODS data types (srv.h) the relay reads or writes.
pub mod types {
    /// `NTEXT` (UTF-16LE).
    pub const NTEXT: u8 = 0x63;
    /// `NVARCHAR` (UTF-16LE; lengths in bytes).
    pub const NVARCHAR: u8 = 0xE7;
    /// `NCHAR` (UTF-16LE).
    pub const NCHAR: u8 = 0xEF;
    /// `TEXT` (server code page).
    pub const TEXT: u8 = 0x23;
    /// Legacy `VARCHAR`.
    pub const VARCHAR: u8 = 0x27;
    /// Legacy `CHAR`.
    pub const CHAR: u8 = 0x2F;
    /// `VARCHAR` up to 8000 bytes.
    pub const BIGVARCHAR: u8 = 0xA7;
    /// `CHAR` up to 8000 bytes.
    pub const BIGCHAR: u8 = 0xAF;
    /// Nullable integer of 1, 2, 4 or 8 bytes.
    pub const INTN: u8 = 0x26;
    /// `INT` (4 bytes).
    pub const INT4: u8 = 0x38;
    /// `BIGINT` (8 bytes).
    pub const INT8: u8 = 0x7F;
    /// Nullable `BIT`.
    pub const BITN: u8 = 0x68;
}

/// `srv_paramstatus` bit: the parameter was passed as OUTPUT.
pub const PARAM_RETURN: i32 = 0x1;
/// `srv_senddone` status: more results follow (ends each result set of an XP).
pub const DONE_MORE: u16 = 0x1;
/// `srv_senddone` status: the count is valid.
pub const DONE_COUNT: u16 = 0x10;

/// What `srv_paraminfo` says about a parameter before its data is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo {
    /// ODS type.
    pub ty: u8,
    /// Declared maximum length in bytes.
    pub max_len: u32,
    /// Actual length in bytes.
    pub len: u32,
    /// NULL.
    pub is_null: bool,
}

/// The ODS calls the relay makes. Every method mirrors one `srv_*` function; `false`
/// or `None` means the call failed.
pub trait Ods {
    /// `srv_rpcparams`: how many parameters were passed.
    fn param_count(&mut self) -> i32;
    /// `srv_paraminfo` with no buffer: the parameter's type and lengths.
    fn param_info(&mut self, n: i32) -> Option<ParamInfo>;
    /// `srv_paraminfo` with a buffer of the parameter's length: its bytes.
    fn param_data(&mut self, n: i32, len: u32) -> Option<Vec<u8>>;
    /// `srv_paramstatus`.
    fn param_status(&mut self, n: i32) -> i32;
    /// `srv_paramsetoutput`; `None` sets NULL.
    fn set_output(&mut self, n: i32, data: Option<&[u8]>) -> bool;
    /// `srv_wsendmsg` of an informational message (UTF-16).
    fn send_message(&mut self, text: &[u16]) -> bool;
    /// `srv_describe` of column `column` (1-based): its name, ODS type and maximum
    /// length in bytes. The data comes with each row.
    fn describe(&mut self, column: i32, name: &str, ty: u8, max_len: u32) -> bool;
    /// `srv_setcoldata` / `srv_setcollen` for every column, then `srv_sendrow`.
    /// `None` is NULL.
    fn send_row(&mut self, cells: &[Option<Vec<u8>>]) -> bool;
    /// `srv_senddone` after a result set.
    fn send_done(&mut self, status: u16, count: i32) -> bool;
    /// `srv_got_attention`: the client cancelled the query or the session is killed.
    fn got_attention(&mut self) -> bool;
}
