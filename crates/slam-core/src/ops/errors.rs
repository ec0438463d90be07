//! How failures of the layers below become the [`SlamError`]s a user sees: one
//! stable number each, and a hint naming what to change.

use super::login::{ConnectionPlan, Credentials};
use crate::data_dir::DataDirError;
use crate::keys::{self, KeyError, KeyVault, UnlockError};
use crate::salesforce::http::TransportError;
use crate::salesforce::{self, LoginError};
use crate::seal::SealError;
use slam_protocol::{ErrorCode, SlamError};
use slam_store::StoreError;

/// The message of `error` followed by its causes: "writing x failed: Permission denied".
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Maps a key-vault error to what the user sees.
pub(crate) fn key_error(error: KeyError) -> SlamError {
    let message = with_causes(&error);
    match error {
        KeyError::InvalidName { from_host_name: true, .. } => SlamError::new(ErrorCode::KeyNameInvalid, message)
            .with_hint("this machine's host name cannot be a key name: pass `@key_name`, e.g. 'acme-prod'"),
        KeyError::InvalidName { .. } => SlamError::new(ErrorCode::KeyNameInvalid, message).with_hint(format!(
            "use up to {} ASCII letters, digits, `-`, `_` or `.`, e.g. 'acme-prod' (one name per Salesforce org)",
            keys::MAX_KEY_NAME_CHARS
        )),
        KeyError::CertDays(_) => SlamError::new(ErrorCode::CertDaysInvalid, message)
            .with_hint(format!("leave `@cert_days` NULL for the default of {} days", keys::DEFAULT_CERT_DAYS)),
        KeyError::EmptyPassphrase => SlamError::new(ErrorCode::KeyPasswordEmpty, message).with_hint(
            "give a real passphrase, or leave `@password` NULL to store the key unencrypted (not recommended)",
        ),
        KeyError::DataDir(DataDirError::Missing { .. }) => SlamError::new(ErrorCode::DataDirMissing, message)
            .with_hint(
                "create it (the installer does), or point `--data-dir` / `SLAM_DATA_DIR` at the SLAM data directory",
            ),
        KeyError::DataDir(_) => SlamError::new(ErrorCode::DataDirUnusable, message).with_hint(
            "the data directory must be a directory the SLAM service account (or the user running `slam`) can write",
        ),
        KeyError::Exists { ref name, .. } => SlamError::new(ErrorCode::KeyExists, message).with_hint(format!(
            "nothing was changed. To replace it anyway, run SLAM_setup_jwt @key_name = '{name}' with `@force = 1`; \
             JWT logins with it then fail until the new certificate is uploaded to Salesforce"
        )),
        KeyError::OrphanPrivateKey { ref name } => SlamError::new(ErrorCode::KeyExists, message).with_hint(format!(
            "nothing was changed. Replace it with `@force = 1`, or delete it with SLAM_remove_jwt @key_name = '{name}'"
        )),
        KeyError::UnreadableCertificate { .. } => SlamError::new(ErrorCode::KeyFileCorrupt, message)
            .with_hint("nothing was changed. Replace the keypair with `@force = 1`, or delete it with SLAM_remove_jwt"),
        KeyError::NotFound { ref known, .. } if known.is_empty() => SlamError::new(ErrorCode::KeyNotFound, message)
            .with_hint("there are no keypairs on this machine; SLAM_setup_jwt creates one"),
        KeyError::NotFound { ref known, .. } => SlamError::new(ErrorCode::KeyNotFound, message)
            .with_hint(format!("existing keypairs: {}", known.join(", "))),
        KeyError::Io { .. } => SlamError::new(ErrorCode::KeyFileIo, message)
            .with_hint("check that the SLAM service account can read and write the keys directory"),
        KeyError::Material(_) => SlamError::new(ErrorCode::KeyGenerationFailed, message),
        KeyError::Unlock { source: UnlockError::PassphraseRequired, .. } => {
            SlamError::new(ErrorCode::KeyPasswordRequired, message)
                .with_hint("the keypair was created with `@password`: pass the same passphrase as `@key_password`")
        }
        KeyError::Unlock { source: UnlockError::PassphraseWrong, ref name } => {
            SlamError::new(ErrorCode::KeyPasswordWrong, message).with_hint(format!(
                "`@key_password` must be the `@password` given to SLAM_setup_jwt for `{name}`. If it is lost, \
                 create a new keypair (SLAM_setup_jwt @key_name = '{name}', @force = 1) and upload its certificate"
            ))
        }
        KeyError::Unlock { source: UnlockError::Unreadable, .. } => SlamError::new(ErrorCode::KeyFileCorrupt, message)
            .with_hint("replace the keypair with SLAM_setup_jwt `@force = 1` and upload the new certificate"),
        KeyError::Unlock { source: UnlockError::Mismatch, ref name } => {
            SlamError::new(ErrorCode::KeyCertificateMismatch, message).with_hint(format!(
                "`{name}.pem` and `{name}.crt` were not made together. Run SLAM_setup_jwt @key_name = '{name}', \
                 @force = 1 and upload the new certificate to the External Client App"
            ))
        }
        KeyError::CertificateExpired { ref name, .. } => SlamError::new(ErrorCode::KeyCertificateExpired, message)
            .with_hint(format!(
                "renew it: SLAM_setup_jwt @key_name = '{name}' (no `@force` needed once expired), then upload \
                 the new {name}.crt to the External Client App (OAuth Settings > Flow Enablement)"
            )),
    }
}

