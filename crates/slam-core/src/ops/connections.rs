//! The connection procedures: `SLAM_add_connection`, `SLAM_list_connections`,
//! `SLAM_use_connection_username`, `SLAM_test_connection`, `SLAM_remove_connection`,
//! and a view of `SLAM_Settings`.
//!
//! Stored connections are re-validated through the same [`validate`] as new ones,
//! so a connection that could not be added cannot be used either. Secrets are
//! sealed before they reach the store and unsealed only to log in.

use super::errors::{seal_error, store_error};
use super::login::{
    AuthMethod, ConnectionArgs, ConnectionPlan, Credentials, LoginOutcome, check_username, login_and_test, validate,
};
use super::{Context, EXPIRY_WARNING_DAYS, key_error, rfc3339};
use crate::clock::utc;
use crate::data_dir::DataDir;
use crate::keys::{CertificateState, KeyName};
use crate::seal::MasterKey;
use crate::secret::ExposeSecret;
use slam_protocol::{ColumnType, ErrorCode, OutputSink, ResultSet, SlamError, Value};
use slam_store::{ConnectionRecord, LogEntry, Store, StoreError, TestResult};

/// Purposes bound into sealed blobs (the column they belong to).
const PASSWORD: &str = "password";
const TOKEN: &str = "token";
const KEY_PASSWORD: &str = "key_password";

/// Longest `@environment_name` accepted.
const MAX_ENVIRONMENT_NAME: usize = 128;

/// Arguments of `SLAM_add_connection`.
#[derive(Default)]
pub struct AddConnectionArgs {
    /// The login parameters (as for test-login).
    pub connection: ConnectionArgs,
    /// `@environment_name`.
    pub environment_name: Option<String>,
    /// `@skip_test`.
    pub skip_test: bool,
}

impl Context<'_> {
    pub(crate) fn store(&self) -> Result<Box<dyn Store>, SlamError> {
        // The data directory holds the master key whatever the backend: it must exist.
        DataDir::open(&self.data_dir).map_err(|e| key_error(crate::keys::KeyError::DataDir(e)))?;
        self.store.open(self.database.as_deref()).map_err(store_error)
    }

    /// The master key; created only while `store` holds no sealed secret, since a
    /// new key would silently make every existing one unreadable.
    fn master_key(&self, store: &mut dyn Store) -> Result<MasterKey, SlamError> {
        let data_dir = DataDir::open(&self.data_dir).map_err(|e| key_error(crate::keys::KeyError::DataDir(e)))?;
        let sealed = store
            .list()
            .map_err(store_error)?
            .iter()
            .any(|r| r.password_sealed.is_some() || r.token_sealed.is_some() || r.key_password_sealed.is_some());
        MasterKey::load_or_create(data_dir.path(), !sealed).map_err(seal_error)
    }

    fn log(&self, operation: &str, username: Option<&str>, result: Result<&str, &SlamError>) -> LogEntry {
        let (outcome, error_number, message) = match result {
            Ok(message) => ("ok", None, message.to_string()),
            Err(e) => ("error", Some(i64::from(e.code.number())), e.message.clone()),
        };
        LogEntry {
            at: now_text(self),
            operation: operation.to_string(),
            username: username.map(str::to_string),
            caller: self.caller.clone(),
            outcome: outcome.to_string(),
            error_number,
            message,
        }
    }

    /// Records a failed operation in SLAM_Log, if the store can be opened at all.
    fn log_failure(&self, operation: &str, username: Option<&str>, error: &SlamError) {
        if let Ok(mut store) = self.store() {
            let _ = store.append_log(&self.log(operation, username, Err(error)));
        }
    }
}

fn now_text(ctx: &Context<'_>) -> String {
    match rfc3339(ctx.clock.now()) {
        Value::Text(t) => t,
        _ => String::new(),
    }
}

