//! A fake Salesforce login server for tests and demos.
//!
//! # Why this crate exists
//!
//! The SLAM client logs in to Salesforce with the OAuth 2.0 JWT bearer flow (and, for old
//! setups, SOAP `login()`), then checks its session with a cheap REST call. Those paths are
//! full of edge cases that are impossible to exercise against a real org in CI: wrong
//! audience, sandbox vs. production hosts, clock skew, expired passwords, SOAP `login()`
//! being retired, load-balancer errors, hanging servers. [`FakeSalesforce`] reproduces
//! Salesforce's observed wire behaviour (status codes, exact JSON error bodies, SOAP faults
//! with Salesforce's `soapenv:`/`sf:` prefixes) over **real TLS** with **real RS256**
//! verification, so the client is tested exactly as it talks to production.
//!
//! # README
//!
//! * [`FakeSalesforce::start`] binds `127.0.0.1:0` and serves HTTPS/1.1 from its own tokio
//!   runtime on a background thread; the API is synchronous, so it works from plain
//!   `#[test]` functions and from tests that spawn CLI processes. Dropping it stops the server.
//! * TLS: a fresh test CA (`CN=SLAM Test CA`) signs a certificate for `*.salesforce.com`,
//!   `login.salesforce.com`, `test.salesforce.com`, `*.my.salesforce.com`,
//!   `*.sandbox.my.salesforce.com` and `*.develop.my.salesforce.com`. Trust
//!   [`FakeSalesforce::ca_pem`] (or the file from [`FakeSalesforce::write_ca_file`]) and map
//!   every `*.salesforce.com` host to [`FakeSalesforce::addr`]; [`FakeSalesforce::resolve_spec`]
//!   gives `salesforce.com=127.0.0.1:PORT` for clients that take such a mapping.
//! * Hosts: `login.salesforce.com` serves production orgs, `test.salesforce.com` sandboxes,
//!   `{my_domain}.my.salesforce.com` one org. Any other host gets a plain-text 404.
//! * Routes: `POST /services/oauth2/token` (JWT bearer only), `POST /services/Soap/u/{ver}`
//!   (partner `login()`), `GET /services/data/` (versions, no auth) and
//!   `GET /services/data/v{NN}.0` (session check with `Authorization: Bearer`). Every response
//!   has a `Date` header from the fake's clock ([`FakeSalesforce::set_clock_offset`]).
//! * The JWT app certificate's validity period is **not** checked, because Salesforce does
//!   not enforce it; the client is expected to warn about expiry locally.
//! * Fault injection (applied before routing, after recording): [`FakeSalesforce::fail_next`],
//!   [`FakeSalesforce::set_latency`], [`FakeSalesforce::hang`],
//!   [`FakeSalesforce::revoke_all_tokens`], [`FakeSalesforce::set_login_rate_limit`].
//! * Every request is recorded ([`FakeSalesforce::requests`]) with its decoded form and the
//!   unverified JWT claims of an `assertion`.
//! * A panic in a request handler answers 500 and makes dropping the [`FakeSalesforce`] panic,
//!   so the test fails instead of seeing a mysterious error.
//! * Binary `slam-fake-salesforce` runs a demo instance by hand (`--help`).
//! * [`tds::FakeSqlServer`] is a fake SQL Server speaking TDS 7.4 (PRELOGIN, TLS inside
//!   PRELOGIN, LOGIN7, SQL batches, `sp_executesql` RPCs) to the real tiberius client; a
//!   [`tds::Handler`] decides every login and answer. See the [`tds`] module docs for what is
//!   faithful to SQL Server and what is not.
//!
//! ```no_run
//! use slam_testkit::{App, FakeSalesforce, Org, TestKeyPair, User};
//!
//! let fake = FakeSalesforce::start();
//! let org = Org::production("acme");
//! let user = User::new("etl@acme.com", &org);
//! let key = TestKeyPair::shared();
//! let app = App::new("3MVG9consumer", &org, key.certificate_pem.clone())
//!     .pre_authorize(&user.username);
//! fake.add_org(org);
//! fake.add_user(user);
//! fake.add_app(app);
//! let ca_file = fake.write_ca_file(std::path::Path::new("/tmp"));
//! // Point the client at https://login.salesforce.com with `fake.resolve_spec()` and `ca_file`.
//! # let _ = ca_file;
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod keys;
mod model;
mod routes;
mod server;
mod soap;
mod tls;

pub mod tds;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

pub use keys::TestKeyPair;
pub use model::{App, DEFAULT_API_VERSIONS, Org, User, new_salesforce_id};
pub use tls::SERVER_SANS;

use server::Shared;

