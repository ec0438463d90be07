//! The one entry point every transport uses: a [`Request`] in, output into a sink.
//!
//! The worker calls this for each request from the pipe; the CLI's `--local` mode
//! will build the same `Request` and call it in-process, which is what guarantees
//! that both print the same things. Arguments are named as the T-SQL parameters
//! without `@`; JSON null or absence means NULL. Unknown argument names are refused
//! (a typo must not silently become NULL).

use super::connections::AddConnectionArgs;
use super::login::ConnectionArgs;
use super::{Context, SetupJwtArgs};
use crate::secret::{Secret, secret};
use slam_protocol::{ErrorCode, OutputSink, PROTOCOL_VERSION, Request, SlamError};
use std::collections::BTreeMap;

/// Every operation a request may name, with its arguments (in groups, so operations
/// that extend another's parameters list only what they add).
pub const OPERATIONS: &[(&str, &[&[&str]])] = &[
    ("ping", &[]),
    ("setup_jwt", &[&["key_name", "password", "cert_days", "force"]]),
    ("remove_jwt", &[&["key_name"]]),
    ("list_keys", &[]),
    ("test_login", &[CONNECTION_ARGS]),
    ("add_connection", &[CONNECTION_ARGS, &["environment_name", "skip_test"]]),
    ("list_connections", &[]),
    ("use_connection_username", &[&["username"]]),
    ("test_connection", &[&["username"]]),
    ("remove_connection", &[&["username"]]),
    ("settings", &[]),
];

/// The parameters of a connection, shared by `test_login` and `add_connection`.
const CONNECTION_ARGS: &[&str] = &[
    "username",
    "auth_method",
    "consumer_key",
    "key_name",
    "key_password",
    "password",
    "token",
    "domain",
    "api_version",
];

/// Runs `request` and reports into `sink`.
pub async fn dispatch(ctx: &Context<'_>, request: Request, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    if request.version != PROTOCOL_VERSION {
        return Err(SlamError::new(
            ErrorCode::ProtocolVersion,
            format!("the request speaks protocol version {}, this worker speaks {PROTOCOL_VERSION}", request.version),
        )
        .with_hint("install the same SLAM version for the worker, xp_slam.dll and the T-SQL scripts"));
    }
    let Some((_, allowed)) = OPERATIONS.iter().find(|(name, _)| *name == request.operation) else {
        return Err(SlamError::new(ErrorCode::UnknownOperation, format!("unknown operation `{}`", request.operation))
            .with_hint(format!(
                "known operations: {}",
                OPERATIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )));
    };
    let args = Args::new(&request.operation, request.args, allowed)?;
    match request.operation.as_str() {
        "ping" => super::ping(ctx, sink),
        "setup_jwt" => super::setup_jwt(
            ctx,
            SetupJwtArgs {
                key_name: args.text("key_name")?,
                password: args.secret("password")?,
                cert_days: args.int("cert_days")?,
                force: args.bit("force")?.unwrap_or(false),
            },
            sink,
        ),
        // An empty name reaches the key vault, whose error says what a name must be.
        "remove_jwt" => super::remove_jwt(ctx, &args.present_text("key_name")?, sink),
        "list_keys" => super::list_keys(ctx, sink),
        "test_login" => super::test_login(ctx, args.connection()?, sink).await,
        "add_connection" => {
            let add = AddConnectionArgs {
                connection: args.connection()?,
                environment_name: args.text("environment_name")?,
                skip_test: args.bit("skip_test")?.unwrap_or(false),
            };
            super::add_connection(ctx, add, sink).await
        }
        "list_connections" => super::list_connections(ctx, sink),
        "use_connection_username" => super::use_connection_username(ctx, &args.required_text("username")?, sink),
        "test_connection" => super::test_connection(ctx, &args.required_text("username")?, sink).await,
        "remove_connection" => super::remove_connection(ctx, &args.required_text("username")?, sink),
        "settings" => super::settings(ctx, sink),
        other => Err(SlamError::new(ErrorCode::Internal, format!("operation `{other}` is listed but not dispatched"))),
    }
}

/// A request's arguments, with typed accessors that name the argument on error.
struct Args {
    operation: String,
    values: BTreeMap<String, serde_json::Value>,
}

