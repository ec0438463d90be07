//! The connection procedures end to end: `slam add-connection`, `list-connections`,
//! `use-connection-username`, `test-connection`, `remove-connection`, `settings`,
//! against the fake Salesforce, with a real SQLite store in the data directory.

use crate::support::Run;
use crate::support::{KEY_PASS, USER, World};
use slam_testkit::User;

const SOAP_USER: &str = "soap@acme.com";
const SOAP_PASSWORD: &str = "Soap-Pa55word&<xml>";
const SOAP_TOKEN: &str = "SOAPTOKEN4242";

impl World {
    fn slam(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.slam_json(args, env)
    }

    fn add_jwt(&self, extra: &[&str]) -> Run {
        let flags = self.jwt_flags();
        let mut args = vec!["add-connection"];
        args.extend(flags.iter().map(String::as_str));
        args.extend_from_slice(extra);
        self.slam(&args, &[("SLAM_KEY_PASSWORD", KEY_PASS)])
    }

    fn add_soap(&self, username: &str, extra: &[&str]) -> Run {
        let mut args = vec!["add-connection", "--username", username, "--domain", "acme.my"];
        args.extend_from_slice(extra);
        self.slam(&args, &[("SLAM_PASSWORD", SOAP_PASSWORD), ("SLAM_TOKEN", SOAP_TOKEN)])
    }

    fn with_soap_user(self) -> Self {
        self.fake
            .add_user(User::new(SOAP_USER, &self.prod).with_password(SOAP_PASSWORD).with_security_token(SOAP_TOKEN));
        self
    }

    fn list(&self) -> Vec<serde_json::Value> {
        self.slam(&["list-connections"], &[]).ok().json().as_array().unwrap().clone()
    }

    fn active(&self) -> serde_json::Value {
        self.slam(&["settings"], &[]).ok().row()["username"].clone()
    }

