//! End-to-end tests over real TLS with reqwest (blocking), trusting only the fake's test CA.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::{App, FakeSalesforce, Org, TestKeyPair, User};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const HOSTS: [&str; 6] = [
    "login.salesforce.com",
    "test.salesforce.com",
    "acme.my.salesforce.com",
    "acme--partial.sandbox.my.salesforce.com",
    "globex.my.salesforce.com",
    "nowhere.salesforce.com",
];

fn client_with_timeout(fake: &FakeSalesforce, timeout: Duration) -> Client {
    let ca = reqwest::Certificate::from_pem(fake.ca_pem().as_bytes()).unwrap();
    let mut builder = Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca).timeout(timeout);
    for host in HOSTS {
        builder = builder.resolve(host, fake.addr());
    }
    builder.build().unwrap()
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A key whose certificate expired last year (Salesforce, and so the fake, still accept it).
fn expired_key() -> &'static TestKeyPair {
    static KEY: OnceLock<TestKeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc();
        TestKeyPair::generate_with_validity(now - time::Duration::days(800), now - time::Duration::days(400))
    })
}

/// A populated fake: production org `acme` (with JWT app), sandbox `acme--partial` (with its
/// own app), and a second production org `globex`.
struct World {
    fake: FakeSalesforce,
    client: Client,
    acme: Org,
    partial: Org,
    globex: Org,
    user: User,
    sb_user: User,
    globex_user: User,
    key: String,
    sb_key: String,
    globex_key: String,
}

impl World {
    fn new() -> World {
        let fake = FakeSalesforce::start();
        let acme = Org::production("acme").with_name("Acme & Sons <Ltd>");
        let partial = Org::sandbox("acme--partial");
        let globex = Org::production("globex");
        let user = User::new("etl@acme.com", &acme);
        let sb_user = User::new("etl@acme.com.partial", &partial);
        let globex_user = User::new("etl@globex.com", &globex);
        let cert = TestKeyPair::shared().certificate_pem.clone();
        let key = App::random_consumer_key();
        let sb_key = App::random_consumer_key();
        let globex_key = App::random_consumer_key();
        fake.add_app(App::new(key.clone(), &acme, cert.clone()).pre_authorize("ETL@acme.com"));
        fake.add_app(App::new(sb_key.clone(), &partial, cert.clone()).pre_authorize(&sb_user.username));
        fake.add_app(App::new(globex_key.clone(), &globex, cert).pre_authorize(&globex_user.username));
        for org in [&acme, &partial, &globex] {
            fake.add_org(org.clone());
        }
        for u in [&user, &sb_user, &globex_user] {
            fake.add_user(u.clone());
        }
        let client = client_with_timeout(&fake, Duration::from_secs(10));
        World { fake, client, acme, partial, globex, user, sb_user, globex_user, key, sb_key, globex_key }
    }

    fn claims(&self, sub: &str, aud: &str) -> Value {
        json!({"iss": self.key, "sub": sub, "aud": aud, "exp": now_secs() + 180})
    }

    fn post_token_form(&self, host: &str, form: &[(&str, &str)]) -> (u16, String, Value) {
        let resp = self.client.post(format!("https://{host}/services/oauth2/token")).form(form).send().unwrap();
        let status = resp.status().as_u16();
        let ct = content_type(&resp);
        let body: Value = resp.json().unwrap();
        (status, ct, body)
    }

    fn token(&self, host: &str, claims: &Value) -> (u16, Value) {
        self.token_signed(host, &TestKeyPair::shared().sign(claims))
    }

    fn token_signed(&self, host: &str, assertion: &str) -> (u16, Value) {
        let (status, ct, body) = self.post_token_form(host, &[("grant_type", JWT_BEARER), ("assertion", assertion)]);
        assert_eq!(ct, "application/json;charset=UTF-8");
        (status, body)
    }

