//! Every statement the SQL Server store sends, in one reviewed place.
//!
//! Each is sent alone (through `sp_executesql`, parameters `@P1`, `@P2`, ...) and
//! each passes the T-SQL gate in `cargo test` ([`ALL`]). The tables are the ones
//! `sql/slam-install.sql` creates; `Username` has a case-insensitive collation, so
//! `=` and `ORDER BY` compare as Salesforce does. Times are `DATETIME2(3)` in UTC.

/// Widths (`NVARCHAR(n)`, in UTF-16 code units) of the free-text columns the store
/// fills with text it did not validate, as `sql/slam-install.sql` declares them.
/// SQL Server refuses a longer value (error 2628) and, under `XACT_ABORT`, that
/// would roll back the whole change for the sake of a log line: the store cuts
/// such text to fit instead ([`super::fit`]).
pub(crate) const CALLER_WIDTH: usize = 512;
/// `SLAM_Log.Message`.
pub(crate) const MESSAGE_WIDTH: usize = 4000;
/// `SLAM_Connections.LastTestMessage`.
pub(crate) const LAST_TEST_MESSAGE_WIDTH: usize = 2000;

/// Run once on every new connection, before anything else. `XACT_ABORT` makes any
/// error roll back the whole transaction; `LOCK_TIMEOUT` (milliseconds) makes a
/// statement blocked by someone else's transaction fail with 1222 instead of
/// waiting past the worker's request limit. (Not `NOCOUNT`: the store reads the
/// row counts of its updates.)
pub(crate) fn session_setup(lock_timeout_ms: u64) -> String {
    format!("SET XACT_ABORT ON; SET LOCK_TIMEOUT {lock_timeout_ms};")
}

/// Sent before a pooled connection is reused: a connection the server dropped (a
/// restart, a failover, a killed session) fails here and is replaced, instead of
/// failing the operation that would have used it.
pub(crate) const PROBE: &str = "SELECT 1 AS Alive;";

/// 1 when the three SLAM tables exist (and this login may see them).
pub(crate) const INSTALLED: &str = "SELECT CAST(CASE WHEN OBJECT_ID(N'dbo.SLAM_Settings', N'U') IS NOT NULL \
    AND OBJECT_ID(N'dbo.SLAM_Connections', N'U') IS NOT NULL AND OBJECT_ID(N'dbo.SLAM_Log', N'U') IS NOT NULL \
    THEN 1 ELSE 0 END AS BIT) AS Installed;";

/// Sent as plain batches (not through `sp_executesql`, whose scope a transaction
/// must not cross).
pub(crate) const BEGIN: &str = "BEGIN TRANSACTION;";
pub(crate) const COMMIT: &str = "COMMIT TRANSACTION;";
pub(crate) const ROLLBACK: &str = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;";

pub(crate) const SELECT_CONNECTION: &str = "SELECT Username, AuthMethod, Domain, EnvironmentName, ApiVersion, \
    KeyName, ConsumerKey, PasswordSealed, TokenSealed, KeyPasswordSealed, InstanceUrl, OrgId, CreatedAt, UpdatedAt, \
    LastTestAt, LastTestOk, LastTestMessage FROM dbo.SLAM_Connections WHERE Username = @P1;";

pub(crate) const SELECT_CONNECTIONS: &str = "SELECT Username, AuthMethod, Domain, EnvironmentName, ApiVersion, \
    KeyName, ConsumerKey, PasswordSealed, TokenSealed, KeyPasswordSealed, InstanceUrl, OrgId, CreatedAt, UpdatedAt, \
    LastTestAt, LastTestOk, LastTestMessage FROM dbo.SLAM_Connections ORDER BY Username;";

pub(crate) const SELECT_USERNAMES: &str = "SELECT Username FROM dbo.SLAM_Connections ORDER BY Username;";

/// The stored spelling and creation time of a connection, locked until the
/// transaction ends so that two writers for one username queue.
pub(crate) const LOCK_CONNECTION: &str =
    "SELECT Username, CreatedAt FROM dbo.SLAM_Connections WITH (UPDLOCK, HOLDLOCK) WHERE Username = @P1;";

