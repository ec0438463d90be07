//! `slam test-login` against the fake Salesforce: real TLS under Salesforce's host
//! names (reached through `--resolve`, trusted through `--ca-file`), real RS256
//! verification against the uploaded certificate, Salesforce's own error bodies.

use crate::support::{KEY_PASS, Run, Slam, USER, World};
use slam_testkit::{App, Org, User};
use std::time::{Duration, Instant};

impl World {
    /// `slam --format json test-login` with the fake's CA and resolve override, the
    /// key passphrase in the environment, and `args`.
    fn login(&self, args: &[&str]) -> Run {
        self.login_with_env(args, &[("SLAM_KEY_PASSWORD", KEY_PASS)])
    }

    fn login_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec!["test-login"];
        all.extend_from_slice(args);
        self.slam_json(&all, env)
    }

    /// `slam --format json --http-timeout 5 <args>` with the fake's CA and resolve
    /// override, and `env` set.
    pub(crate) fn slam_json(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec!["--format", "json", "--http-timeout", "5"];
        all.extend_from_slice(args);
        let mut cmd = self.slam.command(&all);
        cmd.arg("--ca-file").arg(&self.ca_file).arg("--resolve").arg(self.fake.resolve_spec());
        for (k, v) in env {
            cmd.env(k, v);
        }
        crate::support::run(cmd)
    }

    fn jwt(&self, domain: &str, username: &str) -> Run {
        self.jwt_with(&self.consumer_key, username, "acme-prod", &["--domain", domain])
    }

    /// A JWT login with this consumer key, user and keypair, plus `extra` flags.
    fn jwt_with(&self, consumer_key: &str, username: &str, key_name: &str, extra: &[&str]) -> Run {
        let mut args = vec!["--auth-method", "jwt_bearer", "--username", username, "--consumer-key", consumer_key];
        args.extend_from_slice(&["--key-name", key_name]);
        args.extend_from_slice(extra);
        self.login(&args)
    }

    /// Registers keypair `acme-prod`'s certificate in an app `consumer_key` of `org`,
    /// pre-authorizing `username`.
    fn register_app(&self, consumer_key: &str, org: &Org, username: &str) {
        let cert = std::fs::read_to_string(self.slam.cert_file("acme-prod")).unwrap();
        self.fake.add_app(App::new(consumer_key, org, cert).pre_authorize(username));
    }

    fn soap(&self, username: &str, password: &str, token: &str, extra: &[&str]) -> Run {
        let mut args = vec!["--username", username];
        args.extend_from_slice(extra);
        self.login_with_env(&args, &[("SLAM_PASSWORD", password), ("SLAM_TOKEN", token)])
    }

    /// The flags of the JWT connection to `acme.my` as USER with keypair `acme-prod`
    /// (its passphrase goes in SLAM_KEY_PASSWORD).
    pub(crate) fn jwt_flags(&self) -> Vec<String> {
        let flags = ["--auth-method", "jwt_bearer", "--username", USER, "--consumer-key", &self.consumer_key];
        let mut flags: Vec<String> = flags.map(str::to_string).to_vec();
        flags.extend(["--key-name", "acme-prod", "--domain", "acme.my"].map(str::to_string));
        flags
    }

    fn token_requests(&self) -> Vec<slam_testkit::RecordedRequest> {
        self.fake.requests().into_iter().filter(|r| r.path == "/services/oauth2/token").collect()
    }
}