    fn soap(&self, host: &str, version: &str, username: &str, password: &str) -> (u16, String, String) {
        let envelope = format!(
            r#"<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><env:Header><urn:CallOptions><urn:client>slam-test</urn:client></urn:CallOptions></env:Header><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>{}</n1:username><n1:password>{}</n1:password></n1:login></env:Body></env:Envelope>"#,
            xml_escape(username),
            xml_escape(password)
        );
        let resp = self
            .client
            .post(format!("https://{host}/services/Soap/u/{version}"))
            .header("Content-Type", "text/xml")
            .header("SOAPAction", "login")
            .body(envelope)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let ct = content_type(&resp);
        (status, ct, resp.text().unwrap())
    }

    fn rest(&self, host: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(format!("https://{host}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap())
    }
}

fn content_type(resp: &Response) -> String {
    resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn oauth_err(error: &str, description: &str) -> (u16, Value) {
    (400, json!({"error": error, "error_description": description}))
}

fn between<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    &xml[start..end]
}

// ---------------------------------------------------------------------------------------------
// JWT bearer

#[test]
fn jwt_success_over_verified_tls() {
    let w = World::new();
    let resp = w
        .client
        .post("https://login.salesforce.com/services/oauth2/token")
        .form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", &TestKeyPair::shared().sign(&w.claims("etl@acme.com", "https://login.salesforce.com"))),
        ])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(content_type(&resp), "application/json;charset=UTF-8");
    let date = resp.headers().get("date").unwrap().to_str().unwrap().to_owned();
    let date = httpdate::parse_http_date(&date).unwrap();
    assert!(date.elapsed().unwrap_or_default() < Duration::from_secs(60));
    let body: Value = resp.json().unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with(&format!("{}!AR", &w.acme.org_id[..15])), "{token}");
    assert_eq!(body["scope"], "api");
    assert_eq!(body["instance_url"], "https://acme.my.salesforce.com");
    assert_eq!(body["id"], format!("https://login.salesforce.com/id/{}/{}", w.acme.org_id, w.user.user_id));
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["issued_at"].as_str().unwrap().parse::<u64>().unwrap() > 1_600_000_000_000);
    assert!(body.get("refresh_token").is_none() && body.get("expires_in").is_none());
    assert_eq!(w.fake.issued_tokens(), 1);

    // The token works on the org's own host.
    let (status, _) = w.rest("acme.my.salesforce.com", "/services/data/v60.0", Some(token));
    assert_eq!(status, 200);
}

#[test]
fn jwt_accepted_variants() {
    let w = World::new();
    let now = now_secs();
    // My Domain host with the My Domain URL as aud, a string exp.
    let mut c = w.claims("etl@acme.com", "https://acme.my.salesforce.com");
    c["exp"] = json!((now + 180).to_string());
    assert_eq!(w.token("acme.my.salesforce.com", &c).0, 200);
    // My Domain host with aud login; far-future exp in milliseconds (sfdx-core).
    let mut c = w.claims("etl@acme.com", "https://login.salesforce.com");
    c["exp"] = json!(now * 1000 + 300);
    assert_eq!(w.token("acme.my.salesforce.com", &c).0, 200);
    // Sandbox via test.salesforce.com: id uses the test host.
    let c = json!({"iss": w.sb_key, "sub": w.sb_user.username, "aud": "https://test.salesforce.com", "exp": now + 60});
    let (status, body) = w.token("test.salesforce.com", &c);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instance_url"], "https://acme--partial.sandbox.my.salesforce.com");
    assert!(body["id"].as_str().unwrap().starts_with("https://test.salesforce.com/id/"));
    // Sandbox My Domain host with its own URL as aud.
    let c = json!({"iss": w.sb_key, "sub": w.sb_user.username, "aud": w.partial.instance_url(), "exp": now + 60});
    assert_eq!(w.token("acme--partial.sandbox.my.salesforce.com", &c).0, 200);
    // An expired app certificate is not enforced (like Salesforce).
    w.fake.add_app(
        App::new("expired-cert-app", &w.acme, expired_key().certificate_pem.clone()).pre_authorize("etl@acme.com"),
    );
    let c = json!({"iss": "expired-cert-app", "sub": "etl@acme.com", "aud": "https://login.salesforce.com", "exp": now + 60});
    assert_eq!(w.token_signed("login.salesforce.com", &expired_key().sign(&c)).0, 200);
    // A clock skewed into the past makes an "already expired" exp acceptable.
    w.fake.set_clock_offset(-3600);
    let mut c = w.claims("etl@acme.com", "https://login.salesforce.com");
    c["exp"] = json!(now - 600);
    assert_eq!(w.token("login.salesforce.com", &c).0, 200);
    assert_eq!(w.fake.issued_tokens(), 6);
}

