//! Every SQL statement the SQLite store runs, in one reviewed place.
//!
//! Table and column names match the T-SQL side (`SLAM_Settings.Username` is the one
//! the spec names). Usernames compare case-insensitively, as Salesforce's do.

/// Schema, idempotent. `SLAM_Settings` has exactly one row (Id = 1).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS SLAM_Settings (
    Id        INTEGER PRIMARY KEY CHECK (Id = 1),
    Username  TEXT NULL COLLATE NOCASE,
    UpdatedAt TEXT NULL
);
INSERT OR IGNORE INTO SLAM_Settings (Id, Username, UpdatedAt) VALUES (1, NULL, NULL);

CREATE TABLE IF NOT EXISTS SLAM_Connections (
    Username          TEXT    NOT NULL PRIMARY KEY COLLATE NOCASE,
    AuthMethod        TEXT    NOT NULL CHECK (AuthMethod IN ('jwt_bearer', 'security_token')),
    Domain            TEXT    NOT NULL,
    EnvironmentName   TEXT    NULL,
    ApiVersion        INTEGER NOT NULL,
    KeyName           TEXT    NULL,
    ConsumerKey       TEXT    NULL,
    PasswordSealed    BLOB    NULL,
    TokenSealed       BLOB    NULL,
    KeyPasswordSealed BLOB    NULL,
    InstanceUrl       TEXT    NULL,
    OrgId             TEXT    NULL,
    CreatedAt         TEXT    NOT NULL,
    UpdatedAt         TEXT    NOT NULL,
    LastTestAt        TEXT    NULL,
    LastTestOk        INTEGER NULL,
    LastTestMessage   TEXT    NULL
);

CREATE TABLE IF NOT EXISTS SLAM_Log (
    Id          INTEGER PRIMARY KEY AUTOINCREMENT,
    At          TEXT    NOT NULL,
    Operation   TEXT    NOT NULL,
    Username    TEXT    NULL,
    Caller      TEXT    NOT NULL,
    Outcome     TEXT    NOT NULL,
    ErrorNumber INTEGER NULL,
    Message     TEXT    NOT NULL
);
";

pub(crate) const SELECT_CONNECTION: &str = "SELECT Username, AuthMethod, Domain, EnvironmentName, ApiVersion, \
    KeyName, ConsumerKey, PasswordSealed, TokenSealed, KeyPasswordSealed, InstanceUrl, OrgId, CreatedAt, UpdatedAt, \
    LastTestAt, LastTestOk, LastTestMessage FROM SLAM_Connections WHERE Username = ?1";

pub(crate) const SELECT_CONNECTIONS: &str = "SELECT Username, AuthMethod, Domain, EnvironmentName, ApiVersion, \
    KeyName, ConsumerKey, PasswordSealed, TokenSealed, KeyPasswordSealed, InstanceUrl, OrgId, CreatedAt, UpdatedAt, \
    LastTestAt, LastTestOk, LastTestMessage FROM SLAM_Connections ORDER BY Username COLLATE NOCASE";

pub(crate) const SELECT_STORED_USERNAME: &str = "SELECT Username FROM SLAM_Connections WHERE Username = ?1";

pub(crate) const SELECT_CREATED_AT: &str = "SELECT CreatedAt FROM SLAM_Connections WHERE Username = ?1";

pub(crate) const UPSERT_CONNECTION: &str = "
INSERT INTO SLAM_Connections (Username, AuthMethod, Domain, EnvironmentName, ApiVersion, KeyName, ConsumerKey,
    PasswordSealed, TokenSealed, KeyPasswordSealed, InstanceUrl, OrgId, CreatedAt, UpdatedAt,
    LastTestAt, LastTestOk, LastTestMessage)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
ON CONFLICT (Username) DO UPDATE SET
    Username = excluded.Username, AuthMethod = excluded.AuthMethod, Domain = excluded.Domain,
    EnvironmentName = excluded.EnvironmentName, ApiVersion = excluded.ApiVersion, KeyName = excluded.KeyName,
    ConsumerKey = excluded.ConsumerKey, PasswordSealed = excluded.PasswordSealed,
    TokenSealed = excluded.TokenSealed, KeyPasswordSealed = excluded.KeyPasswordSealed,
    InstanceUrl = excluded.InstanceUrl, OrgId = excluded.OrgId, UpdatedAt = excluded.UpdatedAt,
    LastTestAt = excluded.LastTestAt, LastTestOk = excluded.LastTestOk, LastTestMessage = excluded.LastTestMessage";

/// An upsert, so that a deleted settings row cannot make activation a silent no-op.
pub(crate) const SET_ACTIVE: &str = "INSERT INTO SLAM_Settings (Id, Username, UpdatedAt) VALUES (1, ?1, ?2) \
    ON CONFLICT(Id) DO UPDATE SET Username = excluded.Username, UpdatedAt = excluded.UpdatedAt";

pub(crate) const SELECT_ACTIVE: &str = "SELECT Username FROM SLAM_Settings WHERE Id = 1";

pub(crate) const SELECT_USERNAMES: &str = "SELECT Username FROM SLAM_Connections ORDER BY Username COLLATE NOCASE";

pub(crate) const DELETE_CONNECTION: &str = "DELETE FROM SLAM_Connections WHERE Username = ?1";

pub(crate) const CLEAR_ACTIVE_IF: &str =
    "UPDATE SLAM_Settings SET Username = NULL, UpdatedAt = ?2 WHERE Id = 1 AND Username = ?1";

pub(crate) const RECORD_TEST: &str = "
UPDATE SLAM_Connections SET LastTestAt = ?2, LastTestOk = ?3, LastTestMessage = ?4,
    InstanceUrl = COALESCE(?5, InstanceUrl), OrgId = COALESCE(?6, OrgId)
WHERE Username = ?1";

pub(crate) const INSERT_LOG: &str = "
INSERT INTO SLAM_Log (At, Operation, Username, Caller, Outcome, ErrorNumber, Message)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

pub(crate) const SELECT_RECENT_LOG: &str = "
SELECT At, Operation, Username, Caller, Outcome, ErrorNumber, Message FROM SLAM_Log ORDER BY Id DESC LIMIT ?1";