#[test]
fn jwt_login_to_a_production_my_domain_succeeds_and_reports_the_org() {
    let w = World::new();
    let run = w.jwt("acme.my", USER).ok();
    let json = run.json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["org_id"], w.prod.org_id.as_str());
    assert_eq!(json["instance_url"], "https://acme.my.salesforce.com");
    assert_eq!(json["auth_method"], "jwt_bearer");
    assert_eq!(json["api_version"], 60);
    assert_eq!(json["api_versions_offered"], "31.0–66.0");
    assert_eq!(json["jwt_audience"], "https://login.salesforce.com");
    assert!(json["user_id"].as_str().unwrap().starts_with("005"));
    assert!(json["elapsed_ms"].as_i64().unwrap() >= 0);

    let sent = w.token_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].host, "acme.my.salesforce.com");
    assert_eq!(sent[0].form_value("grant_type"), Some("urn:ietf:params:oauth:grant-type:jwt-bearer"));
    let claims = sent[0].jwt_claims.as_ref().unwrap();
    assert_eq!(claims["iss"], w.consumer_key.as_str());
    assert_eq!(claims["sub"], USER);
    assert_eq!(claims["aud"], "https://login.salesforce.com");
    let exp = claims["exp"].as_i64().expect("exp is an integer number of seconds");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now + 120..=now + 200).contains(&exp), "exp {exp} is about now + 3 minutes ({now})");
    // The connection test made an authenticated call at the connection's version.
    let probe = w.fake.requests().into_iter().find(|r| r.path == "/services/data/v60.0").unwrap();
    assert!(probe.header("authorization").unwrap().starts_with("Bearer "));
}

#[test]
fn jwt_login_via_login_domain_and_sandbox_my_domain_use_the_right_audience() {
    let w = World::new();
    w.jwt("login", USER).ok();
    assert_eq!(w.token_requests()[0].host, "login.salesforce.com");

    // The same key registered in the sandbox's copy of the app.
    w.register_app("SANDBOXKEY", &w.sandbox, "etl@acme.com.partial");
    let run = w.jwt_with(
        "SANDBOXKEY",
        "etl@acme.com.partial",
        "acme-prod",
        &["--domain", "https://acme--partial.sandbox.my.salesforce.com/"],
    );
    let run = run.ok();
    assert!(run.stderr.contains("Using @domain = 'acme--partial.sandbox.my' (normalised from"), "{}", run.stderr);
    assert_eq!(run.json()["org_id"], w.sandbox.org_id.as_str());
    let last = w.token_requests().pop().unwrap();
    assert_eq!(last.host, "acme--partial.sandbox.my.salesforce.com");
    assert_eq!(last.jwt_claims.unwrap()["aud"], "https://test.salesforce.com");
}

#[test]
fn unknown_consumer_key_is_named() {
    let w = World::new();
    let run = w.jwt_with("3MVGnotarealkey", USER, "acme-prod", &["--domain", "acme.my"]);
    let run = run.fails_with(50310);
    assert!(run.stderr.contains("invalid_client_id") && run.stderr.contains("Consumer Key"), "{}", run.stderr);
    assert_eq!(run.json()["ok"], false);
    assert_eq!(run.json()["error"]["code"], "SLAM_JWT_UNKNOWN_CONSUMER_KEY");
}

#[test]
fn app_in_another_org_is_reported_as_not_installed() {
    let w = World::new();
    let cert = std::fs::read_to_string(w.slam.cert_file("acme-prod")).unwrap();
    let other = Org::production("other");
    w.fake.add_org(other.clone());
    w.fake.add_app(App::new("OTHERKEY", &other, cert).pre_authorize(USER));
    let run = w.jwt_with("OTHERKEY", USER, "acme-prod", &[]);
    let run = run.fails_with(50311);
    assert!(run.stderr.contains("External client app is not installed in this org"), "{}", run.stderr);
}

#[test]
fn user_not_pre_authorized_tries_both_audiences_and_lists_them() {
    let w = World::new();
    w.fake.add_user(User::new("analyst@acme.com", &w.prod));
    let run = w.jwt("acme.my", "analyst@acme.com").fails_with(50312);
    assert!(run.stderr.contains("user hasn't approved this consumer"), "{}", run.stderr);
    assert!(run.stderr.contains("Admin approved users are pre-authorized"), "{}", run.stderr);
    assert!(
        run.stderr.contains("aud https://login.salesforce.com")
            && run.stderr.contains("aud https://acme.my.salesforce.com"),
        "{}",
        run.stderr
    );
    let auds: Vec<_> = w.token_requests().iter().map(|r| r.jwt_claims.clone().unwrap()["aud"].clone()).collect();
    assert_eq!(auds, ["https://login.salesforce.com", "https://acme.my.salesforce.com"]);
}