pub(crate) const INSERT_CONNECTION: &str = "INSERT INTO dbo.SLAM_Connections (Username, AuthMethod, Domain, \
    EnvironmentName, ApiVersion, KeyName, ConsumerKey, PasswordSealed, TokenSealed, KeyPasswordSealed, InstanceUrl, \
    OrgId, CreatedAt, UpdatedAt, LastTestAt, LastTestOk, LastTestMessage) \
    VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11, @P12, @P13, @P14, @P15, @P16, @P17);";

/// Replaces every column but `CreatedAt`; the new spelling of the username wins.
pub(crate) const UPDATE_CONNECTION: &str = "UPDATE dbo.SLAM_Connections SET Username = @P1, AuthMethod = @P2, \
    Domain = @P3, EnvironmentName = @P4, ApiVersion = @P5, KeyName = @P6, ConsumerKey = @P7, PasswordSealed = @P8, \
    TokenSealed = @P9, KeyPasswordSealed = @P10, InstanceUrl = @P11, OrgId = @P12, UpdatedAt = @P13, \
    LastTestAt = @P14, LastTestOk = @P15, LastTestMessage = @P16 WHERE Username = @P1;";

/// Also puts back the one settings row if someone deleted it: otherwise activating
/// would update nothing and report success with no connection active.
pub(crate) const SET_ACTIVE: &str = "UPDATE dbo.SLAM_Settings SET Username = @P1, UpdatedAt = @P2 WHERE Id = 1; \
    IF @@ROWCOUNT = 0 INSERT INTO dbo.SLAM_Settings (Id, Username, UpdatedAt) VALUES (1, @P1, @P2);";

pub(crate) const SELECT_ACTIVE: &str = "SELECT Username FROM dbo.SLAM_Settings WHERE Id = 1;";

pub(crate) const DELETE_CONNECTION: &str = "DELETE FROM dbo.SLAM_Connections WHERE Username = @P1;";

pub(crate) const CLEAR_ACTIVE_IF: &str =
    "UPDATE dbo.SLAM_Settings SET Username = NULL, UpdatedAt = @P2 WHERE Id = 1 AND Username = @P1;";

pub(crate) const RECORD_TEST: &str = "UPDATE dbo.SLAM_Connections SET LastTestAt = @P2, LastTestOk = @P3, \
    LastTestMessage = @P4, InstanceUrl = COALESCE(@P5, InstanceUrl), OrgId = COALESCE(@P6, OrgId) \
    WHERE Username = @P1;";

pub(crate) const INSERT_LOG: &str = "INSERT INTO dbo.SLAM_Log (At, Operation, Username, Caller, Outcome, \
    ErrorNumber, Message) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7);";

pub(crate) const SELECT_RECENT_LOG: &str = "SELECT TOP (@P1) At, Operation, Username, Caller, Outcome, ErrorNumber, \
    Message FROM dbo.SLAM_Log ORDER BY Id DESC;";

/// Every statement above, by name, for the T-SQL gate and the fake server's map.
#[cfg(any(test, feature = "test-util"))]
pub(crate) const ALL: &[(&str, &str)] = &[
    ("PROBE", PROBE),
    ("INSTALLED", INSTALLED),
    ("BEGIN", BEGIN),
    ("COMMIT", COMMIT),
    ("ROLLBACK", ROLLBACK),
    ("SELECT_CONNECTION", SELECT_CONNECTION),
    ("SELECT_CONNECTIONS", SELECT_CONNECTIONS),
    ("SELECT_USERNAMES", SELECT_USERNAMES),
    ("LOCK_CONNECTION", LOCK_CONNECTION),
    ("INSERT_CONNECTION", INSERT_CONNECTION),
    ("UPDATE_CONNECTION", UPDATE_CONNECTION),
    ("SET_ACTIVE", SET_ACTIVE),
    ("SELECT_ACTIVE", SELECT_ACTIVE),
    ("DELETE_CONNECTION", DELETE_CONNECTION),
    ("CLEAR_ACTIVE_IF", CLEAR_ACTIVE_IF),
    ("RECORD_TEST", RECORD_TEST),
    ("INSERT_LOG", INSERT_LOG),
    ("SELECT_RECENT_LOG", SELECT_RECENT_LOG),
];