    /// Every byte SQLite keeps for the store (main file, WAL, shared memory).
    fn store_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.slam.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with("slam.db") {
                bytes.extend(std::fs::read(path).unwrap());
            }
        }
        bytes
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn add_tests_stores_and_activates_a_jwt_connection() {
    let w = World::new();
    let run = w.add_jwt(&["--environment-name", "Acme production"]).ok();
    assert!(run.stderr.contains("activated it: SLAM_Settings.Username = 'etl@acme.com'"), "{}", run.stderr);
    let row = run.row();
    assert_eq!(row["active"], true);
    assert_eq!(row["last_test_ok"], true);

    let list = w.list();
    assert_eq!(list.len(), 1);
    let c = &list[0];
    for (field, expected) in [
        ("username", serde_json::json!(USER)),
        ("auth_method", serde_json::json!("jwt_bearer")),
        ("domain", serde_json::json!("acme.my")),
        ("environment_name", serde_json::json!("Acme production")),
        ("api_version", serde_json::json!(60)),
        ("key_name", serde_json::json!("acme-prod")),
        ("consumer_key", serde_json::json!(w.consumer_key)),
        ("active", serde_json::json!(true)),
        ("instance_url", serde_json::json!("https://acme.my.salesforce.com")),
        ("org_id", serde_json::json!(w.prod.org_id)),
        ("last_test_ok", serde_json::json!(true)),
    ] {
        assert_eq!(c[field], expected, "{field}");
    }
    assert!(c["last_test_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        c["cert_expires_at"].as_str().unwrap().starts_with(&(time::OffsetDateTime::now_utc().year() + 1).to_string())
    );
    let keys: Vec<_> = c.as_object().unwrap().keys().cloned().collect();
    for k in ["key_password", "password", "token"] {
        assert!(!keys.iter().any(|x| x == k), "no secret column in the listing");
    }
    assert_eq!(w.active(), USER);
}

#[test]
fn a_failed_test_stores_nothing_and_skip_test_stores_untested() {
    let w = World::new().with_soap_user();
    let failed = w.slam(
        &["add-connection", "--username", SOAP_USER, "--domain", "acme.my"],
        &[("SLAM_PASSWORD", "wrong"), ("SLAM_TOKEN", SOAP_TOKEN)],
    );
    failed.fails_with(50320);
    assert!(w.list().is_empty(), "nothing stored after a failed test");
    assert_eq!(w.active(), serde_json::Value::Null);

    let skipped = w.slam(
        &["add-connection", "--username", SOAP_USER, "--domain", "acme.my", "--skip-test"],
        &[("SLAM_PASSWORD", "wrong"), ("SLAM_TOKEN", SOAP_TOKEN)],
    );
    let skipped = skipped.ok();
    assert!(skipped.warnings().iter().any(|w| w.contains("UNTESTED")), "{}", skipped.stderr);
    assert!(w.fake.requests().iter().all(|r| r.path.starts_with("/services/Soap")), "skip-test sent nothing new");
    let list = w.list();
    assert_eq!(list[0]["last_test_at"], serde_json::Value::Null);
    assert_eq!(list[0]["active"], true);

    // A JWT connection with an unusable key is refused even when skipping the test.
    let mut add = w.slam.command(&["add-connection", "--auth-method", "jwt_bearer", "--username", USER, "--skip-test"]);
    add.args(["--consumer-key", &w.consumer_key, "--key-name", "acme-prod"]);
    add.env("SLAM_KEY_PASSWORD", "not the passphrase");
    crate::support::run(add).fails_with(50110);
    assert_eq!(w.list().len(), 1);
}

#[test]
fn readding_replaces_and_use_switches_the_active_connection() {
    let w = World::new().with_soap_user();
    w.add_jwt(&[]).ok();
    w.add_soap(SOAP_USER, &[]).ok();
    assert_eq!(w.active(), SOAP_USER, "the last added connection is active");
    let again = w.add_jwt(&["--api-version", "62"]).ok();
    assert!(again.stderr.contains("Replaced the existing connection for etl@acme.com"), "{}", again.stderr);
    assert_eq!(w.list().len(), 2);
    assert_eq!(w.list()[0]["api_version"], 62);

    let used = w.slam(&["use-connection-username", "--username", SOAP_USER], &[]).ok();
    assert!(used.stderr.contains("SLAM_Settings.Username = 'soap@acme.com'"), "{}", used.stderr);
    assert_eq!(w.active(), SOAP_USER);
    let unknown = w.slam(&["use-connection-username", "--username", "nobody@acme.com"], &[]).fails_with(50206);
    assert!(unknown.stderr.contains("stored connections: etl@acme.com, soap@acme.com"), "{}", unknown.stderr);
    assert_eq!(w.active(), SOAP_USER, "a failed use changes nothing");
}

#[test]
fn test_connection_records_success_and_precise_failures() {
    let w = World::new().with_soap_user();
    w.add_soap(SOAP_USER, &[]).ok();
    w.add_jwt(&[]).ok();
    let passed = w.slam(&["test-connection", "--username", SOAP_USER], &[]).ok();
    assert!(passed.stderr.contains("Connection test passed for soap@acme.com"), "{}", passed.stderr);

    // The password changes in Salesforce: the stored one stops working.
    w.fake.add_user(User::new(SOAP_USER, &w.prod).with_password("Changed-Pa55").with_security_token(SOAP_TOKEN));
    let failed = w.slam(&["test-connection", "--username", SOAP_USER], &[]).fails_with(50320);
    assert!(failed.stderr.contains("INVALID_LOGIN"), "{}", failed.stderr);
    let soap_row = w.list().into_iter().find(|c| c["username"] == SOAP_USER).unwrap();
    assert_eq!(soap_row["last_test_ok"], false);
    assert!(soap_row["last_test_message"].as_str().unwrap().contains("SLAM error 50320"), "{soap_row}");

    // The expired password case.
    w.fake.add_user(
        User::new(SOAP_USER, &w.prod)
            .with_password(SOAP_PASSWORD)
            .with_security_token(SOAP_TOKEN)
            .with_password_expired(true),
    );
    w.slam(&["test-connection", "--username", SOAP_USER], &[]).fails_with(50326);

    // The JWT keypair disappears from this machine.
    std::fs::remove_file(w.slam.key_file("acme-prod")).unwrap();
    let missing = w.slam(&["test-connection", "--username", USER], &[]).fails_with(50105);
    assert!(missing.stderr.contains("acme-prod"), "{}", missing.stderr);
    let listed = w.slam(&["list-connections"], &[]).ok();
    let jwt_row = listed.json().as_array().unwrap().iter().find(|c| c["username"] == USER).cloned().unwrap();
    assert_eq!(jwt_row["last_test_ok"], false);

    w.slam(&["test-connection", "--username", "nobody@acme.com"], &[]).fails_with(50206);
}

#[test]
fn remove_clears_the_active_connection_and_says_so() {
    let w = World::new().with_soap_user();
    w.add_soap(SOAP_USER, &[]).ok();
    w.add_jwt(&[]).ok();
    let inactive = w.slam(&["remove-connection", "--username", SOAP_USER], &[]).ok();
    assert!(inactive.warnings().is_empty(), "{}", inactive.stderr);
    assert_eq!(w.active(), USER);
    let active = w.slam(&["remove-connection", "--username", USER], &[]).ok();
    assert!(active.warnings().iter().any(|w| w.contains("no connection is active now")), "{}", active.stderr);
    assert_eq!(w.active(), serde_json::Value::Null);
    assert!(w.list().is_empty());
    let gone = w.slam(&["remove-connection", "--username", USER], &[]).fails_with(50206);
    assert!(gone.stderr.contains("no connections are stored"), "{}", gone.stderr);
}

#[test]
fn bad_parameters_store_nothing() {
    let w = World::new();
    w.slam(&["add-connection", "--username", USER, "--auth-method", "jwt_bearer"], &[]).fails_with(50203);
    w.slam(&["add-connection", "--username", USER], &[("SLAM_PASSWORD", "p")]).fails_with(50203);
    let long = "x".repeat(129);
    w.add_jwt(&["--environment-name", &long]).fails_with(50002);
    w.add_jwt(&["--api-version", "20"]).fails_with(50202);
    assert!(w.list().is_empty());
    assert!(w.fake.requests().is_empty());
}

#[test]
fn the_raw_store_holds_no_secret_and_logs_every_change() {
    let w = World::new().with_soap_user();
    w.add_soap(SOAP_USER, &[]).ok();
    w.add_jwt(&[]).ok();
    w.slam(&["test-connection", "--username", SOAP_USER], &[]).ok();
    w.slam(&["use-connection-username", "--username", SOAP_USER], &[]).ok();
    w.slam(&["use-connection-username", "--username", "nobody@x.com"], &[]).fails_with(50206);
    let bytes = w.store_bytes();
    assert!(!bytes.is_empty());
    assert!(contains(&bytes, SOAP_USER), "the scan does see the store's contents");
    for secret in [SOAP_PASSWORD, SOAP_TOKEN, KEY_PASS, "Soap-Pa55word"] {
        assert!(!contains(&bytes, secret), "{secret:?} is in the raw store");
    }

    let db = rusqlite::Connection::open(w.slam.data_dir().join("slam.db")).unwrap();
    let mut stmt = db.prepare("SELECT Operation, Outcome, ErrorNumber, Caller FROM SLAM_Log ORDER BY Id").unwrap();
    let log: Vec<(String, String, Option<i64>, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect();
    let ops: Vec<_> = log.iter().map(|(op, outcome, _, _)| format!("{op}:{outcome}")).collect();
    assert_eq!(
        ops,
        [
            "add_connection:ok",
            "add_connection:ok",
            "test_connection:ok",
            "use_connection_username:ok",
            "use_connection_username:error"
        ]
    );
    assert_eq!(log[4].2, Some(50206));
    assert!(log[0].3.contains("slam-cli"), "{:?}", log[0]);
}

#[test]
fn a_store_copied_without_its_master_key_reveals_nothing_and_says_why() {
    let w = World::new().with_soap_user();
    w.add_soap(SOAP_USER, &[]).ok();
    let elsewhere = crate::support::Slam::new();
    for name in ["slam.db", "slam.db-wal", "slam.db-shm"] {
        let from = w.slam.data_dir().join(name);
        if from.exists() {
            std::fs::copy(from, elsewhere.data_dir().join(name)).unwrap();
        }
    }
    let mut cmd = elsewhere.command(&["test-connection", "--username", SOAP_USER]);
    cmd.arg("--ca-file").arg(&w.ca_file).arg("--resolve").arg(w.fake.resolve_spec());
    let run = crate::support::run(cmd).fails_with(50006);
    assert!(run.stderr.contains("restore master.key") && run.stderr.contains("add it again"), "{}", run.stderr);
    // The listing still works there: it needs no secret.
    let list = crate::support::run(elsewhere.command(&["--format", "json", "list-connections"])).ok();
    assert_eq!(list.json().as_array().unwrap().len(), 1);
}

#[test]
fn concurrent_processes_leave_a_consistent_store() {
    let w = World::new();
    let users: Vec<String> = (0..4).map(|i| format!("u{i}@acme.com")).collect();
    let mut children = Vec::new();
    for round in 0..3 {
        for (i, user) in users.iter().enumerate() {
            let action: &[&str] = match (round + i) % 3 {
                0 => &["add-connection", "--skip-test", "--domain", "acme.my", "--username"],
                1 => &["use-connection-username", "--username"],
                _ => &["remove-connection", "--username"],
            };
            let mut args = action.to_vec();
            args.push(user);
            let mut cmd = w.slam.command(&args);
            cmd.env("SLAM_PASSWORD", "p").env("SLAM_TOKEN", "t");
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            children.push(crate::support::spawn(&mut cmd));
        }
    }
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for out in &outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("SLAM error 50206 "),
            "only 'not found' may fail under concurrency:\n{stderr}"
        );
    }
    let list = w.list();
    let names: Vec<_> = list.iter().map(|c| c["username"].as_str().unwrap().to_string()).collect();
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique, "no duplicate rows");
    let active = w.active();
    assert!(
        active.is_null() || names.iter().any(|n| *n == active),
        "SLAM_Settings.Username {active} must name a stored connection or be NULL"
    );
    assert_eq!(list.iter().filter(|c| c["active"] == true).count(), usize::from(!active.is_null()));
    let db = rusqlite::Connection::open(w.slam.data_dir().join("slam.db")).unwrap();
    let logged: i64 = db.query_row("SELECT COUNT(*) FROM SLAM_Log", [], |r| r.get(0)).unwrap();
    assert_eq!(logged, outputs.len() as i64, "every operation, successful or not, is logged exactly once");
}