pub(crate) fn store_error(error: StoreError) -> SlamError {
    let message = with_causes(&error);
    match error {
        StoreError::NotFound { known, .. } if known.is_empty() => {
            SlamError::new(ErrorCode::ConnectionNotFound, message)
                .with_hint("no connections are stored; add one with SLAM_add_connection")
        }
        StoreError::NotFound { known, .. } => SlamError::new(ErrorCode::ConnectionNotFound, message)
            .with_hint(format!("stored connections: {}", known.join(", "))),
        StoreError::Locked { .. } => SlamError::new(ErrorCode::StoreLocked, message).with_hint(
            "nothing was changed; a transaction (an open SSMS window, a job) is holding the SLAM tables: commit or \
             roll it back, then run this again",
        ),
        StoreError::NotInstalled { .. } => SlamError::new(ErrorCode::NotInstalled, message).with_hint(
            "run sql/slam-install.sql in that database (or `slam install-sql`; it also creates the worker's user \
                 there), then run this again; if SLAM is installed, check that the database is online and not \
                 single-user",
        ),
        StoreError::Unreachable { .. } => SlamError::new(ErrorCode::StoreFailed, message).with_hint(
            "nothing was changed; the worker could not use SQL Server: `slam-worker --check-config` tests its \
             [sqlserver] settings and login",
        ),
        StoreError::Open { .. } => SlamError::new(ErrorCode::StoreFailed, message)
            .with_hint("nothing was changed; check disk space and that no other program holds the store locked"),
        StoreError::Sql { .. } => SlamError::new(ErrorCode::StoreFailed, message).with_hint(
            "nothing was changed; the cause is the store's own error (SQLite: disk space, another program holding \
             the file; SQL Server: the worker's rights on the SLAM tables, granted by sql/slam-install.sql)",
        ),
    }
}

pub(crate) fn seal_error(error: SealError) -> SlamError {
    let message = with_causes(&error);
    match error {
        SealError::Unseal => SlamError::new(ErrorCode::SecretsUnreadable, message).with_hint(
            "the store's secrets were sealed with another master key (DATA_DIR/master.key replaced, or the \
                        store copied from another machine): add the connection again with SLAM_add_connection",
        ),
        SealError::KeyMissing { .. } => SlamError::new(ErrorCode::SecretsUnreadable, message).with_hint(
            "restore master.key from the backup of the SLAM data directory; SLAM will not make a new one while \
             sealed secrets exist. If no backup exists, remove each connection (SLAM_remove_connection) and add it \
             again",
        ),
        SealError::KeyUnreadable { .. } => SlamError::new(ErrorCode::SecretsUnreadable, message).with_hint(
            "on Windows the master key opens only for the account that created it (normally the SLAM service \
             account): run as that account. If that account is gone, delete master.key and add every connection \
             again with SLAM_add_connection",
        ),
        _ => SlamError::new(ErrorCode::StoreFailed, message),
    }
}

/// Maps a login failure to what the user sees, naming what to fix.
pub(crate) fn login_error(error: LoginError, plan: &ConnectionPlan, vault: Option<&KeyVault>) -> SlamError {
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
