//! The TLS listener, per-request plumbing (recording, fault injection, panic capture) and the
//! shared mutable state.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, DATE, HOST};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;

use crate::RecordedRequest;
use crate::model::{App, Org, User};
use crate::routes;

/// Largest request body the fake reads.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A session (access token or SOAP session ID) the fake has issued.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub org_id: String,
    pub password_expired: bool,
}

/// Everything the configuration API and the handlers share.
#[derive(Debug)]
pub(crate) struct State {
    pub orgs: Vec<Org>,
    pub users: Vec<User>,
    pub apps: Vec<App>,
    pub clock_offset: i64,
    pub fail_next: usize,
    pub fail_status: u16,
    pub latency: Duration,
    pub requests: Vec<RecordedRequest>,
    pub issued_tokens: usize,
    pub sessions: HashMap<String, Session>,
    /// Successful SOAP logins per lower-cased username.
    pub soap_logins: HashMap<String, u32>,
    pub login_rate_limit: u32,
    /// Answered as `instance_url` by every login instead of the org's own.
    pub tampered_instance_url: Option<String>,
    /// The next this many requests get a 200 with a body of 2 MiB.
    pub oversize_next: usize,
    pub panics: Vec<String>,
    #[cfg(test)]
    pub panic_next: bool,
}

impl State {
    fn new() -> State {
        State {
            orgs: Vec::new(),
            users: Vec::new(),
            apps: Vec::new(),
            clock_offset: 0,
            fail_next: 0,
            fail_status: 503,
            latency: Duration::ZERO,
            requests: Vec::new(),
            issued_tokens: 0,
            sessions: HashMap::new(),
            soap_logins: HashMap::new(),
            login_rate_limit: 3600,
            tampered_instance_url: None,
            oversize_next: 0,
            panics: Vec::new(),
            #[cfg(test)]
            panic_next: false,
        }
    }

    /// The fake's notion of "now": real time shifted by the clock offset.
    pub(crate) fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        let delta = Duration::from_secs(self.clock_offset.unsigned_abs());
        if self.clock_offset >= 0 { now + delta } else { now.checked_sub(delta).unwrap_or(SystemTime::UNIX_EPOCH) }
    }

    /// Seconds since the epoch by the fake's clock (fractional).
    pub(crate) fn now_secs(&self) -> f64 {
        self.now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
    }

    pub(crate) fn org(&self, org_id: &str) -> Option<&Org> {
        self.orgs.iter().find(|o| o.org_id == org_id)
    }

    pub(crate) fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username.eq_ignore_ascii_case(username))
    }
}

/// State plus the hang switch.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub hang: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared { state: Mutex::new(State::new()), hang: watch::channel(false).0 }
    }

    /// Locks the state. A poisoned lock (a handler panicked while holding it) is recovered:
    /// the panic itself is reported separately.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A parsed incoming request as the routes see it.
#[derive(Debug)]
pub(crate) struct Req {
    pub method: Method,
    pub host: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
    pub form: Vec<(String, String)>,
}

impl Req {
    pub(crate) fn form_value(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Runs the accept loop until `shutdown` fires.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            shared.lock().panics.push(format!("fake Salesforce could not start listening: {e}"));
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    // A client that fails the handshake (e.g. does not trust the CA) is simply
                    // dropped, like a real server would.
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(dispatch(shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        }
    }
}

/// Runs the handler in its own task so that a panic is caught, reported and turned into a 500.
async fn dispatch(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let task = tokio::spawn(handle(shared.clone(), req));
    let mut response = match task.await {
        Ok(resp) => resp,
        Err(err) => {
            let message = if err.is_panic() {
                let payload = err.into_panic();
                if let Some(s) = payload.downcast_ref::<&str>() {
                    (*s).to_owned()
                } else if let Some(s) = payload.downcast_ref::<String>() {
                    s.clone()
                } else {
                    "non-string panic payload".to_owned()
                }
            } else {
                "handler task cancelled".to_owned()
            };
            shared.lock().panics.push(format!("fake Salesforce handler panicked: {message}"));
            routes::text(StatusCode::INTERNAL_SERVER_ERROR, "fake Salesforce handler panicked")
        }
    };
    let now = shared.lock().now();
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        response.headers_mut().insert(DATE, v);
    }
    response
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(Body::new(body), MAX_BODY).await.unwrap_or_default();
    let host =
        parts.headers.get(HOST).and_then(|h| h.to_str().ok()).or_else(|| parts.uri.host()).unwrap_or("").to_owned();
    let host = strip_port(&host).to_ascii_lowercase();
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let form = if is_form { parse_form(&bytes) } else { Vec::new() };
    let req = Req {
        method: parts.method,
        host,
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        form,
    };
    let jwt_claims = req.form_value("assertion").and_then(routes::decode_jwt_unverified).map(|(_, claims)| claims);
    shared.lock().requests.push(RecordedRequest {
        method: req.method.to_string(),
        host: req.host.clone(),
        path: req.path.clone(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: req.body.clone(),
        form: req.form.clone(),
        jwt_claims,
    });

    // Fault injection, before routing.
    let mut hang = shared.hang.subscribe();
    // An Err means the sender is gone, i.e. the fake is shutting down: just carry on.
    let _ = hang.wait_for(|hanging| !*hanging).await;
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    {
        let mut state = shared.lock();
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return routes::injected_failure(state.fail_status);
        }
        if state.oversize_next > 0 {
            state.oversize_next -= 1;
            return routes::oversized_answer();
        }
        #[cfg(test)]
        if std::mem::take(&mut state.panic_next) {
            drop(state);
            panic!("injected test panic");
        }
    }

    let mut state = shared.lock();
    routes::route(&mut state, &req)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: "[::1]:443"
        return host.split(']').next().map_or(host, |h| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h)
}

/// Decodes an `application/x-www-form-urlencoded` body.
pub(crate) fn parse_form(bytes: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &[u8]| {
        let plus: Vec<u8> = s.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_encoding::percent_decode(&plus).decode_utf8_lossy().into_owned()
    };
    bytes
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |&b| b == b'=');
            let key = it.next().unwrap_or_default();
            let value = it.next().unwrap_or_default();
            (decode(key), decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_port() {
        assert_eq!(
            parse_form(b"grant_type=a%3Ab&x=1+2&empty"),
            vec![
                ("grant_type".to_owned(), "a:b".to_owned()),
                ("x".to_owned(), "1 2".to_owned()),
                ("empty".to_owned(), String::new()),
            ]
        );
        assert_eq!(strip_port("acme.my.salesforce.com:8443"), "acme.my.salesforce.com");
        assert_eq!(strip_port("login.salesforce.com"), "login.salesforce.com");
        assert_eq!(strip_port("[::1]:443"), "[::1]");
    }
}
