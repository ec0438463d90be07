//! Host routing and the three endpoints: OAuth token (JWT bearer), SOAP `login()` and the
//! REST version resources. Every check mirrors Salesforce's observed wire behaviour; see
//! `/work/shared/reference/salesforce-login-facts.md` for sources.

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, HeaderValue};
use axum::http::{Method, Response, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use x509_cert::Certificate;
use x509_cert::der::DecodePem;

use crate::model::{DEFAULT_API_VERSIONS, Org, random_alnum};
use crate::server::{Req, Session, State};
use crate::soap;

const JSON: &str = "application/json;charset=UTF-8";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// OID of `rsaEncryption`.
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// Which kind of host a request was addressed to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HostKind<'a> {
    /// `login.salesforce.com`: production orgs.
    Login,
    /// `test.salesforce.com`: sandboxes.
    Test,
    /// `{my_domain}.my.salesforce.com`: exactly that org.
    MyDomain(&'a Org),
}

impl HostKind<'_> {
    /// Whether a user of `org` may log in through this host.
    pub(crate) fn serves(&self, org: &Org) -> bool {
        match self {
            HostKind::Login => !org.sandbox,
            HostKind::Test => org.sandbox,
            HostKind::MyDomain(o) => o.org_id == org.org_id,
        }
    }
}

pub(crate) fn classify<'a>(state: &'a State, host: &str) -> Option<HostKind<'a>> {
    match host {
        "login.salesforce.com" => Some(HostKind::Login),
        "test.salesforce.com" => Some(HostKind::Test),
        _ => {
            let label = host.strip_suffix(".my.salesforce.com")?;
            state.orgs.iter().find(|o| o.my_domain.eq_ignore_ascii_case(label)).map(HostKind::MyDomain)
        }
    }
}

/// Routes one request. Runs with the state locked; must not block.
pub(crate) fn route(state: &mut State, req: &Req) -> Response<Body> {
    let Some(kind) = classify(state, &req.host) else {
        return text(
            StatusCode::NOT_FOUND,
            &format!("Not Found: the fake Salesforce serves no host named '{}'", req.host),
        );
    };
    let org_id = match kind {
        HostKind::MyDomain(org) => Some(org.org_id.clone()),
        _ => None,
    };
    let path = req.path.as_str();

    if path == "/services/oauth2/token" && req.method == Method::POST {
        return token(state, &req.host, req);
    }
    if let Some(ver) = path.strip_prefix("/services/Soap/u/")
        && req.method == Method::POST
    {
        return soap::login(state, &req.host, ver.trim_end_matches('/'), &req.body);
    }
    if (path == "/services/data" || path == "/services/data/") && req.method == Method::GET {
        let versions = match &org_id {
            Some(id) => state.org(id).map_or(DEFAULT_API_VERSIONS, |o| o.api_versions.clone()),
            None => DEFAULT_API_VERSIONS,
        };
        return versions_list(versions);
    }
    if let Some(rest) = path.strip_prefix("/services/data/v")
        && req.method == Method::GET
    {
        return rest_version(state, org_id.as_deref(), rest, req);
    }
    not_found_json()
}

// ---------------------------------------------------------------------------------------------
// Responses

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: &str) -> Response<Body> {
    with_type(status, "text/plain;charset=UTF-8", body.to_owned())
}

pub(crate) fn with_type(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    with_type(status, JSON, value.to_string())
}

/// What `fail_next` answers: the status with a short HTML body, like a load balancer would.
pub(crate) fn injected_failure(status: u16) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<html><head><title>{code} {reason}</title></head><body><h1>{reason}</h1></body></html>",
        code = status.as_u16()
    );
    with_type(status, "text/html;charset=UTF-8", body)
}

/// What `oversize_next` answers: a 200 whose body (2 MiB) is larger than any client
/// should accept from Salesforce.
pub(crate) fn oversized_answer() -> Response<Body> {
    with_type(StatusCode::OK, "application/json", format!("{{\"padding\":\"{}\"}}", "x".repeat(2 << 20)))
}

fn oauth_error(error: &str, description: &str) -> Response<Body> {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": error, "error_description": description}))
}

fn rest_error(status: StatusCode, error_code: &str, message: &str) -> Response<Body> {
    json_response(status, &json!([{"message": message, "errorCode": error_code}]))
}

fn invalid_session() -> Response<Body> {
    rest_error(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid")
}

fn not_found_json() -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
    )
}

