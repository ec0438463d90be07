//! The HTTPS client every Salesforce call goes through.
//!
//! - HTTPS only (`https_only`): a login never leaves the machine in clear.
//! - Trust: the operating system's store (so a corporate TLS-inspection CA deployed
//!   by group policy works) plus an optional extra CA file.
//! - Proxies: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the environment, or an
//!   explicit proxy URL.
//! - Every request has a connect timeout and a total timeout.
//! - Retries only what cannot have been processed: failures to connect, and 503
//!   (Service Unavailable: not processed). Reads (GET) also retry 502 and 504; logins
//!   (POST) do not, because a proxy's 502/504 may come after Salesforce ran the login,
//!   and a repeated failed login burns lockout attempts and the hourly login quota.
//!   Never 4xx, never 500 (SOAP faults are 500s), never a timeout after the request
//!   was sent.
//! - Resolve overrides (`salesforce.com=127.0.0.1:8443`) send every host under a
//!   suffix to one address while TLS still checks the real host name: how the tests
//!   reach the fake Salesforce, and how an admin can pin Salesforce in a locked-down
//!   network.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Connection settings for Salesforce. `Debug` hides proxy credentials.
#[derive(Clone)]
pub struct HttpSettings {
    /// Time allowed to establish a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, answer included.
    pub request_timeout: Duration,
    /// A PEM file of extra CA certificates to trust besides the OS store.
    pub extra_ca_file: Option<PathBuf>,
    /// An explicit proxy URL (otherwise the environment's `HTTPS_PROXY` etc.).
    pub proxy: Option<String>,
    /// Host-suffix overrides of DNS.
    pub resolve: Vec<ResolveOverride>,
    /// Attempts for retryable failures (1 = no retry).
    pub max_attempts: u32,
    /// Pause before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("extra_ca_file", &self.extra_ca_file)
            .field("proxy", &self.proxy.as_deref().map(redact_url))
            .field("resolve", &self.resolve)
            .field("max_attempts", &self.max_attempts)
            .field("retry_backoff", &self.retry_backoff)
            .finish()
    }
}

/// `http://user:pass@proxy:8080` → `http://***@proxy:8080`: proxy URLs may carry
/// credentials, which must not reach a message or a log. Everything up to the
/// *last* `@` is hidden: people type passwords with `/`, `?` or `#` unencoded, which
/// a URL parser would take for the end of the credentials and print the rest. A
/// proxy URL has no path, so hiding one that contains `@` loses nothing.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    match rest.rsplit_once('@') {
        Some((_, host)) if scheme.is_empty() => format!("***@{host}"),
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => url.to_string(),
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            extra_ca_file: None,
            proxy: None,
            resolve: Vec::new(),
            max_attempts: 3,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

/// `suffix=ip:port`: every host equal to or ending in `.suffix` resolves to `addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOverride {
    /// Host suffix, e.g. `salesforce.com`.
    pub suffix: String,
    /// Where to connect instead.
    pub addr: SocketAddr,
}

impl ResolveOverride {
    /// Parses `salesforce.com=127.0.0.1:8443`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (suffix, addr) =
            spec.split_once('=').ok_or_else(|| format!("resolve override {spec:?} is not SUFFIX=IP:PORT"))?;
        let addr = addr.trim().parse().map_err(|_| format!("resolve override {spec:?}: {addr:?} is not IP:PORT"))?;
        let suffix = suffix.trim().trim_start_matches('.').to_ascii_lowercase();
        if suffix.is_empty() {
            return Err(format!("resolve override {spec:?} has an empty suffix"));
        }
        Ok(Self { suffix, addr })
    }

    fn matches(&self, host: &str) -> bool {
        host == self.suffix || host.ends_with(&format!(".{}", self.suffix))
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The extra CA file could not be read or holds no certificate.
    #[error("the extra CA file {} cannot be used: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The proxy URL is malformed. `url` is already redacted.
    #[error("the proxy URL {url:?} is not valid")]
    Proxy {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// reqwest refused the configuration.
    #[error("the HTTPS client could not be created")]
    Build(#[source] reqwest::Error),
}

/// Builds the client for these settings.
pub fn build_client(settings: &HttpSettings) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .user_agent(concat!("speediful-slam/", env!("CARGO_PKG_VERSION")))
        .tls_built_in_native_certs(true)
        // A redirected POST loses its body; Salesforce login endpoints do not redirect
        // legitimately, so a redirect is reported rather than followed.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &settings.extra_ca_file {
        let pem = std::fs::read(path).map_err(|e| ClientError::CaFile { path: path.clone(), reason: e.to_string() })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ClientError::CaFile { path: path.clone(), reason: e.to_string() })?;
        if certs.is_empty() {
            return Err(ClientError::CaFile { path: path.clone(), reason: "no PEM certificate in it".into() });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(url) = &settings.proxy {
        let proxy = reqwest::Proxy::all(url).map_err(|source| ClientError::Proxy { url: redact_url(url), source })?;
        builder = builder.proxy(proxy);
    }
    if !settings.resolve.is_empty() {
        builder = builder.dns_resolver(Arc::new(OverridingResolver { overrides: settings.resolve.clone() }));
    }
    builder.build().map_err(ClientError::Build)
}

struct OverridingResolver {
    overrides: Vec<ResolveOverride>,
}

impl reqwest::dns::Resolve for OverridingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let fixed = self.overrides.iter().find(|o| o.matches(&host)).map(|o| o.addr);
        Box::pin(async move {
            match fixed {
                Some(addr) => Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs),
                None => {
                    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
            }
        })
    }
}

