//! Logging in to Salesforce, and proving the login works.
//!
//! - [`domain`]: `@domain` → login host and JWT audiences.
//! - [`http`]: the one HTTPS client (trust, proxies, timeouts, safe retries).
//! - `jwt`: the OAuth 2.0 JWT Bearer flow against `/services/oauth2/token`.
//! - `soap`: SOAP `login()` with username, password and security token.
//! - `rest`: the connection test, an authenticated call at the connection's API version.
//!
//! Everything here returns [`LoginError`], which keeps Salesforce's own error code
//! and text; `ops` turns it into a SLAM error with a hint naming the Salesforce
//! setting or parameter to fix.

pub mod domain;
pub mod http;
mod jwt;
mod rest;
mod soap;

pub use domain::{DomainError, LoginDomain};
pub use http::{HttpSettings, ResolveOverride, redact_url};
pub use jwt::JwtAttempt;
pub use rest::ConnectionTest;

use crate::clock::Clock;
use crate::keys::SigningKey;
use crate::secret::Secret;
use http::{ClientError, TransportError};

/// Lowest API version SLAM accepts: Salesforce retired 30.0 and below.
pub const MIN_API_VERSION: i64 = 31;
/// Highest API version SLAM accepts (a sanity bound, well above today's).
pub const MAX_API_VERSION: i64 = 99;
/// The spec's default `@api_version`.
pub const DEFAULT_API_VERSION: i64 = 60;
/// First API version without SOAP `login()`.
pub const SOAP_LOGIN_REMOVED_IN: i64 = 65;

/// A logged-in session.
pub struct Session {
    /// The bearer token (OAuth access token or SOAP session id).
    pub access_token: Secret,
    /// `https://acme.my.salesforce.com`.
    pub instance_url: String,
    /// The 18-character org id (15 when SOAP only gives 15).
    pub org_id: String,
    /// The user id.
    pub user_id: String,
    /// The JWT audience Salesforce accepted (JWT only).
    pub audience: Option<String>,
}

/// The domains Salesforce serves orgs from (commercial, government, legacy).
const SALESFORCE_HOST_SUFFIXES: &[&str] = &[".salesforce.com", ".force.com", ".cloudforce.com", ".salesforce.mil"];

/// Checks the `instance_url` a login returned before any bearer token is sent to it:
/// HTTPS, no credentials, the default port, and a host under a Salesforce domain.
/// Whatever answered the login (a proxy that rewrites answers, a misdirected DNS
/// entry) must not be able to collect the token by naming its own host.
pub(crate) fn check_instance_url(instance_url: &str) -> Result<(), LoginError> {
    let foreign = || LoginError::ForeignInstance { instance_url: instance_url.chars().take(200).collect() };
    let url = reqwest::Url::parse(instance_url).map_err(|_| foreign())?;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let salesforce = SALESFORCE_HOST_SUFFIXES.iter().any(|suffix| host.ends_with(suffix));
    let plain = url.scheme() == "https" && url.username().is_empty() && url.password().is_none();
    if salesforce && plain && url.port().is_none() { Ok(()) } else { Err(foreign()) }
}

/// How a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The login answered with an `instance_url` outside Salesforce's domains.
    #[error("the login answered with an instance URL that is not a Salesforce host: {instance_url}")]
    ForeignInstance {
        /// The URL (at most 200 characters of it).
        instance_url: String,
    },
    /// The HTTPS client could not be built from the settings.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Salesforce could not be reached or did not answer.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The token endpoint refused every JWT attempt.
    #[error("Salesforce refused the JWT Bearer login: {}", describe_attempts(attempts))]
    JwtRejected {
        /// Each host/audience tried and Salesforce's answer.
        attempts: Vec<JwtAttempt>,
        /// Local clock minus Salesforce's `Date`, in seconds, when the answer carried one.
        clock_skew_seconds: Option<i64>,
    },
    /// SOAP `login()` answered with a fault.
    #[error("Salesforce refused the login: {code}: {message}")]
    SoapFault {
        /// Salesforce's exception code, e.g. `INVALID_LOGIN`.
        code: String,
        /// Salesforce's message.
        message: String,
    },
    /// The login succeeded but the password has expired.
    #[error("the password of the Salesforce user has expired")]
    PasswordExpired,
    /// The connection test's authenticated call was refused.
    #[error("Salesforce rejected the new session at {url}: HTTP {status} {code}: {message}")]
    SessionRejected {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// Salesforce's `errorCode`.
        code: String,
        /// Salesforce's `message`.
        message: String,
    },
    /// The org does not offer the API version.
    #[error("the org does not offer API version {requested}.0{}", highest.as_ref().map(|h| format!(" (the highest it offers is {h})")).unwrap_or_default())]
    VersionNotOffered {
        /// The version asked for.
        requested: i64,
        /// The highest version the org offers, if known.
        highest: Option<String>,
    },
    /// An answer Salesforce would not send (often a proxy's or firewall's page).
    #[error("unexpected answer from {url}: HTTP {status}, {snippet:?}")]
    Unexpected {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        snippet: String,
    },
}

