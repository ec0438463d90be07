//! `slam test-login`: log in with connection parameters, run the connection test,
//! store nothing. The parameter validation here is the one `SLAM_add_connection`
//! uses, so both refuse the same inputs with the same messages.

use super::{Context, key_error, with_causes};
use crate::keys::{KeyName, KeyVault};
use crate::salesforce::{
    self, ConnectionTest, DomainError, JwtAttempt, LoginDomain, LoginError, SalesforceClient, Session,
    http::TransportError,
};
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

/// Maps a login failure to what the user sees, naming what to fix.
pub(super) fn login_error(error: LoginError, plan: &ConnectionPlan, vault: Option<&KeyVault>) -> SlamError {
    let message = with_causes(&error);
    let user = &plan.username;
    let domain = plan.domain.as_str();
    match error {
        LoginError::Client(_) => SlamError::new(ErrorCode::InvalidArgument, message)
            .with_hint("check the extra CA file and proxy settings (`--ca-file` / SLAM_CA_FILE, `--proxy` / SLAM_PROXY)"),
        LoginError::Transport(TransportError::Tls { .. }) => SlamError::new(ErrorCode::SalesforceTlsUntrusted, message)
            .with_hint("if a proxy or firewall inspects TLS, give SLAM its CA certificate (`--ca-file` / SLAM_CA_FILE) \
                        or install it in the machine's trusted root store"),
        LoginError::Transport(TransportError::Timeout { .. } | TransportError::ConnectTimeout { .. }) => SlamError::new(ErrorCode::SalesforceTimeout, message)
            .with_hint("check that this server can reach Salesforce on port 443 (firewall, proxy: HTTPS_PROXY or `--proxy`)"),
        LoginError::Transport(TransportError::Unavailable { .. }) => {
            SlamError::new(ErrorCode::SalesforceUnavailable, message)
                .with_hint("Salesforce or a proxy is failing; check status.salesforce.com and try again later")
        }
        LoginError::ForeignInstance { .. } => SlamError::new(ErrorCode::SalesforceUnexpectedResponse, message).with_hint(
            "no session was used. Something between this server and Salesforce (a proxy rewriting answers, a DNS \
             override) answered the login; check the proxy and DNS settings",
        ),
        LoginError::Transport(TransportError::TooLarge { .. }) => {
            SlamError::new(ErrorCode::SalesforceUnexpectedResponse, message).with_hint(
                "something between this server and Salesforce (a proxy, a captive portal) answered instead of \
                 Salesforce; check the proxy settings",
            )
        }
        LoginError::Transport(_) => SlamError::new(ErrorCode::SalesforceUnreachable, message).with_hint(format!(
            "check DNS and outbound HTTPS to {} from this server (firewall, proxy: HTTPS_PROXY or `--proxy`), and `@domain`",
            plan.domain.host()
        )),
        LoginError::JwtRejected { ref attempts, clock_skew_seconds } => {
            let last = attempts.last();
            let description = last.map(|a| a.description.as_str()).unwrap_or_default();
            let error_code = last.map(|a| a.error.as_str()).unwrap_or_default();
            let tried = attempts.iter().map(|a| format!("{} with aud {}", a.host, a.audience)).collect::<Vec<_>>().join(", ");
            let (code, hint) = if error_code == "invalid_client_id" {
                (
                    ErrorCode::JwtUnknownConsumerKey,
                    "copy the Consumer Key from Setup > App Manager > your External Client App > Settings > OAuth \
                     Settings > App Settings > Consumer Key, and check @domain points at the org where that app lives"
                        .to_string(),
                )
            } else if error_code == "app_not_found" {
                (
                    ErrorCode::JwtAppNotInstalled,
                    format!("the External Client App is not installed in the org behind @domain = '{domain}' (after a \
                             sandbox refresh it must be created again); create it there or fix @domain"),
                )
            } else if description.contains("audience") {
                (
                    ErrorCode::JwtAudienceInvalid,
                    format!("production and Developer Edition orgs use @domain = 'login' or their My Domain; sandboxes \
                             'test' or 'org--sandbox.sandbox.my'. Tried: {tried}"),
                )
            } else if description.contains("user hasn't approved this consumer")
                || error_code == "invalid_app_access"
            {
                (
                    ErrorCode::JwtUserNotApproved,
                    format!("in the External Client App's Policies set Permitted Users to 'Admin approved users are \
                             pre-authorized' and add a profile or permission set that {user} has (changes take up to \
                             10 minutes); also check @domain: a sandbox needs 'test' or its sandbox My Domain. Tried: {tried}"),
                )
            } else if description.contains("invalid assertion") {
                let cert = match (&plan.credentials, vault) {
                    (Credentials::Jwt { key_name, .. }, Some(vault)) => vault.certificate_path(key_name).display().to_string(),
                    _ => "the keypair's .crt".to_string(),
                };
                (
                    ErrorCode::JwtInvalidAssertion,
                    format!("the certificate in the External Client App is not this key's: upload {cert} under OAuth \
                             Settings > Flow Enablement > Enable JWT Bearer Flow, and check @consumer_key is that app's"),
                )
            } else if description.contains("expired authorization code") {
                let skew = match clock_skew_seconds {
                    Some(s) if s.abs() >= 30 => format!(
                        "this server's clock is {} seconds {} Salesforce's",
                        s.abs(),
                        if s > 0 { "ahead of" } else { "behind" }
                    ),
                    Some(s) => format!("this server's clock is within {} seconds of Salesforce's, so the clock is not the cause", s.abs()),
                    None => "Salesforce sent no Date header to compare clocks with".to_string(),
                };
                (ErrorCode::ClockSkew, format!("{skew}; synchronise it (w32tm /resync on Windows, chrony or timedatectl on Linux)"))
            } else if description.contains("inactive") {
                (ErrorCode::UserInactive, format!("activate {user} in Setup > Users, or use another user"))
            } else {
                (ErrorCode::LoginFailed, format!("Salesforce's answer is quoted above. Tried: {tried}"))
            };
            SlamError::new(code, message).with_hint(hint)
        }
        LoginError::SoapFault { ref code, message: ref text } => {
            let (number, hint) = match code.as_str() {
                "INVALID_LOGIN" => (
                    ErrorCode::InvalidLogin,
                    format!("check @username, @password and @token for {user}: a password change resets the security \
                             token (Settings > Reset My Security Token emails a new one), and an administrator can \
                             unlock a locked-out user in Setup > Users"),
                ),
                "LOGIN_MUST_USE_SECURITY_TOKEN" => (
                    ErrorCode::SecurityTokenRequired,
                    "pass @token: the security token emailed by Settings > Reset My Security Token (or have the org \
                     trust this server's IP address)"
                        .to_string(),
                ),
                "INVALID_OPERATION" if text.contains("disabled") => (
                    ErrorCode::SoapLoginDisabled,
                    "an administrator can enable it in Setup > User Interface > 'Enable SOAP API login()'; better, \
                     move this connection to @auth_method = 'jwt_bearer'"
                        .to_string(),
                ),
                "INVALID_OPERATION" if text.contains("not available in the API version") => (
                    ErrorCode::SoapLoginUnavailable,
                    format!("use @api_version = {} or lower, or move to @auth_method = 'jwt_bearer'", salesforce::SOAP_LOGIN_REMOVED_IN - 1),
                ),
                "API_DISABLED_FOR_ORG" => (
                    ErrorCode::ApiDisabled,
                    format!("{user}'s profile or a permission set needs 'API Enabled', and the org's edition must include API access"),
                ),
                "INSUFFICIENT_ACCESS" => (
                    ErrorCode::UseAnyApiAuthMissing,
                    format!("grant {user} the 'Use Any API Auth' user permission (through a permission set), or move \
                             to @auth_method = 'jwt_bearer'"),
                ),
                "LOGIN_RATE_EXCEEDED" | "REQUEST_LIMIT_EXCEEDED" => (
                    ErrorCode::LoginRateExceeded,
                    "Salesforce allows 3,600 logins per user per hour; wait, and avoid logging in once per operation"
                        .to_string(),
                ),
                "UNSUPPORTED_API_VERSION" => (
                    ErrorCode::ApiVersionUnsupported,
                    format!("choose an @api_version between {} and the org's current version", salesforce::MIN_API_VERSION),
                ),
                "PASSWORD_LOCKOUT" => (
                    ErrorCode::InvalidLogin,
                    format!("{user} is locked out; an administrator can unlock the user in Setup > Users"),
                ),
                _ => (ErrorCode::LoginFailed, "Salesforce's answer is quoted above".to_string()),
            };
            SlamError::new(number, message).with_hint(hint)
        }
        LoginError::PasswordExpired => SlamError::new(ErrorCode::PasswordExpired, message).with_hint(format!(
            "log in to Salesforce as {user} and set a new password (then reset the security token), and pass the new \
             values; an integration user's profile can have 'Password never expires'"
        )),
        LoginError::VersionNotOffered { .. } => SlamError::new(ErrorCode::ApiVersionUnsupported, message)
            .with_hint("choose an @api_version the org offers (the default is 60)"),
        LoginError::SessionRejected { .. } => SlamError::new(ErrorCode::SessionInvalid, message).with_hint(
            "the login worked but its session may not call the REST API: for jwt_bearer, the External Client App \
             needs the OAuth scope 'Manage user data via APIs (api)'; check also High Assurance session policies",
        ),
        LoginError::Unexpected { .. } => SlamError::new(ErrorCode::SalesforceUnexpectedResponse, message).with_hint(
            "this is not an answer Salesforce sends; a proxy or firewall may be intercepting the request. Check `@domain` \
             and the proxy settings",
        ),
    }
}