#[test]
fn jwt_errors_in_order() {
    let w = World::new();
    let login = "login.salesforce.com";
    let aud = "https://login.salesforce.com";
    let good = TestKeyPair::shared().sign(&w.claims("etl@acme.com", aud));

    // grant_type
    let (s, ct, b) = w.post_token_form(login, &[("grant_type", "password"), ("assertion", &good)]);
    assert_eq!((s, b), oauth_err("unsupported_grant_type", "grant type not supported"));
    assert_eq!(ct, "application/json;charset=UTF-8");
    let (s, _, b) = w.post_token_form(login, &[("assertion", &good)]);
    assert_eq!((s, b), oauth_err("unsupported_grant_type", "grant type not supported"));

    // Not a JWT (e.g. the raw private key pasted as the assertion).
    let invalid_assertion = oauth_err("invalid_grant", "invalid assertion");
    assert_eq!(w.token_signed(login, &TestKeyPair::shared().private_key_pem), invalid_assertion);
    assert_eq!(w.token_signed(login, "a.b.c"), invalid_assertion);
    let (s, _, b) = w.post_token_form(login, &[("grant_type", JWT_BEARER)]);
    assert_eq!((s, b), invalid_assertion);

    // Unknown consumer key.
    let mut c = w.claims("etl@acme.com", aud);
    c["iss"] = json!("3MVG9unknown");
    assert_eq!(w.token(login, &c), oauth_err("invalid_client_id", "client identifier invalid"));

    // Unknown user looks like an unapproved one.
    let not_approved = oauth_err("invalid_grant", "user hasn't approved this consumer");
    assert_eq!(w.token(login, &w.claims("nobody@acme.com", aud)), not_approved);

    // App of another org / POSTed to another org's My Domain.
    let app_not_found = oauth_err("app_not_found", "External client app is not installed in this org");
    assert_eq!(w.token(login, &w.claims(&w.globex_user.username, aud)), app_not_found);
    assert_eq!(w.token("globex.my.salesforce.com", &w.claims("etl@acme.com", aud)), app_not_found);
    let c = json!({"iss": w.globex_key, "sub": "etl@acme.com", "aud": aud, "exp": now_secs() + 60});
    assert_eq!(w.token(login, &c), app_not_found);

    // Signature: tampered payload, wrong algorithm.
    let other = TestKeyPair::shared().sign(&w.claims("etl@acme.com", "https://evil.example"));
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[1] = other.split('.').nth(1).unwrap();
    assert_eq!(w.token_signed(login, &parts.join(".")), invalid_assertion);
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &w.claims("etl@acme.com", aud),
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert_eq!(w.token_signed(login, &hs), invalid_assertion);
    // A key whose certificate belongs to a different app.
    let c = json!({"iss": w.key, "sub": "etl@acme.com", "aud": aud, "exp": now_secs() + 60});
    assert_eq!(w.token_signed(login, &expired_key().sign(&c)), invalid_assertion);

    // Audience.
    let bad_aud = oauth_err("invalid_grant", "audience is invalid");
    for bad in [
        json!("login.salesforce.com"),
        json!("https://login.salesforce.com/"),
        json!([aud]),
        json!("https://test.salesforce.com"),
        json!("https://globex.my.salesforce.com"),
    ] {
        let mut c = w.claims("etl@acme.com", aud);
        c["aud"] = bad;
        assert_eq!(w.token(login, &c), bad_aud);
    }
    let mut c = w.claims("etl@acme.com", aud);
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(w.token(login, &c), bad_aud);
    // Sandbox user through login / production user through test.
    let c = json!({"iss": w.sb_key, "sub": w.sb_user.username, "aud": "https://test.salesforce.com", "exp": now_secs() + 60});
    assert_eq!(w.token(login, &c), not_approved);
    assert_eq!(w.token("test.salesforce.com", &w.claims("etl@acme.com", aud)), not_approved);

    // exp: past, missing, garbage, and past by the fake's skewed clock.
    let expired = oauth_err("invalid_grant", "expired authorization code");
    let mut c = w.claims("etl@acme.com", aud);
    c["exp"] = json!(now_secs() - 10);
    assert_eq!(w.token(login, &c), expired);
    c["exp"] = json!("soon");
    assert_eq!(w.token(login, &c), expired);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(w.token(login, &c), expired);
    w.fake.set_clock_offset(600);
    assert_eq!(w.token(login, &w.claims("etl@acme.com", aud)), expired);
    w.fake.set_clock_offset(0);

    // Inactive user.
    w.fake.add_user(w.user.clone().with_active(false));
    assert_eq!(w.token(login, &w.claims("etl@acme.com", aud)), oauth_err("invalid_grant", "inactive user"));
    w.fake.add_user(w.user.clone());

    // Not pre-authorized / JWT disabled.
    let other_user = User::new("other@acme.com", &w.acme);
    w.fake.add_user(other_user);
    assert_eq!(w.token(login, &w.claims("other@acme.com", aud)), not_approved);
    let cert = TestKeyPair::shared().certificate_pem.clone();
    w.fake.add_app(App::new(w.key.clone(), &w.acme, cert).pre_authorize("etl@acme.com").with_jwt_enabled(false));
    assert_eq!(w.token(login, &w.claims("etl@acme.com", aud)), not_approved);

    assert_eq!(w.fake.issued_tokens(), 0);
}

