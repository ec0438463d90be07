//! `slam test-login`: log in with connection parameters, run the connection test,
//! store nothing. The parameter validation here is the one `SLAM_add_connection`
//! uses, so both refuse the same inputs with the same messages.

use super::errors::login_error;
use super::{Context, key_error};
use crate::keys::KeyName;
use crate::salesforce::{self, ConnectionTest, DomainError, JwtAttempt, LoginDomain, SalesforceClient, Session};
use crate::secret::{ExposeSecret, Secret};
use slam_protocol::{ColumnType, ErrorCode, OutputSink, ResultSet, SlamError};
use std::time::Instant;

/// The spec's `@auth_method` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// OAuth 2.0 JWT Bearer with a keypair from the vault.
    JwtBearer,
    /// SOAP `login()` with password + security token.
    SecurityToken,
}

impl AuthMethod {
    /// The T-SQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::JwtBearer => "jwt_bearer",
            AuthMethod::SecurityToken => "security_token",
        }
    }
}

/// Connection parameters as given (NULL = `None`), shared by test-login and add-connection.
#[derive(Default)]
pub struct ConnectionArgs {
    /// `@username`.
    pub username: Option<String>,
    /// `@auth_method`; defaults to `security_token` as in the spec.
    pub auth_method: Option<String>,
    /// `@consumer_key` (JWT).
    pub consumer_key: Option<String>,
    /// `@key_name` (JWT).
    pub key_name: Option<String>,
    /// `@key_password` (JWT, when the key is encrypted).
    pub key_password: Option<Secret>,
    /// `@password` (security token).
    pub password: Option<Secret>,
    /// `@token` (security token).
    pub token: Option<Secret>,
    /// `@domain`; defaults to `login`.
    pub domain: Option<String>,
    /// `@api_version`; defaults to 60.
    pub api_version: Option<i64>,
}

/// Validated credentials.
pub enum Credentials {
    /// JWT Bearer.
    Jwt {
        /// The External Client App's consumer key.
        consumer_key: String,
        /// The keypair.
        key_name: KeyName,
        /// Its passphrase.
        key_password: Option<Secret>,
    },
    /// Security token.
    SecurityToken {
        /// The password.
        password: Secret,
        /// The security token (may be empty for orgs that trust this server's IP).
        token: Secret,
    },
}

/// Connection parameters, validated.
pub struct ConnectionPlan {
    /// The Salesforce username.
    pub username: String,
    /// The login domain.
    pub domain: LoginDomain,
    /// The API version for all operations.
    pub api_version: i64,
    /// How to log in.
    pub credentials: Credentials,
}

impl ConnectionPlan {
    /// The method.
    pub fn auth_method(&self) -> AuthMethod {
        match self.credentials {
            Credentials::Jwt { .. } => AuthMethod::JwtBearer,
            Credentials::SecurityToken { .. } => AuthMethod::SecurityToken,
        }
    }
}

/// Refuses a `@username` that is not shaped like a Salesforce username (which has
/// the form of an email address) without echoing it: positional arguments in the
/// wrong order put a password there, and it must reach neither SSMS nor SLAM_Log.
pub(crate) fn check_username(username: &str) -> Result<(), SlamError> {
    let shaped = username.len() <= 255
        && !username.chars().any(|c| c.is_whitespace() || c.is_control())
        && username.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.'));
    if shaped {
        Ok(())
    } else {
        Err(SlamError::new(
            ErrorCode::InvalidArgument,
            "`@username` is not a Salesforce username, which has the form of an email address (the value is not \
             shown: it may be a secret passed in the wrong position)",
        )
        .with_hint("give the user's Salesforce username, e.g. @username = 'etl@acme.com', and name the parameters"))
    }
}