fn describe_attempts(attempts: &[JwtAttempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{}: {} [host={} aud={}]", a.error, a.description, a.host, a.audience))
        .collect::<Vec<_>>()
        .join("; then ")
}

/// Talks to Salesforce with one pooled HTTPS client.
pub struct SalesforceClient {
    http: reqwest::Client,
    settings: HttpSettings,
}

impl SalesforceClient {
    /// A client with these settings.
    pub fn new(settings: HttpSettings) -> Result<Self, LoginError> {
        let http = http::build_client(&settings)?;
        Ok(Self { http, settings })
    }

    /// JWT Bearer login. Tries the documented audience first and, for a My Domain
    /// whose answer suggests an audience problem, the My Domain URL.
    pub async fn login_jwt(
        &self,
        domain: &LoginDomain,
        username: &str,
        consumer_key: &str,
        key: &SigningKey,
        clock: &dyn Clock,
    ) -> Result<(Session, Vec<JwtAttempt>), LoginError> {
        jwt::login(self, domain, username, consumer_key, key, clock).await
    }

    /// SOAP `login()` with password + security token.
    /// When Salesforce refuses the version, the error names the highest one the org offers.
    pub async fn login_soap(
        &self,
        domain: &LoginDomain,
        username: &str,
        password: &Secret,
        token: &Secret,
        api_version: i64,
    ) -> Result<Session, LoginError> {
        match soap::login(self, domain, username, password, token, api_version).await {
            Err(LoginError::SoapFault { code, .. }) if code == "UNSUPPORTED_API_VERSION" => {
                let offered = rest::versions_offered(self, &domain.base_url()).await.unwrap_or_default();
                Err(LoginError::VersionNotOffered { requested: api_version, highest: offered.last().cloned() })
            }
            other => other,
        }
    }

    /// The connection test: an authenticated call at `api_version`, and the list of
    /// versions the org offers.
    pub async fn test_connection(&self, session: &Session, api_version: i64) -> Result<ConnectionTest, LoginError> {
        rest::test_connection(self, session, api_version).await
    }
}

/// What a 200 answer looked like, without its content (which may hold a token).
fn describe_success_body(answer: &http::Answer) -> String {
    format!(
        "a {}-byte {} body that is not a login result (content not shown: it may hold a session token)",
        answer.body.len(),
        if answer.content_type.is_empty() { "untyped" } else { answer.content_type.as_str() }
    )
}

/// The first characters of a body, for error messages (never a request body, never a 200 answer).
fn snippet(body: &str) -> String {
    let flat: String = body.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let trimmed = flat.trim();
    match trimmed.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_only_to_salesforce_hosts() {
        for good in [
            "https://acme.my.salesforce.com",
            "https://acme--dev.sandbox.my.salesforce.com",
            "https://na1.salesforce.com",
        ] {
            assert!(check_instance_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://acme.my.salesforce.com",
            "https://acme.my.salesforce.com.evil.example",
            "https://evil.example/acme.my.salesforce.com",
            "https://user:pw@acme.my.salesforce.com",
            "https://acme.my.salesforce.com:8443",
            "https://salesforce.com.evil.example",
            "not a url",
        ] {
            assert!(matches!(check_instance_url(bad), Err(LoginError::ForeignInstance { .. })), "{bad}");
        }
    }
}