// ---------------------------------------------------------------------------------------------
// SOAP login()

#[test]
fn soap_success_with_hostile_password() {
    let w = World::new();
    let password = r#"p&ss<wo>rd"'é€ 😀"#;
    let user = w.user.clone().with_password(password).with_full_name("Zoë O'Brien <ETL>");
    w.fake.add_user(user.clone());
    let (status, ct, xml) = w.soap("login.salesforce.com", "60.0", "etl@acme.com", &user.soap_password());
    assert_eq!(status, 200, "{xml}");
    assert_eq!(ct, "text/xml;charset=UTF-8");
    assert!(xml.contains(r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>"#));
    let org15 = &w.acme.org_id[..15];
    assert_eq!(between(&xml, "serverUrl"), format!("https://acme.my.salesforce.com/services/Soap/u/60.0/{org15}"));
    assert_eq!(
        between(&xml, "metadataServerUrl"),
        format!("https://acme.my.salesforce.com/services/Soap/m/60.0/{org15}")
    );
    assert_eq!(between(&xml, "passwordExpired"), "false");
    assert_eq!(between(&xml, "sandbox"), "false");
    assert_eq!(between(&xml, "userId"), w.user.user_id);
    assert_eq!(between(&xml, "organizationId"), w.acme.org_id);
    assert_eq!(between(&xml, "organizationName"), "Acme &amp; Sons &lt;Ltd&gt;");
    assert_eq!(between(&xml, "userFullName"), "Zoë O&apos;Brien &lt;ETL&gt;");
    assert_eq!(between(&xml, "userName"), "etl@acme.com");
    assert_eq!(between(&xml, "sessionSecondsValid"), "7200");
    let session = between(&xml, "sessionId");
    assert!(session.starts_with(&format!("{org15}!")));
    assert_eq!(w.fake.issued_tokens(), 1);
    let (status, body) = w.rest("acme.my.salesforce.com", "/services/data/v60.0", Some(session));
    assert_eq!(status, 200, "{body}");

    // Trusted-network user without a token; sandbox through test.salesforce.com.
    w.fake.add_user(w.sb_user.clone().with_security_token(""));
    let (status, _, xml) = w.soap("test.salesforce.com", "64.0", &w.sb_user.username, &w.sb_user.password);
    assert_eq!(status, 200, "{xml}");
    assert_eq!(between(&xml, "sandbox"), "true");
    assert!(
        between(&xml, "serverUrl").starts_with("https://acme--partial.sandbox.my.salesforce.com/services/Soap/u/64.0/")
    );
}

fn expect_fault(reply: (u16, String, String), code: &str, message: &str, detail: &str) {
    let (status, ct, xml) = reply;
    assert_eq!(status, 500, "{xml}");
    assert_eq!(ct, "text/xml;charset=UTF-8");
    let message = xml_escape(message);
    let expected = format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail><sf:{detail} xsi:type="sf:{detail}"><sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{message}</sf:exceptionMessage></sf:{detail}></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
    );
    assert!(xml.ends_with(&expected), "got:\n{xml}\nexpected:\n{expected}");
}

#[test]
fn soap_faults() {
    let w = World::new();
    let login = "login.salesforce.com";
    let good = w.user.soap_password();
    const INVALID: &str = "Invalid username, password, security token; or user locked out.";

    // The exact sample from the facts file.
    let (_, _, xml) = w.soap(login, "60.0", "nobody@acme.com", "x");
    assert!(xml.ends_with(r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#));

    expect_fault(
        w.soap(login, "30.0", "etl@acme.com", &good),
        "UNSUPPORTED_API_VERSION",
        "Invalid Api version specified on URL",
        "LoginFault",
    );
    expect_fault(
        w.soap(login, "65.0", "etl@acme.com", &good),
        "INVALID_OPERATION",
        "The SOAP Login operation is not available in the API version specified (65.0). Refer to the documentation for supported versions.",
        "UnexpectedErrorFault",
    );
    expect_fault(w.soap(login, "60.0", "etl@acme.com", "wrong"), "INVALID_LOGIN", INVALID, "LoginFault");
    // Production user through test.salesforce.com / another org's My Domain.
    expect_fault(w.soap("test.salesforce.com", "60.0", "etl@acme.com", &good), "INVALID_LOGIN", INVALID, "LoginFault");
    expect_fault(
        w.soap("globex.my.salesforce.com", "60.0", "etl@acme.com", &good),
        "INVALID_LOGIN",
        INVALID,
        "LoginFault",
    );
    expect_fault(
        w.soap(login, "60.0", "etl@acme.com", &w.user.password),
        "LOGIN_MUST_USE_SECURITY_TOKEN",
        "Invalid username, password, security token; or user locked out. Are you at a new location? When accessing Salesforce--either via a desktop client or the API--from outside of your company's trusted networks, you must add a security token to your password to log in. To get your new security token, log in to Salesforce. From your personal settings, enter Reset My Security Token in the Quick Find box, then select Reset My Security Token.",
        "LoginFault",
    );

    w.fake.add_org(w.acme.clone().with_soap_login_enabled(false));
    expect_fault(
        w.soap(login, "60.0", "etl@acme.com", &good),
        "INVALID_OPERATION",
        "SOAP API login() is disabled by default in this org. Contact the org administrator to enable SOAP API login().",
        "UnexpectedErrorFault",
    );
    w.fake.add_org(w.acme.clone());

    w.fake.add_user(w.user.clone().with_active(false));
    expect_fault(w.soap(login, "60.0", "etl@acme.com", &good), "INVALID_LOGIN", INVALID, "LoginFault");
    w.fake.add_user(w.user.clone().with_api_enabled(false));
    expect_fault(
        w.soap(login, "60.0", "etl@acme.com", &good),
        "API_DISABLED_FOR_ORG",
        "API is not enabled for this Organization or Partner",
        "LoginFault",
    );
    w.fake.add_user(w.user.clone());

    w.fake.add_org(w.acme.clone().with_require_use_any_api_auth(true));
    expect_fault(
        w.soap(login, "60.0", "etl@acme.com", &good),
        "INSUFFICIENT_ACCESS",
        "The user doesn't have the Use Any API Auth permission required to call SOAP API login().",
        "LoginFault",
    );
    w.fake.add_user(w.user.clone().with_use_any_api_auth(true));
    assert_eq!(w.soap(login, "60.0", "etl@acme.com", &good).0, 200);

    w.fake.set_login_rate_limit(2);
    assert_eq!(w.soap(login, "60.0", "etl@acme.com", &good).0, 200);
    expect_fault(
        w.soap(login, "60.0", "etl@acme.com", &good),
        "LOGIN_RATE_EXCEEDED",
        "Login Rate Exceeded",
        "LoginFault",
    );
    assert_eq!(w.fake.issued_tokens(), 2);

    // Not a login envelope at all.
    let resp = w
        .client
        .post("https://login.salesforce.com/services/Soap/u/60.0")
        .header("Content-Type", "text/xml")
        .body("<nonsense/>")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    assert!(resp.text().unwrap().contains("<faultcode>soapenv:Client</faultcode>"));
}

#[test]
fn soap_expired_password_session_is_restricted() {
    let w = World::new();
    w.fake.add_user(w.user.clone().with_password_expired(true));
    let (status, _, xml) = w.soap("acme.my.salesforce.com", "59.0", "etl@acme.com", &w.user.soap_password());
    assert_eq!(status, 200, "{xml}");
    assert_eq!(between(&xml, "passwordExpired"), "true");
    let (status, body) = w.rest("acme.my.salesforce.com", "/services/data/v59.0", Some(between(&xml, "sessionId")));
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!([{"message": "The users password has expired, you must call SetPassword before attempting any other API operations", "errorCode": "INVALID_OPERATION_WITH_EXPIRED_PASSWORD"}])
    );
}

// ---------------------------------------------------------------------------------------------
// REST

#[test]
fn rest_versions_and_session_checks() {
    let w = World::new();
    w.fake.add_org(w.acme.clone().with_api_versions(40..=62));
    let (status, list) = w.rest("acme.my.salesforce.com", "/services/data/", None);
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 23);
    assert_eq!(list.last().unwrap(), &json!({"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"}));

    let (_, body) = w.token("login.salesforce.com", &w.claims("etl@acme.com", "https://login.salesforce.com"));
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = w.rest("acme.my.salesforce.com", "/services/data/v62.0", Some(&token));
    assert_eq!(status, 200);
    assert_eq!(body["sobjects"], "/services/data/v62.0/sobjects");
    assert_eq!(body["query"], "/services/data/v62.0/query");

    let invalid = json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
    assert_eq!(w.rest("acme.my.salesforce.com", "/services/data/v62.0", None), (401, invalid.clone()));
    assert_eq!(
        w.rest("acme.my.salesforce.com", "/services/data/v62.0", Some("00Dbogus!ARxyz")),
        (401, invalid.clone())
    );
    // Only valid on the org's own host.
    assert_eq!(w.rest(&w.globex.host(), "/services/data/v62.0", Some(&token)), (401, invalid.clone()));
    assert_eq!(w.rest("login.salesforce.com", "/services/data/v62.0", Some(&token)), (401, invalid.clone()));

    let not_found = json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]);
    assert_eq!(w.rest("acme.my.salesforce.com", "/services/data/v63.0", Some(&token)), (404, not_found.clone()));
    assert_eq!(w.rest("acme.my.salesforce.com", "/services/data/v39.0", Some(&token)), (404, not_found));

    w.fake.revoke_all_tokens();
    assert_eq!(w.rest("acme.my.salesforce.com", "/services/data/v62.0", Some(&token)), (401, invalid));
}