/// A transport-level failure, classified for the user.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// DNS, refused connection, proxy failure.
    #[error("cannot connect to {host}")]
    Connect {
        /// The host.
        host: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server's certificate was not trusted.
    #[error("the TLS certificate of {host} is not trusted")]
    Tls {
        /// The host.
        host: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// No answer in time.
    #[error("{host} did not answer within {seconds} seconds")]
    Timeout {
        /// The host.
        host: String,
        /// The limit.
        seconds: u64,
    },
    /// No connection in time.
    #[error("could not connect to {host} within {seconds} seconds")]
    ConnectTimeout {
        /// The host.
        host: String,
        /// The limit.
        seconds: u64,
    },
    /// 5xx after all attempts.
    #[error("{host} answered HTTP {status} ({attempts} attempts)")]
    Unavailable {
        /// The host.
        host: String,
        /// The last status.
        status: u16,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The answer's body exceeded [`MAX_RESPONSE_BODY`].
    #[error("{host} sent an answer larger than {limit} bytes")]
    TooLarge {
        /// The host.
        host: String,
        /// The limit.
        limit: usize,
    },
    /// Anything else reqwest reports.
    #[error("the request to {host} failed")]
    Other {
        /// The host.
        host: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
}

/// An answer: status, the `Date` header, and the body text.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The server's `Date` header, if any (used to measure clock skew).
    pub date: Option<std::time::SystemTime>,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub body: String,
}

/// Whether a request may be repeated after a 502 or 504.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// A read: repeat on connect failures and 502/503/504.
    Read,
    /// A login: repeat only on connect failures and 503.
    Login,
}

/// Sends the request `make` builds, retrying what is safe to retry.
pub async fn send(
    settings: &HttpSettings,
    host: &str,
    kind: Idempotency,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Answer, TransportError> {
    let attempts = settings.max_attempts.max(1);
    let mut backoff = settings.retry_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = make().send().await;
        let retryable = match &result {
            Err(e) => e.is_connect() && !is_tls_error(e),
            Ok(response) => {
                matches!((kind, response.status().as_u16()), (_, 503) | (Idempotency::Read, 502 | 504))
            }
        };
        if retryable && attempt < attempts {
            tracing::debug!(host, attempt, "retrying after a failure that cannot have been processed");
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(std::time::Duration::from_secs(10));
            continue;
        }
        return match result {
            Err(e) => Err(classify(host, e, settings)),
            Ok(response) => {
                let status = response.status().as_u16();
                tracing::debug!(host, status, attempt, "answer");
                if (502..=504).contains(&status) {
                    return Err(TransportError::Unavailable { host: host.to_string(), status, attempts: attempt });
                }
                let date = response
                    .headers()
                    .get(reqwest::header::DATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| httpdate::parse_http_date(v).ok());
                let content_type = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let body = read_body(host, response, settings).await?;
                Ok(Answer { status, date, content_type, body })
            }
        };
    }
}

/// The largest response body read from Salesforce. Its answers to a login or a
/// version listing are a few kilobytes; a body beyond this is not Salesforce's, and
/// must not make the worker allocate without bound.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// Reads the body chunk by chunk, giving up past [`MAX_RESPONSE_BODY`].
async fn read_body(
    host: &str,
    mut response: reqwest::Response,
    settings: &HttpSettings,
) -> Result<String, TransportError> {
    let too_large = || TransportError::TooLarge { host: host.to_string(), limit: MAX_RESPONSE_BODY };
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(host, e, settings))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn classify(host: &str, error: reqwest::Error, settings: &HttpSettings) -> TransportError {
    let host = host.to_string();
    if error.is_timeout() && error.is_connect() {
        TransportError::ConnectTimeout { host, seconds: settings.connect_timeout.as_secs().max(1) }
    } else if error.is_timeout() {
        TransportError::Timeout { host, seconds: settings.request_timeout.as_secs().max(1) }
    } else if is_tls_error(&error) {
        TransportError::Tls { host, source: error }
    } else if error.is_connect() {
        TransportError::Connect { host, source: error }
    } else {
        TransportError::Other { host, source: error }
    }
}

/// reqwest has no TLS predicate; certificate failures surface as a rustls error in
/// the source chain.
fn is_tls_error(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if text.contains("certificate") || text.contains("UnknownIssuer") || text.contains("invalid peer") {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_are_redacted() {
        assert_eq!(redact_url("http://bob:s3cret@proxy.corp:8080"), "http://***@proxy.corp:8080");
        for password in ["pa/ss", "p?w", "p#w", "a@b/c"] {
            let redacted = redact_url(&format!("http://bob:{password}@proxy.corp:8080"));
            assert_eq!(redacted, "http://***@proxy.corp:8080", "{password}");
        }
        assert_eq!(redact_url("bob:pa/ss@proxy.corp:8080"), "***@proxy.corp:8080");
        assert_eq!(redact_url("http://proxy.corp:8080"), "http://proxy.corp:8080");
        let settings = HttpSettings { proxy: Some("http://bob:s3cret@p:1".into()), ..HttpSettings::default() };
        assert!(!format!("{settings:?}").contains("s3cret"));
    }

    #[test]
    fn resolve_overrides_parse_and_match_suffixes() {
        let o = ResolveOverride::parse("salesforce.com=127.0.0.1:8443").unwrap();
        assert!(o.matches("login.salesforce.com"));
        assert!(o.matches("acme--partial.sandbox.my.salesforce.com"));
        assert!(o.matches("salesforce.com"));
        assert!(!o.matches("evilsalesforce.com"));
        assert!(!o.matches("salesforce.com.evil.net"));
        assert!(ResolveOverride::parse("nothing").is_err());
        assert!(ResolveOverride::parse("x=notanaddr").is_err());
    }
}