/// `SLAM_add_connection`: validate, test (unless skipped), store sealed, activate.
pub async fn add_connection(
    ctx: &Context<'_>,
    args: AddConnectionArgs,
    sink: &mut dyn OutputSink,
) -> Result<(), SlamError> {
    // Only a username-shaped value is logged: anything else may be a secret
    // passed in the wrong position.
    let username = args.connection.username.clone().map(|u| u.trim().to_string()).filter(|u| check_username(u).is_ok());
    let result = add_connection_inner(ctx, args, sink).await;
    if let Err(e) = &result {
        ctx.log_failure("add_connection", username.as_deref(), e);
    }
    result
}

async fn add_connection_inner(
    ctx: &Context<'_>,
    args: AddConnectionArgs,
    sink: &mut dyn OutputSink,
) -> Result<(), SlamError> {
    let environment_name = match args.environment_name.map(|e| e.trim().to_string()).filter(|e| !e.is_empty()) {
        Some(e) if e.chars().count() > MAX_ENVIRONMENT_NAME || e.chars().any(char::is_control) => {
            return Err(SlamError::new(
                ErrorCode::InvalidArgument,
                format!("`@environment_name` must be at most {MAX_ENVIRONMENT_NAME} printable characters"),
            ));
        }
        other => other,
    };
    let plan = validate(args.connection, sink)?;
    // The store must be usable before anything is sent to Salesforce.
    let mut store = ctx.store()?;
    let master = ctx.master_key(store.as_mut())?;

    let (tested, test_message) = if args.skip_test {
        if let Credentials::Jwt { key_name, key_password, .. } = &plan.credentials {
            // No network, but the keypair must at least be usable.
            let (_, cert) = ctx
                .vault()?
                .load_signing_key(key_name, key_password.as_ref(), ctx.clock.now(), ctx.unlocked_keys())
                .map_err(key_error)?;
            let days = cert.days_left(ctx.clock.now());
            if days < EXPIRY_WARNING_DAYS {
                sink.warning(&super::renewal_warning(key_name.as_str(), days, cert.not_after));
            }
        }
        sink.warning(&format!(
            "Connection test skipped (`@skip_test = 1`): the connection for {} is stored UNTESTED. Run \
             SLAM_test_connection @username = '{}' to check it.",
            plan.username, plan.username
        ));
        (None, None)
    } else {
        let outcome = login_and_test(ctx, &plan, sink).await?;
        let message = format!(
            "logged in to org {} at {}; API {}.0 available",
            outcome.session.org_id, outcome.session.instance_url, plan.api_version
        );
        (Some(outcome), Some(message))
    };

    let now = now_text(ctx);
    let username = plan.username.clone();
    let seal = |purpose: &str, value: &crate::secret::Secret| master.seal(purpose, &username, value.expose_secret());
    let mut record = ConnectionRecord {
        username: username.clone(),
        auth_method: plan.auth_method().as_str().to_string(),
        domain: plan.domain.as_str().to_string(),
        environment_name,
        api_version: plan.api_version,
        created_at: now.clone(),
        updated_at: now.clone(),
        instance_url: tested.as_ref().map(|t| t.session.instance_url.clone()),
        org_id: tested.as_ref().map(|t| t.session.org_id.clone()),
        last_test_at: tested.as_ref().map(|_| now.clone()),
        last_test_ok: tested.as_ref().map(|_| true),
        last_test_message: test_message,
        ..ConnectionRecord::default()
    };
    match &plan.credentials {
        Credentials::Jwt { consumer_key, key_name, key_password } => {
            record.consumer_key = Some(consumer_key.clone());
            record.key_name = Some(key_name.to_string());
            record.key_password_sealed =
                key_password.as_ref().map(|p| seal(KEY_PASSWORD, p)).transpose().map_err(seal_error)?;
        }
        Credentials::SecurityToken { password, token } => {
            record.password_sealed = Some(seal(PASSWORD, password).map_err(seal_error)?);
            record.token_sealed = Some(seal(TOKEN, token).map_err(seal_error)?);
        }
    }
    let log = ctx.log(
        "add_connection",
        Some(&username),
        Ok(if args.skip_test { "stored untested" } else { "tested and stored" }),
    );
    let saved = store.save_and_activate(&record, &log).map_err(store_error)?;
    if saved.replaced {
        sink.info(&format!("Replaced the existing connection for {username}."));
    }
    sink.info(&format!(
        "Stored the connection for {username} ({}, @domain = '{}', API {}.0) and activated it: SLAM_Settings.Username \
         = '{username}'. All future Speediful operations run as this Salesforce user.",
        record.auth_method, record.domain, record.api_version
    ));
    let active = store.active_username().map_err(store_error)?;
    let stored = store.get(&username).map_err(store_error)?.unwrap_or(record);
    if let Some(resident) = &ctx.resident {
        match &tested {
            // The login just made serves the next operations on this connection.
            Some(outcome) => resident.remember(&stored, &key_marker(ctx, &stored), outcome.session.clone()),
            None => resident.forget(&username),
        }
    }
    sink.result_set(connections_result(ctx, &[stored], active.as_deref(), &mut NoWarnings));
    Ok(())
}