#[test]
fn sandbox_user_through_the_production_login_server_is_explained() {
    let w = World::new();
    w.register_app("SANDBOXKEY", &w.sandbox, "etl@acme.com.partial");
    let run = w.jwt_with("SANDBOXKEY", "etl@acme.com.partial", "acme-prod", &["--domain", "login"]);
    // Salesforce answers an audience or an approval error here; either way the hint
    // must point at `test` and list what was tried.
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("SLAM error 50314 ") || run.stderr.contains("SLAM error 50312 "), "{}", run.stderr);
    assert!(run.stderr.contains("sandboxes 'test'") || run.stderr.contains("a sandbox needs 'test'"), "{}", run.stderr);
    assert!(run.stderr.contains("login.salesforce.com with aud https://login.salesforce.com"), "{}", run.stderr);
}

#[test]
fn a_certificate_that_is_not_this_keys_is_reported_with_the_file_to_upload() {
    let w = World::new();
    let other = Slam::new();
    other.run(&["setup-jwt", "--key-name", "other"]).ok();
    let wrong_cert = std::fs::read_to_string(other.cert_file("other")).unwrap();
    w.fake.add_app(App::new("WRONGCERT", &w.prod, wrong_cert).pre_authorize(USER));
    let run = w.jwt_with("WRONGCERT", USER, "acme-prod", &["--domain", "acme.my"]);
    let run = run.fails_with(50313);
    assert!(run.stderr.contains("invalid assertion"), "{}", run.stderr);
    assert!(run.stderr.contains(&w.slam.cert_file("acme-prod").display().to_string()), "{}", run.stderr);
}

#[test]
fn an_expired_certificate_is_refused_before_any_request() {
    use slam_core::keys::{KeyName, generate};
    use time::Duration as D;
    let w = World::new();
    let now = time::OffsetDateTime::now_utc();
    let old = generate(&KeyName::parse("old").unwrap(), None, now - D::days(400), now - D::days(1)).unwrap();
    std::fs::write(w.slam.key_file("old"), old.private_key_pem.as_bytes()).unwrap();
    std::fs::write(w.slam.cert_file("old"), &old.certificate_pem).unwrap();
    let run = w.jwt_with(&w.consumer_key, USER, "old", &[]);
    let run = run.fails_with(50112);
    assert!(run.stderr.contains("SLAM_setup_jwt @key_name = 'old'"), "{}", run.stderr);
    assert!(w.fake.requests().is_empty(), "nothing may be sent with an expired certificate");
}

#[test]
fn wrong_or_missing_key_password_is_caught_locally() {
    let w = World::new();
    let base = [
        "--auth-method",
        "jwt_bearer",
        "--username",
        USER,
        "--consumer-key",
        &w.consumer_key,
        "--key-name",
        "acme-prod",
    ];
    w.login_with_env(&base, &[]).fails_with(50109);
    w.login_with_env(&base, &[("SLAM_KEY_PASSWORD", "not it")]).fails_with(50110);
    assert!(w.fake.requests().is_empty());
}

