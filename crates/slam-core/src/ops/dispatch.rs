//! The one entry point every transport uses: a [`Request`] in, output into a sink.
//!
//! The worker calls this for each request from the pipe; the CLI's `--local` mode
//! builds the same `Request` and calls it in-process, which is what guarantees that
//! both print the same things. Arguments are named as the T-SQL parameters without
//! `@` and checked against [`slam_protocol::catalogue`]: unknown names are refused (a
//! typo must not silently become NULL), types and lengths are checked, and JSON null
//! or absence takes the catalogue's default.

use super::connections::AddConnectionArgs;
use super::login::ConnectionArgs;
use super::{Context, SetupJwtArgs};
use crate::secret::{Secret, secret};
use slam_protocol::catalogue::{self, Operation, ParamType};
use slam_protocol::{ErrorCode, OutputSink, PROTOCOL_VERSION, Request, SlamError};
use std::collections::BTreeMap;

/// Runs `request` and reports into `sink`.
pub async fn dispatch(ctx: &Context<'_>, request: Request, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    if request.version != PROTOCOL_VERSION {
        return Err(SlamError::new(
            ErrorCode::ProtocolVersion,
            format!("the request speaks protocol version {}, this worker speaks {PROTOCOL_VERSION}", request.version),
        )
        .with_hint("install the same SLAM version for the worker, xp_slam.dll and the T-SQL scripts"));
    }
    let Some(operation) = catalogue::operation(&request.operation) else {
        return Err(SlamError::new(ErrorCode::UnknownOperation, format!("unknown operation `{}`", request.operation))
            .with_hint(format!(
                "known operations: {}",
                catalogue::OPERATIONS.iter().map(|op| op.name).collect::<Vec<_>>().join(", ")
            )));
    };
    let args = Args::parse(operation, request.args)?;
    match operation.name {
        "ping" => super::ping(ctx, sink),
        "setup_jwt" => super::setup_jwt(
            ctx,
            SetupJwtArgs {
                key_name: args.text("key_name"),
                password: args.secret("password"),
                cert_days: args.int("cert_days"),
                force: args.bit("force").unwrap_or(false),
            },
            sink,
        ),
        // An empty name reaches the key vault, whose error says what a name must be.
        "remove_jwt" => super::remove_jwt(ctx, &args.present_text("key_name")?, sink),
        "list_keys" => super::list_keys(ctx, sink),
        "test_login" => super::test_login(ctx, args.connection(), sink).await,
        "add_connection" => {
            let add = AddConnectionArgs {
                connection: args.connection(),
                environment_name: args.text("environment_name"),
                skip_test: args.bit("skip_test").unwrap_or(false),
            };
            super::add_connection(ctx, add, sink).await
        }
        "list_connections" => super::list_connections(ctx, sink),
        "use_connection_username" => super::use_connection_username(ctx, &args.username()?, sink),
        "test_connection" => super::test_connection(ctx, &args.username()?, sink).await,
        "remove_connection" => super::remove_connection(ctx, &args.username()?, sink),
        "settings" => super::settings(ctx, sink),
        other => {
            Err(SlamError::new(ErrorCode::Internal, format!("operation `{other}` is catalogued but not dispatched")))
        }
    }
}

/// A request's arguments, checked against the operation's catalogue entry: every
/// name is a parameter, every value has the parameter's type, and an absent or
/// NULL argument takes the catalogue's default. The accessors cannot fail on type
/// any more; they only say whether a value is there.
struct Args {
    operation: &'static Operation,
    values: BTreeMap<String, serde_json::Value>,
}