/// `SLAM_list_connections`: every stored connection, never a secret.
pub fn list_connections(ctx: &Context<'_>, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let mut store = ctx.store()?;
    let records = store.list().map_err(store_error)?;
    let active = store.active_username().map_err(store_error)?;
    if records.is_empty() {
        sink.info("No connections are stored. Add one with SLAM_add_connection.");
    } else if active.is_none() {
        sink.warning(
            "No connection is active (SLAM_Settings.Username is NULL). Activate one with SLAM_use_connection_username.",
        );
    }
    let result = connections_result(ctx, &records, active.as_deref(), sink);
    sink.result_set(result);
    Ok(())
}

/// The warning for a stored security-token connection: when SOAP `login()` stops
/// working, and what to do.
fn soap_retirement_note(username: &str) -> String {
    format!(
        "Connection {username} uses security_token (SOAP API login()), which Salesforce retires in the Summer '27 \
         release (expected June 2027): from then its logins fail, and API 65.0 and later already refuse it. Move it \
         to JWT Bearer: SLAM_setup_jwt, then SLAM_add_connection @username = '{username}', @auth_method = \
         'jwt_bearer', ..."
    )
}

/// Warnings about certificates are reported by list, not by add (which has its own).
struct NoWarnings;
impl OutputSink for NoWarnings {
    fn message(&mut self, _: slam_protocol::Severity, _: &str) {}
    fn result_set(&mut self, _: ResultSet) {}
}

fn connections_result(
    ctx: &Context<'_>,
    records: &[ConnectionRecord],
    active: Option<&str>,
    sink: &mut dyn OutputSink,
) -> ResultSet {
    let mut result = ResultSet::new(&[
        ("username", ColumnType::Text),
        ("auth_method", ColumnType::Text),
        ("domain", ColumnType::Text),
        ("environment_name", ColumnType::Text),
        ("api_version", ColumnType::Int),
        ("key_name", ColumnType::Text),
        ("consumer_key", ColumnType::Text),
        ("active", ColumnType::Bool),
        ("instance_url", ColumnType::Text),
        ("org_id", ColumnType::Text),
        ("last_test_at", ColumnType::DateTime),
        ("last_test_ok", ColumnType::Bool),
        ("last_test_message", ColumnType::Text),
        ("cert_expires_at", ColumnType::DateTime),
        ("created_at", ColumnType::DateTime),
        ("updated_at", ColumnType::DateTime),
    ]);
    let vault = ctx.vault().ok();
    let now = ctx.clock.now();
    for r in records {
        let cert_expires_at = match (&r.key_name, &vault) {
            (Some(name), Some(vault)) => match KeyName::parse(name).ok().and_then(|n| vault.inspect(&n).ok().flatten())
            {
                Some(entry) => match entry.certificate {
                    CertificateState::Present(cert) => {
                        if cert.is_expired(now) {
                            sink.warning(&format!(
                                "The certificate of `{name}` (connection {}) expired on {}: JWT logins fail. Renew it \
                                 with SLAM_setup_jwt @key_name = '{name}' and upload the new certificate.",
                                r.username,
                                utc(cert.not_after)
                            ));
                        } else if cert.days_left(now) < EXPIRY_WARNING_DAYS {
                            sink.warning(&format!(
                                "Connection {}: {}",
                                r.username,
                                super::renewal_warning(name, cert.days_left(now), cert.not_after)
                            ));
                        }
                        rfc3339(cert.not_after)
                    }
                    _ => Value::Null,
                },
                None => {
                    sink.warning(&format!(
                        "The keypair `{name}` of connection {} is missing from this machine.",
                        r.username
                    ));
                    Value::Null
                }
            },
            _ => Value::Null,
        };
        if r.auth_method == AuthMethod::SecurityToken.as_str() {
            sink.warning(&soap_retirement_note(&r.username));
        }
        let is_active = active.is_some_and(|a| a.eq_ignore_ascii_case(&r.username));
        result.push(vec![
            r.username.clone().into(),
            r.auth_method.clone().into(),
            r.domain.clone().into(),
            r.environment_name.clone().into(),
            r.api_version.into(),
            r.key_name.clone().into(),
            r.consumer_key.clone().into(),
            is_active.into(),
            r.instance_url.clone().into(),
            r.org_id.clone().into(),
            r.last_test_at.clone().into(),
            r.last_test_ok.into(),
            r.last_test_message.clone().into(),
            cert_expires_at,
            r.created_at.clone().into(),
            r.updated_at.clone().into(),
        ]);
    }
    result
}