impl Args {
    fn new(
        operation: &str,
        values: BTreeMap<String, serde_json::Value>,
        groups: &[&[&str]],
    ) -> Result<Self, SlamError> {
        let allowed: Vec<&str> = groups.iter().flat_map(|g| g.iter().copied()).collect();
        if let Some(unknown) = values.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(type_error(format!("`@{unknown}` is not a parameter of {operation}")).with_hint(format!(
                "{operation} takes: {}",
                if allowed.is_empty() {
                    "no parameters".to_string()
                } else {
                    allowed.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(", ")
                }
            )));
        }
        Ok(Self { operation: operation.to_string(), values })
    }

    fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.values.get(name).filter(|v| !v.is_null())
    }

    fn text(&self, name: &str) -> Result<Option<String>, SlamError> {
        match self.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(type_error(format!("`@{name}` of {} must be text", self.operation))),
        }
    }

    /// Present (not NULL), possibly empty.
    fn present_text(&self, name: &str) -> Result<String, SlamError> {
        self.text(name)?.ok_or_else(|| {
            SlamError::new(ErrorCode::ParameterMissing, format!("`@{name}` is required for {}", self.operation))
        })
    }

    fn required_text(&self, name: &str) -> Result<String, SlamError> {
        self.text(name)?.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            SlamError::new(ErrorCode::ParameterMissing, format!("`@{name}` is required for {}", self.operation))
        })
    }

    /// Secrets are read like text, but never echoed: the error names only the parameter.
    fn secret(&self, name: &str) -> Result<Option<Secret>, SlamError> {
        match self.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(secret(s.as_str()))),
            Some(_) => Err(type_error(format!("`@{name}` of {} must be text", self.operation))),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, SlamError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| type_error(format!("`@{name}` of {} must be an integer", self.operation))),
        }
    }

    fn bit(&self, name: &str) -> Result<Option<bool>, SlamError> {
        match self.get(name) {
            None => Ok(None),
            Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
            // T-SQL's FOR JSON renders BIT as true/false, but hand-built JSON may use 0/1.
            Some(v) if v.as_i64() == Some(0) => Ok(Some(false)),
            Some(v) if v.as_i64() == Some(1) => Ok(Some(true)),
            Some(_) => Err(type_error(format!("`@{name}` of {} must be a bit (0 or 1)", self.operation))),
        }
    }

    fn connection(&self) -> Result<ConnectionArgs, SlamError> {
        Ok(ConnectionArgs {
            username: self.text("username")?,
            auth_method: self.text("auth_method")?,
            consumer_key: self.text("consumer_key")?,
            key_name: self.text("key_name")?,
            key_password: self.secret("key_password")?,
            password: self.secret("password")?,
            token: self.secret("token")?,
            domain: self.text("domain")?,
            api_version: self.int("api_version")?,
        })
    }
}

fn type_error(message: String) -> SlamError {
    SlamError::new(ErrorCode::ArgumentType, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use slam_protocol::RecordingSink;

    fn request(operation: &str, args: serde_json::Value) -> Request {
        Request {
            version: PROTOCOL_VERSION,
            id: "t1".into(),
            operation: operation.into(),
            args: serde_json::from_value(args).unwrap(),
            caller: Default::default(),
        }
    }

    fn run(dir: &std::path::Path, req: Request) -> (Result<(), SlamError>, RecordingSink) {
        let clock = FixedClock::at(time::OffsetDateTime::now_utc());
        let ctx = Context {
            data_dir: dir.to_path_buf(),
            clock: &clock,
            http: Default::default(),
            caller: "test".into(),
            resident: None,
        };
        let mut sink = RecordingSink::default();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let result = runtime.block_on(dispatch(&ctx, req, &mut sink));
        (result, sink)
    }

    #[test]
    fn operations_are_reached_by_name_with_typed_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let (result, sink) = run(dir.path(), request("ping", serde_json::json!({})));
        result.unwrap();
        assert!(
            sink.infos()[0].contains("(protocol 1)") && sink.infos()[0].contains("in-process"),
            "{:?}",
            sink.infos()
        );

        let (result, sink) = run(
            dir.path(),
            request(
                "setup_jwt",
                serde_json::json!({"key_name": "acme", "password": "long passphrase here", "cert_days": 30, "force": 0}),
            ),
        );
        result.unwrap();
        assert_eq!(sink.result_sets[0].rows[0][0], slam_protocol::Value::Text("acme".into()));

        let (result, sink) = run(dir.path(), request("list_keys", serde_json::json!({})));
        result.unwrap();
        assert_eq!(sink.result_sets[0].rows.len(), 1);

        let (result, _) = run(dir.path(), request("settings", serde_json::json!({})));
        result.unwrap();
        let (result, _) = run(dir.path(), request("remove_jwt", serde_json::json!({"key_name": "acme"})));
        result.unwrap();
        assert!(!dir.path().join("keys").join("acme.pem").exists());
    }

    #[test]
    fn bad_requests_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = request("ping", serde_json::json!({}));
        old.version = 99;
        assert_eq!(run(dir.path(), old).0.unwrap_err().code, ErrorCode::ProtocolVersion);
        let err = run(dir.path(), request("drop_database", serde_json::json!({}))).0.unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownOperation);
        assert!(err.hint.unwrap().contains("add_connection"));
        let err = run(dir.path(), request("setup_jwt", serde_json::json!({"key_nmae": "typo"}))).0.unwrap_err();
        assert_eq!(err.code, ErrorCode::ArgumentType);
        assert!(err.message.contains("@key_nmae") && err.hint.unwrap().contains("@key_name"));
        let err = run(dir.path(), request("setup_jwt", serde_json::json!({"cert_days": "ten"}))).0.unwrap_err();
        assert_eq!(err.code, ErrorCode::ArgumentType);
        let err = run(dir.path(), request("setup_jwt", serde_json::json!({"password": 12345678}))).0.unwrap_err();
        assert!(!err.message.contains("12345678"), "a secret's value is never echoed");
        let err = run(dir.path(), request("remove_connection", serde_json::json!({}))).0.unwrap_err();
        assert_eq!(err.code, ErrorCode::ParameterMissing);
    }

    #[test]
    fn every_listed_operation_is_dispatched() {
        let dir = tempfile::tempdir().unwrap();
        for (name, _) in OPERATIONS {
            let (result, _) = run(dir.path(), request(name, serde_json::json!({})));
            if let Err(e) = result {
                assert_ne!(e.code, ErrorCode::Internal, "{name} is listed but not dispatched");
                assert_ne!(e.code, ErrorCode::UnknownOperation, "{name}");
            }
        }
    }
}