#[test]
fn clock_skew_is_measured_from_salesforces_date_header() {
    let w = World::new();
    w.fake.set_clock_offset(600);
    let run = w.jwt("acme.my", USER).fails_with(50315);
    assert!(run.stderr.contains("expired authorization code"), "{}", run.stderr);
    let said = run.stderr.lines().find(|l| l.contains("clock is")).unwrap_or_default().to_string();
    assert!(said.contains("seconds behind Salesforce's"), "{}", run.stderr);
    let seconds: i64 = said.split("clock is ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((595..=605).contains(&seconds), "{said}");
}

#[test]
fn inactive_user_is_reported() {
    let w = World::new();
    w.fake.add_user(User::new("gone@acme.com", &w.prod).with_active(false));
    w.register_app("K2", &w.prod, "gone@acme.com");
    let run = w.jwt_with("K2", "gone@acme.com", "acme-prod", &[]);
    run.fails_with(50316);
}

#[test]
fn api_version_not_offered_names_the_highest_offered() {
    let w = World::new();
    let small = Org::production("small").with_api_versions(31..=62);
    w.fake.add_org(small.clone());
    w.fake.add_user(User::new("u@small.com", &small));
    // SOAP: Salesforce refuses the version at login.
    let run = w.soap(
        "u@small.com",
        User::DEFAULT_PASSWORD,
        User::DEFAULT_SECURITY_TOKEN,
        &["--api-version", "64", "--domain", "small.my"],
    );
    let run = run.fails_with(50328);
    assert!(run.stderr.contains("the highest it offers is 62.0"), "{}", run.stderr);
    // JWT: the login works, the connection test finds the version missing.
    w.register_app("SMALLKEY", &small, "u@small.com");
    let run = w.jwt_with("SMALLKEY", "u@small.com", "acme-prod", &["--domain", "small.my", "--api-version", "63"]);
    let run = run.fails_with(50328);
    assert!(run.stderr.contains("does not offer API version 63.0 (the highest it offers is 62.0)"), "{}", run.stderr);
}

#[test]
fn security_token_login_works_with_xml_special_characters_and_warns_about_retirement() {
    let w = World::new();
    let password = "p&ss<w>rd\"'ünï €";
    let token = "T0K&N<>";
    w.fake.add_user(User::new("xml@acme.com", &w.prod).with_password(password).with_security_token(token));
    let run = w.soap("xml@acme.com", password, token, &[]).ok();
    assert_eq!(run.json()["auth_method"], "security_token");
    assert_eq!(run.json()["org_id"], w.prod.org_id.as_str());
    assert_eq!(run.json()["jwt_audience"], serde_json::Value::Null);
    let warning = run.warnings().join("\n");
    assert!(
        warning.contains("SOAP API login()") && warning.contains("Summer '27") && warning.contains("jwt_bearer"),
        "{warning}"
    );
    let soap = w.fake.requests().into_iter().find(|r| r.path.starts_with("/services/Soap/u/60.0")).unwrap();
    assert_eq!(soap.host, "login.salesforce.com");
    assert!(soap.header("content-type").unwrap().starts_with("text/xml"));
}

#[test]
fn security_token_failures_map_to_their_own_errors() {
    let w = World::new();
    let p = User::DEFAULT_PASSWORD;
    let t = User::DEFAULT_SECURITY_TOKEN;
    let wrong = w.soap(USER, "wrong", t, &[]).fails_with(50320);
    assert!(wrong.stderr.contains("INVALID_LOGIN: Invalid username, password, security token"), "{}", wrong.stderr);
    w.soap(USER, p, "", &[]).fails_with(50321);

    let closed = Org::production("closed").with_soap_login_enabled(false);
    w.fake.add_org(closed.clone());
    w.fake.add_user(User::new("u@closed.com", &closed));
    let run = w.soap("u@closed.com", p, t, &[]).fails_with(50322);
    assert!(run.stderr.contains("Enable SOAP API login()"), "{}", run.stderr);

    let strict = Org::production("strict").with_require_use_any_api_auth(true);
    w.fake.add_org(strict.clone());
    w.fake.add_user(User::new("u@strict.com", &strict));
    w.soap("u@strict.com", p, t, &[]).fails_with(50325);
    w.fake.add_user(User::new("ok@strict.com", &strict).with_use_any_api_auth(true));
    w.soap("ok@strict.com", p, t, &[]).ok();

    w.fake.add_user(User::new("noapi@acme.com", &w.prod).with_api_enabled(false));
    w.soap("noapi@acme.com", p, t, &[]).fails_with(50324);

    w.fake.add_user(User::new("expired@acme.com", &w.prod).with_password_expired(true));
    let run = w.soap("expired@acme.com", p, t, &[]).fails_with(50326);
    assert!(run.stderr.contains("set a new password"), "{}", run.stderr);

    w.fake.set_login_rate_limit(1);
    w.fake.add_user(User::new("busy@acme.com", &w.prod));
    w.soap("busy@acme.com", p, t, &[]).ok();
    w.soap("busy@acme.com", p, t, &[]).fails_with(50327);
}

#[test]
fn security_token_at_api_65_is_refused_before_any_request() {
    let w = World::new();
    let run =
        w.soap(USER, User::DEFAULT_PASSWORD, User::DEFAULT_SECURITY_TOKEN, &["--api-version", "65"]).fails_with(50205);
    assert!(run.stderr.contains("jwt_bearer"), "{}", run.stderr);
    assert!(w.fake.requests().is_empty());
}

#[test]
fn bad_parameters_are_refused_before_any_request() {
    let w = World::new();
    let missing = w.login(&["--auth-method", "jwt_bearer", "--username", USER]).fails_with(50203);
    assert!(missing.stderr.contains("@consumer_key, @key_name are required"), "{}", missing.stderr);
    w.soap(USER, "", "", &[]).fails_with(50203);
    w.login(&["--auth-method", "oauth", "--username", USER]).fails_with(50204);
    let lightning =
        w.soap(USER, "p", "t", &["--domain", "https://acme.lightning.force.com/lightning/page/home"]).fails_with(50201);
    assert!(lightning.stderr.contains("@domain = 'acme.my'"), "{}", lightning.stderr);
    w.soap(USER, "p", "t", &["--domain", "example.com"]).fails_with(50201);
    w.soap(USER, "p", "t", &["--api-version", "30"]).fails_with(50202);
    assert!(w.fake.requests().is_empty());
}

#[test]
fn a_503_is_retried_and_then_succeeds() {
    let w = World::new();
    w.fake.fail_next(1, 503);
    w.jwt("acme.my", USER).ok();
    assert_eq!(w.token_requests().len(), 2, "one 503, then the retry");
}

#[test]
fn persistent_503_fails_after_bounded_retries() {
    let w = World::new();
    w.fake.fail_next(10, 503);
    let run = w.jwt("acme.my", USER).fails_with(50304);
    assert!(run.stderr.contains("3 attempts"), "{}", run.stderr);
    assert_eq!(w.token_requests().len(), 3);
}

#[test]
fn a_hanging_server_fails_within_the_timeout() {
    let w = World::new();
    w.fake.hang(true);
    let started = Instant::now();
    let run =
        w.login_with_env(&["--http-timeout", "2", "--username", USER], &[("SLAM_PASSWORD", "p"), ("SLAM_TOKEN", "t")]);
    let run = run.fails_with(50303);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(run.stderr.contains("did not answer within 2 seconds"), "{}", run.stderr);
    w.fake.hang(false);
}

#[test]
fn an_untrusted_certificate_is_reported_as_such() {
    let w = World::new();
    let mut cmd = w.slam.command(&["test-login", "--username", USER, "--resolve", &w.fake.resolve_spec()]);
    cmd.env("SLAM_PASSWORD", "p").env("SLAM_TOKEN", "t");
    let run = crate::support::run(cmd).fails_with(50302);
    assert!(run.stderr.contains("SLAM_CA_FILE"), "{}", run.stderr);
}

#[test]
fn no_secret_appears_in_any_output_or_log() {
    let w = World::new();
    let password = "Sup3r-Secret-Pa55word";
    let token = "SECRETTOKENVALUE123";
    w.fake.add_user(User::new("s@acme.com", &w.prod).with_password(password).with_security_token(token));
    let mut seen = String::new();
    seen += &w.soap("s@acme.com", password, token, &[]).ok().all_output();
    seen += &w.soap("s@acme.com", "Wrong-Pa55word-Secret", token, &[]).fails_with(50320).all_output();
    seen += &w.jwt("acme.my", USER).ok().all_output();
    seen += &w.jwt("acme.my", "nobody@acme.com").fails_with(50312).all_output();
    let with_flags = w.login_with_env(&["--username", "s@acme.com", "--password", password, "--token", token], &[]);
    assert!(
        with_flags.warnings().iter().any(|w| w.contains("`--password` on the command line")),
        "{}",
        with_flags.stderr
    );
    seen += &with_flags.ok().all_output();
    assert!(seen.contains("TRACE") || seen.contains("DEBUG"), "logging was on");
    let assertions: Vec<String> =
        w.token_requests().iter().filter_map(|r| r.form_value("assertion").map(str::to_string)).collect();
    assert!(!assertions.is_empty());
    for secret in [password, token, "Wrong-Pa55word-Secret", KEY_PASS].iter().map(|s| s.to_string()).chain(assertions) {
        assert!(!seen.contains(&secret), "secret leaked: {secret:.12}…\n{seen}");
    }
    // Access tokens: the fake issues `00D…!…` tokens; none may be printed.
    assert!(!seen.contains(&format!("{}!", &w.prod.org_id[..15])), "an access token leaked:\n{seen}");
}

/// A minimal HTTP CONNECT proxy that records each CONNECT line and tunnels every
/// connection to the fake Salesforce (the proxy, not the client, resolves names).
struct ConnectProxy {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start(upstream: std::net::SocketAddr) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(client.try_clone().unwrap());
                    let mut first = String::new();
                    reader.read_line(&mut first).unwrap();
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap() > 2 {
                        line.clear();
                    }
                    log.lock().unwrap().push(first.trim().to_string());
                    let server = std::net::TcpStream::connect(upstream).unwrap();
                    let mut client_w = client.try_clone().unwrap();
                    client_w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                    let mut server_r = server.try_clone().unwrap();
                    let mut server_w = server;
                    let up = std::thread::spawn(move || std::io::copy(&mut reader, &mut server_w));
                    let _ = std::io::copy(&mut server_r, &mut client_w);
                    let _ = client_w.shutdown(std::net::Shutdown::Both);
                    let _ = up.join();
                });
            }
        });
        ConnectProxy { addr, seen }
    }

    fn connects(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[test]
fn an_explicit_proxy_and_the_https_proxy_variable_are_used() {
    let w = World::new();
    let proxy = ConnectProxy::start(w.fake.addr());
    let url = format!("http://{}", proxy.addr);
    let base = ["--format", "json", "test-login", "--username", USER, "--domain", "acme.my"];

    let mut cmd = w.slam.command(&base);
    cmd.arg("--ca-file").arg(&w.ca_file).arg("--proxy").arg(&url);
    cmd.env("SLAM_PASSWORD", User::DEFAULT_PASSWORD).env("SLAM_TOKEN", User::DEFAULT_SECURITY_TOKEN);
    crate::support::run(cmd).ok();
    assert!(
        proxy.connects().iter().any(|c| c == "CONNECT acme.my.salesforce.com:443 HTTP/1.1"),
        "{:?}",
        proxy.connects()
    );

    let before = proxy.connects().len();
    let mut cmd = w.slam.command(&base);
    cmd.arg("--ca-file").arg(&w.ca_file);
    cmd.env("SLAM_PASSWORD", User::DEFAULT_PASSWORD).env("SLAM_TOKEN", User::DEFAULT_SECURITY_TOKEN);
    cmd.env("HTTPS_PROXY", &url).env_remove("NO_PROXY").env_remove("no_proxy");
    crate::support::run(cmd).ok();
    assert!(proxy.connects().len() > before, "HTTPS_PROXY was not used: {:?}", proxy.connects());
}

#[test]
fn a_token_is_never_sent_to_a_host_outside_salesforce_and_huge_answers_are_refused() {
    let w = World::new();
    w.fake.add_user(User::new("soap@acme.com", &w.prod).with_password("pw").with_security_token("TOK"));
    for tampered in ["https://collector.evil.example", "https://acme.my.salesforce.com.evil.example"] {
        w.fake.tamper_instance_url(Some(tampered));
        let run = w.jwt("acme.my", USER).fails_with(50305);
        assert!(run.stderr.contains("not a Salesforce host"), "{}", run.stderr);
        w.soap("soap@acme.com", "pw", "TOK", &["--domain", "acme.my"]).fails_with(50305);
        // Nothing followed the login: the REST probe would carry the token.
        assert!(w.fake.requests().iter().all(|r| !r.path.starts_with("/services/data/v")), "token sent on");
    }
    w.fake.tamper_instance_url(None);
    w.jwt("acme.my", USER).ok();

    w.fake.oversize_next(1);
    let run = w.jwt("acme.my", USER).fails_with(50305);
    assert!(run.stderr.contains("larger than 1048576 bytes"), "{}", run.stderr);
}