/// Validates every parameter for the chosen method before anything else happens.
/// Notes about ignored parameters go to `sink` as warnings.
pub fn validate(args: ConnectionArgs, sink: &mut dyn OutputSink) -> Result<ConnectionPlan, SlamError> {
    let method = match args.auth_method.as_deref().map(|m| m.trim().to_ascii_lowercase()) {
        None => AuthMethod::SecurityToken,
        Some(m) if m == "jwt_bearer" => AuthMethod::JwtBearer,
        Some(m) if m == "security_token" => AuthMethod::SecurityToken,
        // The value is never echoed: positional arguments shifted by one put the
        // password or the token here.
        Some(_) => {
            return Err(SlamError::new(
                ErrorCode::AuthMethodInvalid,
                "`@auth_method` is neither 'jwt_bearer' nor 'security_token' (the value is not shown: it may be a \
                 secret passed in the wrong position)",
            )
            .with_hint("use 'jwt_bearer' (recommended) or 'security_token', and name the parameters"));
        }
    };
    let username = args.username.map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
    if let Some(given) = &username {
        check_username(given)?;
    }
    let present = |v: &Option<String>| v.as_ref().is_some_and(|s| !s.trim().is_empty());
    let mut missing = Vec::new();
    if username.is_none() {
        missing.push("@username");
    }
    match method {
        AuthMethod::JwtBearer => {
            if !present(&args.consumer_key) {
                missing.push("@consumer_key");
            }
            if !present(&args.key_name) {
                missing.push("@key_name");
            }
        }
        AuthMethod::SecurityToken => {
            if args.password.as_ref().is_none_or(|p| p.expose_secret().is_empty()) {
                missing.push("@password");
            }
            if args.token.is_none() {
                missing.push("@token");
            }
        }
    }
    if !missing.is_empty() {
        let hint = match method {
            AuthMethod::JwtBearer => {
                "jwt_bearer needs @username, @consumer_key (from the External Client App) and \
                                      @key_name (from SLAM_setup_jwt), plus @key_password if the key has a passphrase"
            }
            AuthMethod::SecurityToken => {
                "security_token needs @username, @password and @token (pass @token = '' only \
                                          if the org trusts this server's IP address); jwt_bearer is recommended"
            }
        };
        return Err(SlamError::new(
            ErrorCode::ParameterMissing,
            format!(
                "{} {} required for @auth_method = '{}'",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                method.as_str()
            ),
        )
        .with_hint(hint));
    }
    let username = username.unwrap_or_default();

    let domain_text = args.domain.unwrap_or_else(|| "login".to_string());
    let domain = LoginDomain::parse(&domain_text).map_err(|e| {
        let hint = match &e {
            DomainError::Lightning { suggestion: Some(s), .. } => {
                format!("use your My Domain instead: @domain = '{s}'")
            }
            _ => "use 'login' (production), 'test' (sandboxes) or your My Domain prefix, e.g. 'acme.my' or \
                  'acme--partial.sandbox.my'"
                .to_string(),
        };
        SlamError::new(ErrorCode::DomainInvalid, e.to_string()).with_hint(hint)
    })?;
    if let Some(original) = domain.normalised_from() {
        sink.info(&format!("Using @domain = '{domain}' (normalised from '{original}')."));
    }

    let api_version = args.api_version.unwrap_or(salesforce::DEFAULT_API_VERSION);
    if !(salesforce::MIN_API_VERSION..=salesforce::MAX_API_VERSION).contains(&api_version) {
        return Err(SlamError::new(
            ErrorCode::ApiVersionInvalid,
            format!(
                "`@api_version` must be between {} and {}, not {api_version}",
                salesforce::MIN_API_VERSION,
                salesforce::MAX_API_VERSION
            ),
        )
        .with_hint(format!("leave it NULL for the default, {}", salesforce::DEFAULT_API_VERSION)));
    }

    let credentials = match method {
        AuthMethod::JwtBearer => {
            if args.password.is_some() || args.token.is_some() {
                sink.warning("`@password` and `@token` are ignored for jwt_bearer.");
            }
            let raw = args.key_name.unwrap_or_default();
            let key_name = KeyName::parse(raw.trim()).map_err(|reason| {
                key_error(crate::keys::KeyError::InvalidName { name: raw.clone(), reason, from_host_name: false })
            })?;
            Credentials::Jwt {
                consumer_key: args.consumer_key.unwrap_or_default().trim().to_string(),
                key_name,
                key_password: args.key_password,
            }
        }
        AuthMethod::SecurityToken => {
            if args.consumer_key.is_some() || args.key_name.is_some() || args.key_password.is_some() {
                sink.warning("`@consumer_key`, `@key_name` and `@key_password` are ignored for security_token.");
            }
            if api_version >= salesforce::SOAP_LOGIN_REMOVED_IN {
                return Err(SlamError::new(
                    ErrorCode::SoapLoginRetiredVersion,
                    format!(
                        "security_token logins use SOAP API login(), which Salesforce removed from API version {}.0; \
                         @api_version = {api_version} cannot use it",
                        salesforce::SOAP_LOGIN_REMOVED_IN
                    ),
                )
                .with_hint(format!(
                    "move this connection to @auth_method = 'jwt_bearer' (see SLAM_setup_jwt), or use @api_version = {} \
                     or lower until then",
                    salesforce::SOAP_LOGIN_REMOVED_IN - 1
                )));
            }
            Credentials::SecurityToken {
                password: args.password.unwrap_or_else(|| crate::secret::secret("")),
                token: args.token.unwrap_or_else(|| crate::secret::secret("")),
            }
        }
    };
    Ok(ConnectionPlan { username, domain, api_version, credentials })
}