/// Issues a new session for `org` and remembers it.
pub(crate) fn issue_session(state: &mut State, org: &Org, marker: &str, password_expired: bool) -> String {
    let token = format!("{}!{marker}{}", org.org_id15(), random_alnum(96));
    state.sessions.insert(token.clone(), Session { org_id: org.org_id.clone(), password_expired });
    state.issued_tokens += 1;
    token
}

// ---------------------------------------------------------------------------------------------
// OAuth token endpoint (JWT bearer)

/// Splits and decodes a compact JWT without verifying it: `(header, claims)`.
pub(crate) fn decode_jwt_unverified(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.trim().split('.');
    let (h, c, _sig, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next());
    if rest.is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    (header.is_object() && claims.is_object()).then_some((header, claims))
}

/// The app certificate's RSA public key as a jsonwebtoken key. `None` if the PEM is not an
/// RSA certificate. The certificate's validity period is deliberately ignored: Salesforce does
/// not enforce JWT certificate expiry, so the client must check it locally.
fn decoding_key(certificate_pem: &str) -> Option<DecodingKey> {
    let cert = Certificate::from_pem(certificate_pem.trim().as_bytes()).ok()?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid.to_string() != RSA_ENCRYPTION_OID {
        return None;
    }
    // For rsaEncryption the BIT STRING holds a PKCS#1 RSAPublicKey, which is what
    // `from_rsa_der` expects.
    Some(DecodingKey::from_rsa_der(spki.subject_public_key.raw_bytes()))
}