/// `SLAM_use_connection_username`: make a stored connection the active one.
pub fn use_connection_username(ctx: &Context<'_>, username: &str, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let username = username.trim();
    let mut store = ctx.store()?;
    let log = ctx.log("use_connection_username", Some(username), Ok("activated"));
    store
        .activate(username, &log)
        .map_err(store_error)
        .inspect_err(|e| ctx.log_failure("use_connection_username", Some(username), e))?;
    let active = store.active_username().map_err(store_error)?.unwrap_or_default();
    sink.info(&format!(
        "Activated {active}: SLAM_Settings.Username = '{active}'. All future Speediful operations run as this user."
    ));
    // What will stop this connection working soon is worth saying now.
    if let Some(record) = store.get(&active).map_err(store_error)? {
        connections_result(ctx, &[record], Some(&active), sink);
    }
    Ok(())
}

/// `SLAM_test_connection`: log in with a stored connection and record the result.
pub async fn test_connection(ctx: &Context<'_>, username: &str, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let username = username.trim();
    let mut store = ctx.store()?;
    let Some(record) = store.get(username).map_err(store_error)? else {
        let error = store_error(StoreError::NotFound {
            username: username.to_string(),
            known: store.list().map_err(store_error)?.into_iter().map(|r| r.username).collect(),
        });
        ctx.log_failure("test_connection", Some(username), &error);
        return Err(error);
    };
    let started = std::time::Instant::now();
    let outcome = match plan_from_record(ctx, &record, sink) {
        Ok(plan) => test_stored(ctx, &record, &plan, sink).await.map(|o| (plan, o)),
        Err(e) => Err(e),
    };
    let at = now_text(ctx);
    match outcome {
        Ok((plan, o)) => {
            let message = format!(
                "logged in to org {} at {}; API {}.0 available",
                o.session.org_id, o.session.instance_url, plan.api_version
            );
            let result = TestResult {
                at,
                ok: true,
                message: message.clone(),
                instance_url: Some(o.session.instance_url.clone()),
                org_id: Some(o.session.org_id.clone()),
            };
            store
                .record_test(
                    &record.username,
                    &result,
                    &ctx.log("test_connection", Some(&record.username), Ok(&message)),
                )
                .map_err(store_error)?;
            sink.info(&format!(
                "Connection test passed for {} in {} ms: {message}; the org offers {}.",
                record.username,
                started.elapsed().as_millis(),
                o.test.range()
            ));
            Ok(())
        }
        Err(error) => {
            let message = format!("SLAM error {} {}: {}", error.code.number(), error.code.as_str(), error.message);
            let result = TestResult { at, ok: false, message, instance_url: None, org_id: None };
            let log = ctx.log("test_connection", Some(&record.username), Err(&error));
            store.record_test(&record.username, &result, &log).map_err(store_error)?;
            Err(error)
        }
    }
}