/// The spec's warning, printed on every security-token login.
pub const SOAP_RETIREMENT_WARNING: &str = "Security token authentication uses SOAP API login(), which Salesforce is \
    retiring: it is not available in API 65.0 and later, it is disabled by default in new orgs, orgs created since \
    Summer '26 also require the `Use Any API Auth` user permission, and after the Summer '27 retirement every such \
    login fails. Migrate this connection to @auth_method = 'jwt_bearer' (SLAM_setup_jwt) before Summer '27.";

/// A successful login and connection test.
pub struct LoginOutcome {
    /// The session (shared with the worker's token cache).
    pub session: std::sync::Arc<Session>,
    /// What the connection test found.
    pub test: ConnectionTest,
    /// JWT attempts refused before the one that worked.
    pub refused_attempts: Vec<JwtAttempt>,
}

/// Logs in as `plan` says and runs the connection test.
pub async fn login_and_test(
    ctx: &Context<'_>,
    plan: &ConnectionPlan,
    sink: &mut dyn OutputSink,
) -> Result<LoginOutcome, SlamError> {
    let own_client;
    let client = match &ctx.resident {
        Some(resident) => resident.client(),
        None => {
            own_client = SalesforceClient::new(ctx.http.clone()).map_err(|e| login_error(e, plan, None))?;
            &own_client
        }
    };
    let (session, refused_attempts) = match &plan.credentials {
        Credentials::Jwt { consumer_key, key_name, key_password } => {
            let vault = ctx.vault()?;
            let (key, cert) = vault
                .load_signing_key(key_name, key_password.as_ref(), ctx.clock.now(), ctx.unlocked_keys())
                .map_err(key_error)?;
            if !key.was_encrypted && key_password.is_some() {
                sink.warning(&format!(
                    "The private key of `{key_name}` is not encrypted; `@key_password` was ignored."
                ));
            }
            let days = cert.days_left(ctx.clock.now());
            if days < super::EXPIRY_WARNING_DAYS {
                sink.warning(&super::renewal_warning(key_name.as_str(), days, cert.not_after));
            }
            sink.info(&format!(
                "Logging in to {} as {} (JWT Bearer, key `{key_name}`)...",
                plan.domain.base_url(),
                plan.username
            ));
            let (session, refused) = client
                .login_jwt(&plan.domain, &plan.username, consumer_key, &key, ctx.clock)
                .await
                .map_err(|e| login_error(e, plan, Some(&vault)))?;
            (session, refused)
        }
        Credentials::SecurityToken { password, token } => {
            sink.warning(SOAP_RETIREMENT_WARNING);
            sink.info(&format!(
                "Logging in to {} as {} (SOAP login(), API {}.0)...",
                plan.domain.base_url(),
                plan.username,
                plan.api_version
            ));
            let session = client
                .login_soap(&plan.domain, &plan.username, password, token, plan.api_version)
                .await
                .map_err(|e| login_error(e, plan, None))?;
            (session, Vec::new())
        }
    };
    if let (Some(refused), Some(audience)) = (refused_attempts.first(), &session.audience) {
        sink.info(&format!(
            "Salesforce refused audience {} ({}) and accepted {audience}.",
            refused.audience, refused.description
        ));
    }
    let test = client.test_connection(&session, plan.api_version).await.map_err(|e| login_error(e, plan, None))?;
    Ok(LoginOutcome { session: std::sync::Arc::new(session), test, refused_attempts })
}

/// `slam test-login`.
pub async fn test_login(ctx: &Context<'_>, args: ConnectionArgs, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let started = Instant::now();
    let plan = validate(args, sink)?;
    let outcome = login_and_test(ctx, &plan, sink).await?;
    let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let session = &outcome.session;
    sink.info(&format!(
        "Logged in as {} to org {} at {} in {elapsed_ms} ms. API {}.0 works; the org offers {}.",
        plan.username,
        session.org_id,
        session.instance_url,
        plan.api_version,
        outcome.test.range()
    ));
    let mut result = ResultSet::new(&[
        ("username", ColumnType::Text),
        ("auth_method", ColumnType::Text),
        ("domain", ColumnType::Text),
        ("instance_url", ColumnType::Text),
        ("org_id", ColumnType::Text),
        ("user_id", ColumnType::Text),
        ("api_version", ColumnType::Int),
        ("api_versions_offered", ColumnType::Text),
        ("highest_api_version", ColumnType::Text),
        ("jwt_audience", ColumnType::Text),
        ("elapsed_ms", ColumnType::Int),
    ]);
    result.push(vec![
        plan.username.clone().into(),
        plan.auth_method().as_str().into(),
        plan.domain.as_str().into(),
        session.instance_url.clone().into(),
        session.org_id.clone().into(),
        session.user_id.clone().into(),
        plan.api_version.into(),
        outcome.test.range().into(),
        outcome.test.highest().map(str::to_string).into(),
        session.audience.clone().into(),
        elapsed_ms.into(),
    ]);
    sink.result_set(result);
    Ok(())
}