fn exp_seconds(claims: &Value) -> Option<f64> {
    match claims.get("exp")? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

fn token(state: &mut State, host: &str, req: &Req) -> Response<Body> {
    const NOT_APPROVED: &str = "user hasn't approved this consumer";

    if req.form_value("grant_type") != Some(JWT_BEARER) {
        return oauth_error("unsupported_grant_type", "grant type not supported");
    }
    let Some(assertion) = req.form_value("assertion") else {
        return oauth_error("invalid_grant", "invalid assertion");
    };
    let Some((header, claims)) = decode_jwt_unverified(assertion) else {
        return oauth_error("invalid_grant", "invalid assertion");
    };
    let Some(app) =
        claims.get("iss").and_then(Value::as_str).and_then(|iss| state.apps.iter().find(|a| a.consumer_key == iss))
    else {
        return oauth_error("invalid_client_id", "client identifier invalid");
    };
    // Unknown users are indistinguishable from unapproved ones.
    let Some(user) = claims.get("sub").and_then(Value::as_str).and_then(|sub| state.user(sub)) else {
        return oauth_error("invalid_grant", NOT_APPROVED);
    };
    let Some(org) = state.org(&user.org_id) else {
        return oauth_error("invalid_grant", NOT_APPROVED);
    };
    let kind = classify(state, host);
    let host_org_differs = matches!(kind, Some(HostKind::MyDomain(h)) if h.org_id != app.org_id);
    if app.org_id != user.org_id || host_org_differs {
        return oauth_error("app_not_found", "External client app is not installed in this org");
    }

    let signature_ok = header.get("alg").and_then(Value::as_str) == Some("RS256")
        && decoding_key(&app.certificate_pem).is_some_and(|key| {
            let mut validation = Validation::new(Algorithm::RS256);
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.validate_aud = false;
            validation.required_spec_claims.clear();
            jsonwebtoken::decode::<Value>(assertion.trim(), &key, &validation).is_ok()
        });
    if !signature_ok {
        return oauth_error("invalid_grant", "invalid assertion");
    }

    let audience_ok = claims.get("aud").and_then(Value::as_str).is_some_and(|aud| {
        // Exact match (no trailing slash): the documented values are bare origins.
        aud == org.login_url() || aud.eq_ignore_ascii_case(&org.instance_url())
    });
    if !audience_ok {
        return oauth_error("invalid_grant", "audience is invalid");
    }
    // A sandbox user via login.salesforce.com (or production via test) looks like this.
    let wrong_generic_host = match kind {
        Some(HostKind::Login) => org.sandbox,
        Some(HostKind::Test) => !org.sandbox,
        _ => false,
    };
    if wrong_generic_host {
        return oauth_error("invalid_grant", NOT_APPROVED);
    }

    // Far-future values (sfdx-core sends milliseconds) are accepted, as Salesforce does.
    match exp_seconds(&claims) {
        Some(exp) if exp >= state.now_secs().floor() => {}
        _ => return oauth_error("invalid_grant", "expired authorization code"),
    }
    if !user.active {
        return oauth_error("invalid_grant", "inactive user");
    }
    let pre_authorized = app.pre_authorized.iter().any(|u| u.eq_ignore_ascii_case(&user.username));
    if !app.jwt_enabled || !pre_authorized {
        return oauth_error("invalid_grant", NOT_APPROVED);
    }

    let org = org.clone();
    let user_id = user.user_id.clone();
    let issued_at = state.now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let access_token = issue_session(state, &org, "AR", false);
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "scope": "api",
            "instance_url": state.tampered_instance_url.clone().unwrap_or_else(|| org.instance_url()),
            "id": format!("{}/id/{}/{}", org.login_url(), org.org_id, user_id),
            "token_type": "Bearer",
            "issued_at": issued_at.to_string(),
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// REST

/// Release name for an API major version (v62 = Winter '25, three releases a year).
fn release_label(version: u32) -> String {
    let offset = i64::from(version) - 62;
    let season = ["Winter", "Spring", "Summer"][offset.rem_euclid(3) as usize];
    let year = 25 + offset.div_euclid(3);
    format!("{season} '{year:02}")
}

fn versions_list(versions: std::ops::RangeInclusive<u32>) -> Response<Body> {
    let list: Vec<Value> = versions
        .map(|v| {
            json!({
                "label": release_label(v),
                "url": format!("/services/data/v{v}.0"),
                "version": format!("{v}.0"),
            })
        })
        .collect();
    json_response(StatusCode::OK, &Value::Array(list))
}

fn bearer_token(req: &Req) -> Option<&str> {
    let auth = req.header("authorization")?.trim();
    let (scheme, token) = auth.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")).then(|| token.trim())
}

/// `GET /services/data/v{rest}`: `rest` is e.g. `60.0` or `60.0/sobjects`.
fn rest_version(state: &State, host_org: Option<&str>, rest: &str, req: &Req) -> Response<Body> {
    let Some(session) = bearer_token(req).and_then(|t| state.sessions.get(t)) else {
        return invalid_session();
    };
    // Sessions are only valid on their own org's My Domain host.
    if host_org != Some(session.org_id.as_str()) {
        return invalid_session();
    }
    if session.password_expired {
        // Status 401 is an assumption [unverified]; the body is Salesforce's documented text.
        return rest_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_OPERATION_WITH_EXPIRED_PASSWORD",
            "The users password has expired, you must call SetPassword before attempting any other API operations",
        );
    }
    let (version, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let major = version.strip_suffix(".0").and_then(|m| m.parse::<u32>().ok());
    let offered = state.org(&session.org_id).map_or(DEFAULT_API_VERSIONS, |o| o.api_versions.clone());
    match major {
        Some(v) if offered.contains(&v) && tail.is_empty() => {
            let base = format!("/services/data/v{v}.0");
            let resources = [
                "tooling",
                "metadata",
                "eclair",
                "folders",
                "prechatForms",
                "chatter",
                "tabs",
                "appMenu",
                "quickActions",
                "queryAll",
                "commerce",
                "wave",
                "search",
                "identity",
                "composite",
                "parameterizedSearch",
                "theme",
                "nouns",
                "recent",
                "licensing",
                "limits",
                "async-queries",
                "query",
                "sobjects",
                "actions",
                "support",
            ];
            let map: serde_json::Map<String, Value> = resources
                .iter()
                .map(|r| {
                    let url = if *r == "identity" {
                        format!("https://{}/id/{}", req.host, session.org_id)
                    } else {
                        format!("{base}/{r}")
                    };
                    ((*r).to_owned(), Value::String(url))
                })
                .collect();
            json_response(StatusCode::OK, &Value::Object(map))
        }
        _ => not_found_json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(release_label(62), "Winter '25");
        assert_eq!(release_label(31), "Summer '14");
        assert_eq!(release_label(66), "Spring '26");
    }

    #[test]
    fn exp_forms() {
        assert_eq!(exp_seconds(&json!({"exp": 5})), Some(5.0));
        assert_eq!(exp_seconds(&json!({"exp": "17"})), Some(17.0));
        assert_eq!(exp_seconds(&json!({"exp": "x"})), None);
        assert_eq!(exp_seconds(&json!({})), None);
    }
}