#[test]
fn a_dba_is_warned_before_a_connection_stops_working() {
    let w = World::new().with_soap_user();
    w.add_soap(SOAP_USER, &[]).ok();
    // The JWT connection's keypair is renewed for only 10 days, and uploaded.
    let env = [("SLAM_KEY_PASSWORD", KEY_PASS)];
    w.slam(&["setup-jwt", "--key-name", "acme-prod", "--force", "--cert-days", "10"], &env).ok();
    let cert = std::fs::read_to_string(w.slam.cert_file("acme-prod")).unwrap();
    w.fake.add_app(slam_testkit::App::new(w.consumer_key.clone(), &w.prod, cert).pre_authorize(USER));
    let renew = |run: &Run| {
        run.warnings().iter().any(|w| {
            w.contains("acme-prod") && w.contains("expires in") && w.contains("SLAM_setup_jwt @key_name = 'acme-prod'")
        })
    };
    let retired = |run: &Run| {
        run.warnings().iter().any(|w| w.contains(SOAP_USER) && w.contains("Summer '27") && w.contains("65.0"))
    };

    let added = w.add_jwt(&["--environment-name", "Acme prod"]).ok();
    assert!(renew(&added), "{}", added.stderr);
    let listed = w.slam(&["list-connections"], &[]).ok();
    assert!(renew(&listed) && retired(&listed), "{}", listed.stderr);
    let rows = listed.json();
    let jwt = rows.as_array().unwrap().iter().find(|r| r["username"] == USER).unwrap().clone();
    assert_eq!(jwt["auth_method"], "jwt_bearer");
    assert_eq!(jwt["domain"], "acme.my");
    assert_eq!(jwt["api_version"], 60);
    assert_eq!(jwt["environment_name"], "Acme prod");
    assert_eq!(jwt["active"], true);
    assert_eq!(jwt["last_test_ok"], true);
    for column in ["created_at", "updated_at", "last_test_at", "cert_expires_at"] {
        assert!(jwt[column].as_str().is_some_and(|t| t.ends_with('Z')), "{column}: {jwt}");
    }
    let used = w.slam(&["use-connection-username", "--username", SOAP_USER], &[]).ok();
    assert!(retired(&used), "{}", used.stderr);
    let tested = w.slam(&["test-connection", "--username", USER], &[]).ok();
    assert!(renew(&tested), "{}", tested.stderr);

    let removed = w.slam(&["remove-jwt", "--key-name", "acme-prod"], &[]).ok();
    assert!(
        removed.warnings().iter().any(|w| w.contains("still use `acme-prod`") && w.contains(USER)),
        "{}",
        removed.stderr
    );
}