/// One request as the fake received it (recorded before any fault injection or routing).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// The `Host` header without port, lower-cased.
    pub host: String,
    /// The URI path (without query).
    pub path: String,
    /// All headers, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
    /// The decoded body if it was `application/x-www-form-urlencoded` (token POSTs), else empty.
    pub form: Vec<(String, String)>,
    /// The decoded (unverified) payload of a JWT `assertion` form field, if any.
    pub jwt_claims: Option<serde_json::Value>,
}

impl RecordedRequest {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first form field with this name.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A running fake Salesforce. See the [crate docs](crate). Dropping it shuts the server down
/// (and panics if a request handler panicked).
pub struct FakeSalesforce {
    addr: SocketAddr,
    ca_pem: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeSalesforce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSalesforce").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FakeSalesforce {
    /// Generates the test PKI, binds `127.0.0.1:0` and starts serving on a background thread
    /// with its own tokio runtime. Panics if that is impossible (test-only code).
    pub fn start() -> FakeSalesforce {
        let pki = tls::generate().expect("generate test PKI");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared::new());
        let (tx, rx) = oneshot::channel();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-salesforce-{}", addr.port()))
            .spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
                runtime.block_on(server::serve(listener, acceptor, thread_shared, rx));
                // Drops hung handler tasks and open connections.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn fake Salesforce thread");
        FakeSalesforce { addr, ca_pem: pki.ca_pem, shared, shutdown: Some(tx), thread: Some(thread) }
    }

    /// The listening address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the test CA that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes [`FakeSalesforce::ca_pem`] to `dir/fake-salesforce-ca.pem` and returns the path.
    pub fn write_ca_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("fake-salesforce-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write CA file");
        path
    }

    /// `"salesforce.com=127.0.0.1:PORT"`: the client maps every `*.salesforce.com` host here.
    pub fn resolve_spec(&self) -> String {
        format!("salesforce.com={}", self.addr)
    }

    /// Adds an org (replacing one with the same org ID).
    pub fn add_org(&self, org: Org) {
        let mut state = self.shared.lock();
        state.orgs.retain(|o| o.org_id != org.org_id);
        state.orgs.push(org);
    }

    /// Adds a user (replacing one with the same username, case-insensitively).
    pub fn add_user(&self, user: User) {
        let mut state = self.shared.lock();
        state.users.retain(|u| !u.username.eq_ignore_ascii_case(&user.username));
        state.users.push(user);
    }

    /// Adds a JWT app (replacing one with the same consumer key).
    pub fn add_app(&self, app: App) {
        let mut state = self.shared.lock();
        state.apps.retain(|a| a.consumer_key != app.consumer_key);
        state.apps.push(app);
    }

    /// Sets the fake's clock to real time + `secs` (may be negative). Used for JWT `exp`
    /// checks, `issued_at` and the `Date` header.
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.lock().clock_offset = secs;
    }

    /// The next `n` requests (any route) are answered with `status` and a short HTML body.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut state = self.shared.lock();
        state.fail_next = n;
        state.fail_status = status;
    }

    /// Every later login answers with `url` as its `instance_url` (`None` restores
    /// the org's own): a tampered or misdirected answer.
    pub fn tamper_instance_url(&self, url: Option<&str>) {
        self.shared.lock().tampered_instance_url = url.map(str::to_string);
    }

    /// The next `n` requests (any route) are answered 200 with a 2 MiB body.
    pub fn oversize_next(&self, n: usize) {
        self.shared.lock().oversize_next = n;
    }

    /// Delays every answer by `d` (`Duration::ZERO` to turn off).
    pub fn set_latency(&self, d: Duration) {
        self.shared.lock().latency = d;
    }

    /// While on, requests are accepted and recorded but not answered. Turning it off releases
    /// the waiting requests; dropping the fake closes them.
    pub fn hang(&self, on: bool) {
        self.shared.hang.send_replace(on);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Number of successful logins (token endpoint and SOAP) so far.
    pub fn issued_tokens(&self) -> usize {
        self.shared.lock().issued_tokens
    }

    /// Invalidates every issued access token / session ID (REST answers 401
    /// `INVALID_SESSION_ID` afterwards).
    pub fn revoke_all_tokens(&self) {
        self.shared.lock().sessions.clear();
    }

    /// Successful SOAP logins allowed per user before `LOGIN_RATE_EXCEEDED` (default 3600;
    /// counted over the fake's lifetime, not per hour).
    pub fn set_login_rate_limit(&self, n: u32) {
        self.shared.lock().login_rate_limit = n;
    }

    #[cfg(test)]
    fn panic_on_next_request(&self) {
        self.shared.lock().panic_next = true;
    }
}

impl Drop for FakeSalesforce {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let panics = std::mem::take(&mut self.shared.lock().panics);
        if !panics.is_empty() && !std::thread::panicking() {
            panic!("{}", panics.join("\n"));
        }
    }
}

#[cfg(test)]
mod tests;
