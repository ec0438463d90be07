//! What travels on the pipe: one [`Request`], then a stream of [`Response`] frames
//! ending with exactly one `done`.
//!
//! Every frame carries the protocol version. A peer that receives a version it
//! does not speak answers with a `done` carrying an error (it never just drops the
//! connection), so an old XP talking to a new worker gets a message a DBA can act on.

use crate::{Column, ErrorCode, Severity, SlamError, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Who asked, for the audit log (`SLAM_Log.Caller`). Filled by the T-SQL shim from
/// `ORIGINAL_LOGIN()`, `DB_NAME()`, `@@SERVERNAME`, `@@SPID`, `APP_NAME()`; by the CLI
/// from the OS account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerContext {
    /// SQL login or OS account.
    #[serde(default)]
    pub login: Option<String>,
    /// Calling database.
    #[serde(default)]
    pub database: Option<String>,
    /// Server (instance) name.
    #[serde(default)]
    pub server: Option<String>,
    /// Session id.
    #[serde(default)]
    pub spid: Option<i64>,
    /// Application name.
    #[serde(default)]
    pub application: Option<String>,
}

/// One request. `Debug` shows argument names only: values may be secrets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version of the sender.
    pub version: u32,
    /// Chosen by the sender; echoed in every response frame and in the worker's logs.
    pub id: String,
    /// The operation: `ping`, `setup_jwt`, `add_connection`, …
    pub operation: String,
    /// The operation's arguments by T-SQL parameter name without `@` (e.g.
    /// `key_name`); absent or null means NULL. Secrets travel only here, on the
    /// local pipe, and are never logged.
    #[serde(default)]
    pub args: BTreeMap<String, serde_json::Value>,
    /// Who asked.
    #[serde(default)]
    pub caller: CallerContext,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("version", &self.version)
            .field("id", &self.id)
            .field("operation", &self.operation)
            .field("args", &self.args.keys().collect::<Vec<_>>())
            .field("caller", &self.caller)
            .finish()
    }
}

/// One response frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// A message for the user (SSMS Messages tab).
    Message {
        /// Protocol version.
        version: u32,
        /// The request's id.
        id: String,
        /// Info or warning.
        severity: Severity,
        /// The text.
        text: String,
    },
    /// A result set (SSMS Results tab).
    ResultSet {
        /// Protocol version.
        version: u32,
        /// The request's id.
        id: String,
        /// Typed columns.
        columns: Vec<Column>,
        /// Rows.
        rows: Vec<Vec<Value>>,
    },
    /// The end: success, or a SLAM error.
    Done {
        /// Protocol version.
        version: u32,
        /// The request's id.
        id: String,
        /// The error, if the operation failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<WireError>,
    },
}

/// A [`SlamError`] on the wire: number and symbolic code both, as in the CLI's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// The stable number, e.g. 50104.
    pub number: u32,
    /// The stable code, e.g. `SLAM_KEY_EXISTS`.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl From<&SlamError> for WireError {
    fn from(e: &SlamError) -> Self {
        Self {
            number: e.code.number(),
            code: e.code.as_str().to_string(),
            message: e.message.clone(),
            hint: e.hint.clone(),
        }
    }
}

impl WireError {
    /// The error as a [`SlamError`]. A number this build does not know (a newer
    /// worker) becomes [`ErrorCode::Internal`] with the original number and code kept
    /// in the message.
    pub fn to_slam_error(&self) -> SlamError {
        match ErrorCode::from_number(self.number) {
            Some(code) => SlamError { code, message: self.message.clone(), hint: self.hint.clone() },
            None => SlamError {
                code: ErrorCode::Internal,
                message: format!("SLAM error {} {}: {}", self.number, self.code, self.message),
                hint: self.hint.clone(),
            },
        }
    }
}

impl CallerContext {
    /// One line for logs and `SLAM_Log.Caller`: `login, db X, spid N, app Y` as the
    /// client claims them, plus what the transport itself verified of the peer
    /// (`verified peer uid 1000`, `verified peer pid 4242`), so a log reader can
    /// tell the claim from the fact.
    pub fn describe(&self, peer: Option<&str>) -> String {
        let mut parts = vec![self.login.clone().unwrap_or_else(|| "unknown login".into())];
        if let Some(server) = &self.server {
            parts.push(format!("server {server}"));
        }
        if let Some(db) = &self.database {
            parts.push(format!("db {db}"));
        }
        if let Some(spid) = self.spid {
            parts.push(format!("spid {spid}"));
        }
        if let Some(app) = &self.application {
            parts.push(format!("app {app}"));
        }
        if let Some(peer) = peer {
            parts.push(format!("verified peer {peer}"));
        }
        parts.join(", ")
    }
}

impl Response {
    /// The id this frame answers.
    pub fn id(&self) -> &str {
        match self {
            Response::Message { id, .. } | Response::ResultSet { id, .. } | Response::Done { id, .. } => id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn wire_shapes_are_stable() {
        let request: Request = serde_json::from_str(
            r#"{"version":1,"id":"r1","operation":"setup_jwt","args":{"key_name":"acme-prod","cert_days":null},
                "caller":{"login":"DOMAIN\\dba","database":"Sales","spid":57}}"#,
        )
        .unwrap();
        assert_eq!(request.operation, "setup_jwt");
        assert_eq!(request.args["key_name"], "acme-prod");
        assert_eq!(request.caller.spid, Some(57));
        let mut secret = request.clone();
        secret.args.insert("password".into(), "hunter2-secret".into());
        assert!(!format!("{secret:?}").contains("hunter2"), "Debug never shows argument values");

        let done = Response::Done {
            version: 1,
            id: "r1".into(),
            error: Some(WireError::from(&SlamError::new(ErrorCode::KeyExists, "exists").with_hint("use @force = 1"))),
        };
        let json = serde_json::to_value(&done).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"done","version":1,"id":"r1",
                "error":{"number":50104,"code":"SLAM_KEY_EXISTS","message":"exists","hint":"use @force = 1"}})
        );
        let ok = serde_json::to_value(Response::Done { version: 1, id: "r2".into(), error: None }).unwrap();
        assert_eq!(ok, serde_json::json!({"type":"done","version":1,"id":"r2"}));
    }
}