impl Args {
    fn parse(operation: &'static Operation, given: BTreeMap<String, serde_json::Value>) -> Result<Self, SlamError> {
        if let Some(unknown) = given.keys().find(|k| operation.param(k).is_none()) {
            let takes = if operation.params.is_empty() {
                "no parameters".to_string()
            } else {
                operation.params.iter().map(|p| p.sql_name()).collect::<Vec<_>>().join(", ")
            };
            return Err(type_error(format!("`@{unknown}` is not a parameter of {}", operation.name))
                .with_hint(format!("{} takes: {takes}", operation.name)));
        }
        let mut values = BTreeMap::new();
        for (name, value) in given {
            if value.is_null() {
                continue;
            }
            // Known: every name was checked above.
            let Some(param) = operation.param(&name) else { continue };
            let value = match (param.ty, value) {
                (ParamType::Text { max_chars }, serde_json::Value::String(s)) => {
                    // NVARCHAR counts UTF-16 code units; so does this, so the CLI and
                    // T-SQL accept the same values.
                    if s.encode_utf16().count() > max_chars as usize {
                        return Err(SlamError::new(
                            ErrorCode::InvalidArgument,
                            format!("`@{name}` of {} is longer than {max_chars} characters", operation.name),
                        )
                        .with_hint(format!("give `@{name}` at most {max_chars} characters")));
                    }
                    serde_json::Value::String(s)
                }
                (ParamType::Int, v) if v.as_i64().is_some() => v,
                (ParamType::Bit, serde_json::Value::Bool(b)) => serde_json::Value::Bool(b),
                // T-SQL's FOR JSON renders BIT as true/false, but hand-built JSON may use 0/1.
                (ParamType::Bit, v) if v.as_i64() == Some(0) => serde_json::Value::Bool(false),
                (ParamType::Bit, v) if v.as_i64() == Some(1) => serde_json::Value::Bool(true),
                // The message names the parameter and type, never the value: it may be a secret.
                (ty, _) => {
                    let wanted = match ty {
                        ParamType::Text { .. } => "text",
                        ParamType::Int => "an integer",
                        ParamType::Bit => "a bit (0 or 1)",
                    };
                    return Err(type_error(format!("`@{name}` of {} must be {wanted}", operation.name)));
                }
            };
            values.insert(name, value);
        }
        // A secret typed into a neighbouring parameter (positional T-SQL arguments one
        // place off) must not be stored, listed or echoed as a name: a non-secret text
        // equal to one of the call's secrets is refused, naming only the parameter.
        let secrets: Vec<&str> = operation
            .params
            .iter()
            .filter(|p| p.secret)
            .filter_map(|p| values.get(p.name).and_then(|v| v.as_str()))
            .filter(|s| s.len() >= 4)
            .collect();
        if let Some(param) = operation
            .params
            .iter()
            .find(|p| !p.secret && values.get(p.name).and_then(|v| v.as_str()).is_some_and(|v| secrets.contains(&v)))
        {
            return Err(SlamError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "`@{}` of {} holds the same value as one of its secret parameters (not shown)",
                    param.name, operation.name
                ),
            )
            .with_hint("a secret was probably given in the wrong position: name every parameter"));
        }
        for param in operation.params {
            if let (false, Some(default)) = (values.contains_key(param.name), param.default.json()) {
                values.insert(param.name.to_string(), default);
            }
        }
        Ok(Self { operation, values })
    }

    fn text(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.as_str()).map(str::to_string)
    }

    fn missing(&self, name: &str) -> SlamError {
        SlamError::new(ErrorCode::ParameterMissing, format!("`@{name}` is required for {}", self.operation.name))
    }

    /// Present (not NULL), possibly empty.
    fn present_text(&self, name: &str) -> Result<String, SlamError> {
        self.text(name).ok_or_else(|| self.missing(name))
    }

    fn required_text(&self, name: &str) -> Result<String, SlamError> {
        self.text(name).filter(|s| !s.trim().is_empty()).ok_or_else(|| self.missing(name))
    }

    /// A stored connection's `@username`, refused unechoed unless it is shaped
    /// like one.
    fn username(&self) -> Result<String, SlamError> {
        let username = self.required_text("username")?;
        super::login::check_username(username.trim())?;
        Ok(username)
    }

    /// Secrets are read like text; the catalogue marks them so nothing echoes them.
    fn secret(&self, name: &str) -> Option<Secret> {
        self.values.get(name).and_then(|v| v.as_str()).map(secret)
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.values.get(name).and_then(serde_json::Value::as_i64)
    }

    fn bit(&self, name: &str) -> Option<bool> {
        self.values.get(name).and_then(serde_json::Value::as_bool)
    }

    fn connection(&self) -> ConnectionArgs {
        ConnectionArgs {
            username: self.text("username"),
            auth_method: self.text("auth_method"),
            consumer_key: self.text("consumer_key"),
            key_name: self.text("key_name"),
            key_password: self.secret("key_password"),
            password: self.secret("password"),
            token: self.secret("token"),
            domain: self.text("domain"),
            api_version: self.int("api_version"),
        }
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
            store: crate::ops::embedded_store(dir),
            database: None,
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
    fn the_catalogue_defaults_are_the_operations_own() {
        let setup = catalogue::operation("setup_jwt").unwrap();
        assert_eq!(setup.param("cert_days").unwrap().default.json(), Some(crate::keys::DEFAULT_CERT_DAYS.into()));
        let add = catalogue::operation("add_connection").unwrap();
        let api = add.param("api_version").unwrap().default.json();
        assert_eq!(api, Some(crate::salesforce::DEFAULT_API_VERSION.into()));
        assert_eq!(
            catalogue::KEY_NAME_CHARS as usize,
            crate::keys::MAX_KEY_NAME_CHARS,
            "the T-SQL type must hold every valid name"
        );
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
        let long = "x".repeat(300);
        let err = run(dir.path(), request("setup_jwt", serde_json::json!({"password": long}))).0.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert!(err.message.contains("@password") && !err.message.contains(&long));
        let err = run(
            dir.path(),
            request(
                "add_connection",
                serde_json::json!({"username": "u@x.com", "environment_name": "Hunter22", "password": "Hunter22"}),
            ),
        )
        .0
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert!(err.message.contains("@environment_name") && !err.message.contains("Hunter22"), "{}", err.message);
        let err = run(dir.path(), request("remove_connection", serde_json::json!({}))).0.unwrap_err();
        assert_eq!(err.code, ErrorCode::ParameterMissing);
    }

    #[test]
    fn every_listed_operation_is_dispatched() {
        let dir = tempfile::tempdir().unwrap();
        for op in catalogue::OPERATIONS {
            let name = op.name;
            let (result, _) = run(dir.path(), request(name, serde_json::json!({})));
            if let Err(e) = result {
                assert_ne!(e.code, ErrorCode::Internal, "{name} is listed but not dispatched");
                assert_ne!(e.code, ErrorCode::UnknownOperation, "{name}");
            }
        }
    }
}