/// Tests a stored connection: always a fresh login, as the spec says ("performing
/// a login operation"), so that a changed password, a revoked app approval or an
/// expired certificate fails the test even while an earlier session still works.
/// In the worker the new session then replaces the cached one, for the operations
/// that use a connection; a test never reuses it.
async fn test_stored(
    ctx: &Context<'_>,
    record: &ConnectionRecord,
    plan: &ConnectionPlan,
    sink: &mut dyn OutputSink,
) -> Result<LoginOutcome, SlamError> {
    let outcome = login_and_test(ctx, plan, sink).await;
    if let Some(resident) = &ctx.resident {
        match &outcome {
            Ok(o) => resident.remember(record, &key_marker(ctx, record), o.session.clone()),
            // A connection that no longer logs in keeps no session either.
            Err(_) => resident.forget(&record.username),
        }
    }
    outcome
}

/// The certificate of a JWT connection's keypair as it is now (empty for other
/// connections, or when it cannot be read, which the login itself will report).
fn key_marker(ctx: &Context<'_>, record: &ConnectionRecord) -> Vec<u8> {
    let Some(name) = record.key_name.as_deref().and_then(|n| KeyName::parse(n).ok()) else { return Vec::new() };
    ctx.vault().ok().and_then(|vault| std::fs::read(vault.certificate_path(&name)).ok()).unwrap_or_default()
}

/// Rebuilds the login plan of a stored connection, through the same validation as
/// a new one.
fn plan_from_record(
    ctx: &Context<'_>,
    r: &ConnectionRecord,
    sink: &mut dyn OutputSink,
) -> Result<ConnectionPlan, SlamError> {
    let master = ctx.master_key(ctx.store()?.as_mut())?;
    let open = |purpose: &str, blob: &Option<Vec<u8>>| {
        blob.as_ref().map(|b| master.open(purpose, &r.username, b)).transpose().map_err(seal_error)
    };
    let args = ConnectionArgs {
        username: Some(r.username.clone()),
        auth_method: Some(r.auth_method.clone()),
        consumer_key: r.consumer_key.clone(),
        key_name: r.key_name.clone(),
        key_password: open(KEY_PASSWORD, &r.key_password_sealed)?,
        password: open(PASSWORD, &r.password_sealed)?,
        token: open(TOKEN, &r.token_sealed)?,
        domain: Some(r.domain.clone()),
        api_version: Some(r.api_version),
    };
    validate(args, sink)
}

/// `SLAM_remove_connection`: delete a stored connection.
pub fn remove_connection(ctx: &Context<'_>, username: &str, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let username = username.trim();
    let mut store = ctx.store()?;
    let log = ctx.log("remove_connection", Some(username), Ok("removed"));
    let outcome = store
        .remove(username, &log)
        .map_err(store_error)
        .inspect_err(|e| ctx.log_failure("remove_connection", Some(username), e))?;
    if let Some(resident) = &ctx.resident {
        resident.forget(username);
    }
    sink.info(&format!("Removed the connection for {username}; its stored secrets are deleted."));
    if outcome.was_active {
        sink.warning(&format!(
            "{username} was the active connection: no connection is active now (SLAM_Settings.Username is NULL). \
             Activate another with SLAM_use_connection_username before running Speediful operations."
        ));
    }
    Ok(())
}

/// `SLAM_Settings`: the active connection.
pub fn settings(ctx: &Context<'_>, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let mut store = ctx.store()?;
    let active = store.active_username().map_err(store_error)?;
    match &active {
        Some(user) => sink.info(&format!("Active connection: {user}.")),
        None => sink.info("No connection is active (SLAM_Settings.Username is NULL)."),
    }
    let mut result = ResultSet::new(&[("username", ColumnType::Text)]);
    result.push(vec![active.into()]);
    sink.result_set(result);
    Ok(())
}