// ---------------------------------------------------------------------------------------------
// Plumbing: hosts, TLS, injection, recording, panics

#[test]
fn unknown_host_is_plain_404() {
    let w = World::new();
    let resp = w.client.get("https://nowhere.salesforce.com/services/data/").send().unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert!(content_type(&resp).starts_with("text/plain"));
}

#[test]
fn untrusted_client_fails_tls() {
    let fake = FakeSalesforce::start();
    let client = Client::builder()
        .tls_built_in_root_certs(false)
        .resolve("login.salesforce.com", fake.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let err = client.get("https://login.salesforce.com/services/data/").send().unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    assert!(fake.requests().is_empty());
}

#[test]
fn fail_next_latency_and_date() {
    let w = World::new();
    w.fake.fail_next(2, 503);
    for _ in 0..2 {
        let resp = w.client.get("https://acme.my.salesforce.com/services/data/").send().unwrap();
        assert_eq!(resp.status().as_u16(), 503);
        assert!(content_type(&resp).starts_with("text/html"));
        assert!(resp.headers().contains_key("date"));
        assert!(resp.text().unwrap().contains("Service Unavailable"));
    }
    let resp = w.client.get("https://acme.my.salesforce.com/services/data/").send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(w.fake.requests().len(), 3);

    w.fake.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(w.rest("acme.my.salesforce.com", "/services/data/", None).0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    w.fake.set_latency(Duration::ZERO);

    w.fake.set_clock_offset(-7200);
    let resp = w.client.get("https://acme.my.salesforce.com/services/data/").send().unwrap();
    let date = httpdate::parse_http_date(resp.headers()["date"].to_str().unwrap()).unwrap();
    let skew = SystemTime::now().duration_since(date).unwrap().as_secs();
    assert!((7190..=7210).contains(&skew), "{skew}");
}

#[test]
fn hang_until_released() {
    let w = World::new();
    let impatient = client_with_timeout(&w.fake, Duration::from_millis(300));
    w.fake.hang(true);
    let err = impatient.get("https://login.salesforce.com/services/data/").send().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(w.fake.requests().len(), 1, "the hung request is still recorded");
    w.fake.hang(false);
    assert_eq!(w.rest("login.salesforce.com", "/services/data/", None).0, 200);
    // Dropping while a request hangs must not block.
    w.fake.hang(true);
    let _ = impatient.get("https://login.salesforce.com/services/data/").send();
}

#[test]
fn requests_are_recorded() {
    let w = World::new();
    w.fake.fail_next(1, 502);
    let claims = w.claims("etl@acme.com", "https://login.salesforce.com");
    let assertion = TestKeyPair::shared().sign(&claims);
    let resp = w
        .client
        .post("https://login.salesforce.com/services/oauth2/token")
        .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 502);
    w.token("acme.my.salesforce.com", &claims);
    let reqs = w.fake.requests();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[1];
    assert_eq!(r.method, "POST");
    assert_eq!(r.host, "acme.my.salesforce.com");
    assert_eq!(r.path, "/services/oauth2/token");
    assert_eq!(r.header("Content-Type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(r.form_value("grant_type"), Some(JWT_BEARER));
    assert!(r.body.starts_with("grant_type=urn%3Aietf"));
    assert_eq!(r.jwt_claims.as_ref(), Some(&claims));
    assert_eq!(reqs[0].jwt_claims.as_ref(), Some(&claims));
    w.fake.clear_requests();
    assert!(w.fake.requests().is_empty());
}

#[test]
fn handler_panic_fails_the_test_on_drop() {
    let w = World::new();
    w.fake.panic_on_next_request();
    let resp = w.client.get("https://login.salesforce.com/services/data/").send().unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    assert_eq!(w.rest("login.salesforce.com", "/services/data/", None).0, 200, "still serving");
    let World { fake, .. } = w;
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(fake))).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("injected test panic"), "{msg}");
}

#[test]
fn ca_file_and_resolve_spec() {
    let fake = FakeSalesforce::start();
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_ca_file(dir.path());
    assert_eq!(path, dir.path().join("fake-salesforce-ca.pem"));
    assert_eq!(std::fs::read_to_string(path).unwrap(), fake.ca_pem());
    assert!(fake.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(fake.resolve_spec(), format!("salesforce.com=127.0.0.1:{}", fake.addr().port()));
}