#[test]
fn a_secret_given_in_the_wrong_parameter_is_never_echoed_or_logged() {
    // Positional T-SQL arguments one place off put a password where a name belongs.
    let w = World::new();
    w.add_jwt(&[]).ok();
    let secret = "Hunter2 is my passphrase!";
    let soap = [("SLAM_PASSWORD", "p"), ("SLAM_TOKEN", "t")];
    let runs = [
        w.slam(&["add-connection", "--username", USER, "--auth-method", secret], &soap).fails_with(50204),
        w.slam(&["add-connection", "--username", secret], &soap).fails_with(50002),
        w.slam(&["test-login", "--username", "Hunter2"], &soap).fails_with(50002),
        w.slam(&["test-connection", "--username", secret], &[]).fails_with(50002),
        w.slam(&["use-connection-username", "--username", secret], &[]).fails_with(50002),
        w.slam(&["remove-connection", "--username", secret], &[]).fails_with(50002),
        w.slam(&["setup-jwt", "--key-name", secret], &[]).fails_with(50101),
        w.slam(&["remove-jwt", "--key-name", secret], &[]).fails_with(50101),
    ];
    for run in &runs {
        assert!(!run.all_output().contains("Hunter2"), "echoed:\n{}", run.all_output());
        assert!(run.stderr.contains("not shown"), "says why it is not shown: {}", run.stderr);
    }
    assert!(!contains(&w.store_bytes(), "Hunter2"), "written to the store or SLAM_Log");
}

#[test]
fn a_lost_master_key_is_reported_never_silently_replaced() {
    let w = World::new().with_soap_user();
    w.add_soap(SOAP_USER, &[]).ok();
    let master = w.slam.data_dir().join("master.key");
    std::fs::remove_file(&master).unwrap();
    let run = w.slam(&["test-connection", "--username", SOAP_USER], &[]).fails_with(50006);
    assert!(run.stderr.contains("restore master.key"), "{}", run.stderr);
    w.add_jwt(&[]).fails_with(50006);
    assert!(!master.exists(), "a new key would make every stored secret unreadable");
    // Once no sealed secret is left, a fresh key is made again.
    w.slam(&["remove-connection", "--username", SOAP_USER], &[]).ok();
    w.add_jwt(&[]).ok();
    assert!(master.exists());
}
