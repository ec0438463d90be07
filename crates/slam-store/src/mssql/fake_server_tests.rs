//! The SQL Server store against `slam_testkit::tds::FakeSqlServer`: the real
//! tiberius client, the real TDS wire (login, `sp_executesql` parameters, typed
//! result sets, server errors), with the fake executing each of the store's
//! statements as its SQLite equivalent. What this proves and what it cannot is in
//! docs/sql-server-store.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::fake::SlamTables;
use super::*;
use crate::conformance;
use slam_testkit::tds::{FakeSqlServer, Tls};

/// The error and its causes, as the operations show them.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A fake server (TLS on, as every real SQL Server offers it) and settings that
/// trust its CA: the login is encrypted, then the session runs in the clear
/// (`optional`), unless a test asks for more.
struct Fake {
    tables: Arc<SlamTables>,
    server: FakeSqlServer,
    _ca_dir: tempfile::TempDir,
    settings: SqlServerSettings,
}

fn start(tables: Arc<SlamTables>, password: &str) -> Fake {
    let server = FakeSqlServer::start(tables.clone(), Tls::Required).unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let mut settings = SqlServerSettings::new(
        ServerAddress::parse(&format!("127.0.0.1,{}", server.addr().port())).unwrap(),
        SqlAuth::Login { user: "slam_worker".into(), password: secrecy::SecretString::from(password.to_string()) },
        Encrypt::Optional,
    );
    settings.ca_file = Some(server.write_ca_file(ca_dir.path()).unwrap());
    // SChannel (Windows' TLS, and Wine's) insists on revocation information for a
    // CA given as a file, which a test CA has none of (CERT_E_REVOCATION_FAILURE):
    // the Windows build of these tests trusts the fake's certificate outright.
    settings.trust_server_certificate = cfg!(windows);
    settings.lock_timeout = Duration::from_millis(300);
    settings.connect_timeout = Duration::from_secs(5);
    Fake { tables, server, _ca_dir: ca_dir, settings }
}

fn fake() -> (Fake, SqlServerOpener) {
    let tables = SlamTables::new();
    tables.install("Sales");
    let fake = start(tables, "worker-pw");
    let opener = SqlServerOpener::new(fake.settings.clone()).unwrap();
    (fake, opener)
}

#[test]
fn the_sql_server_store_passes_the_conformance_suite_over_tds() {
    let fake = start(SlamTables::new(), "worker-pw");
    let (tables, opener) = (fake.tables.clone(), SqlServerOpener::new(fake.settings.clone()).unwrap());
    let mut n = 0;
    conformance::run_all(&mut || {
        n += 1;
        let database = format!("Db{n}");
        tables.install(&database);
        opener.open(Some(&database)).unwrap()
    });
}

#[test]
fn every_session_sets_xact_abort_and_a_lock_timeout_first_and_connections_are_reused() {
    let (fake, opener) = fake();
    let (tables, server) = (&fake.tables, &fake.server);
    for _ in 0..5 {
        let mut store = opener.open(Some("Sales")).unwrap();
        store.save_and_activate(&conformance::record("a@acme.com"), &conformance::log("add")).unwrap();
        assert_eq!(store.active_username().unwrap().as_deref(), Some("a@acme.com"));
    }
    let logins = server.logins();
    assert_eq!(logins.len(), 1, "five operations, one pooled connection: {logins:?}");
    assert_eq!(logins[0].app_name, APPLICATION_NAME, "DBAs see the worker's sessions by name");
    assert_eq!(logins[0].database, "Sales");
    let state = tables.state.lock().unwrap();
    let session = state.sessions.values().next().unwrap();
    assert_eq!(session.setup, ["SET XACT_ABORT ON; SET LOCK_TIMEOUT 300;"]);
    assert!(session.statements > 10);
}

#[test]
fn an_open_store_holds_no_connection_between_calls() {
    // What adding or testing a connection does: read, wait on Salesforce, write. With a
    // pool of one connection, other operations must still get it during the wait.
    let (fake, _) = fake();
    let mut settings = fake.settings.clone();
    settings.max_connections = 1;
    let opener = SqlServerOpener::new(settings).unwrap();
    let mut waiting_on_salesforce = opener.open(Some("Sales")).unwrap();
    waiting_on_salesforce.list().unwrap();
    let mut other = opener.open(Some("Sales")).unwrap();
    other.save_and_activate(&conformance::record("b@acme.com"), &conformance::log("add")).unwrap();
    waiting_on_salesforce.save_and_activate(&conformance::record("a@acme.com"), &conformance::log("add")).unwrap();
    assert_eq!(fake.server.logins().len(), 1, "one pooled connection served both");
}

#[test]
fn after_a_server_restart_the_next_operation_gets_a_new_connection_instead_of_failing() {
    let (fake, opener) = fake();
    let mut store = opener.open(Some("Sales")).unwrap();
    store.save_and_activate(&conformance::record("a@acme.com"), &conformance::log("add")).unwrap();
    fake.tables.end_sessions();
    let mut store = opener.open(Some("Sales")).unwrap();
    store.activate("a@acme.com", &conformance::log("use")).unwrap();
    assert_eq!(store.active_username().unwrap().as_deref(), Some("a@acme.com"));
    assert_eq!(fake.server.logins().len(), 2, "the dead connection was replaced once");
}

#[test]
fn a_transaction_holding_the_tables_makes_the_change_fail_as_locked_and_nothing_is_written() {
    let (fake, opener) = fake();
    let tables = &fake.tables;
    let mut store = opener.open(Some("Sales")).unwrap();
    store.save_and_activate(&conformance::record("a@acme.com"), &conformance::log("add")).unwrap();
    tables.dba_holds("Sales", true);
    let started = std::time::Instant::now();
    let error = store.activate("a@acme.com", &conformance::log("use")).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited for the LOCK_TIMEOUT");
    tables.dba_holds("Sales", false);
    assert_eq!(tables.log_rows("Sales"), 1, "the locked call wrote nothing");
    // The store recovers with a new connection once the DBA commits.
    store.activate("a@acme.com", &conformance::log("use")).unwrap();
    assert_eq!(tables.log_rows("Sales"), 2);
}

#[test]
fn text_longer_than_its_column_is_cut_to_fit_and_the_change_is_kept() {
    let (fake, opener) = fake();
    let tables = &fake.tables;
    let mut store = opener.open(Some("Sales")).unwrap();
    let mut log = conformance::log("add");
    // A caller made of a long login, application and host, and a long Salesforce
    // answer; '😀' takes two UTF-16 units, as NVARCHAR counts them.
    log.caller = format!("login=CORP\\x{}", "😀".repeat(400));
    log.message = "x".repeat(5000);
    let mut record = conformance::record("a@acme.com");
    record.last_test_message = Some("y".repeat(2500));
    store.save_and_activate(&record, &log).unwrap();
    let (caller, message) = tables.newest_log_texts("Sales");
    assert_eq!(caller.encode_utf16().count(), 511, "512 units would split a surrogate pair");
    assert!(caller.ends_with('…') && caller.starts_with("login=CORP\\x😀"), "{caller}");
    assert_eq!(message.encode_utf16().count(), 4000);
    assert!(message.ends_with("x…"));
    assert_eq!(tables.active_username("Sales").as_deref(), Some("a@acme.com"), "the change itself was kept");
    // Read in the fake's tables, not back through the store: under Wine, a row this big
    // (one multi-packet TDS answer) stalls between the fake and the driver, which real
    // SQL Server on Windows does not show; the Linux run reads it back in the suite.
    let stored_message = |tables: &SlamTables| tables.last_test_message("Sales", "a@acme.com").unwrap();
    assert_eq!(stored_message(tables).encode_utf16().count(), 2000);

    let result = TestResult {
        at: conformance::log("test").at,
        ok: false,
        message: "z".repeat(3000),
        instance_url: None,
        org_id: None,
    };
    store.record_test("a@acme.com", &result, &conformance::log("test")).unwrap();
    assert_eq!(stored_message(tables).encode_utf16().count(), 2000);
    assert!(stored_message(tables).starts_with("zzz"));
}

#[test]
fn a_deleted_settings_row_is_put_back_when_a_connection_is_activated() {
    let (fake, opener) = fake();
    let tables = &fake.tables;
    let mut store = opener.open(Some("Sales")).unwrap();
    store.save_and_activate(&conformance::record("a@acme.com"), &conformance::log("add")).unwrap();
    tables.delete_settings_row("Sales");
    assert_eq!(store.active_username().unwrap(), None);
    store.activate("a@acme.com", &conformance::log("use")).unwrap();
    assert_eq!(tables.active_username("Sales").as_deref(), Some("a@acme.com"));
    assert_eq!(store.active_username().unwrap().as_deref(), Some("a@acme.com"));
}

#[test]
fn a_database_without_slam_or_that_the_login_cannot_open_is_not_installed() {
    let (fake, opener) = fake();
    fake.tables.create_bare("Bare");
    for database in ["Bare", "Missing"] {
        let error = opener.open(Some(database)).unwrap().list().unwrap_err();
        assert!(matches!(&error, StoreError::NotInstalled { store, .. } if store.ends_with(database)), "{error:?}");
    }
    // The server's own words travel with it: "cannot open" also means offline or single-user.
    let error = opener.open(Some("Missing")).unwrap().list().unwrap_err();
    assert!(with_causes(&error).contains("Cannot open database \"Missing\""), "{}", with_causes(&error));
}

#[test]
fn a_refused_login_says_so_without_the_password() {
    let (fake, _) = fake();
    let mut settings = fake.settings.clone();
    settings.auth = SqlAuth::Login { user: "intruder".into(), password: "wrong-password-123".to_string().into() };
    let opener = SqlServerOpener::new(settings).unwrap();
    let error = opener.open(Some("Sales")).unwrap().list().unwrap_err();
    let text = with_causes(&error);
    assert!(matches!(error, StoreError::Unreachable { .. }), "{error:?}");
    assert!(text.contains("Login failed for user 'intruder'"), "{text}");
    assert!(!text.contains("wrong-password-123"), "{text}");
}

#[test]
fn no_database_named_is_refused_with_what_to_pass() {
    let (_fake, opener) = fake();
    let error = opener.open(None).err().unwrap();
    assert!(with_causes(&error).contains("--database"), "{error:?}");
}

#[test]
fn check_reports_the_server_version_and_a_missing_install() {
    let (fake, opener) = fake();
    let tables = &fake.tables;
    let report = opener.check(Some("Sales")).unwrap();
    assert!(report.version.starts_with("Microsoft SQL Server 2022"), "{report:?}");
    assert_eq!(report.installed, Some(true));
    tables.create_bare("Bare");
    assert_eq!(opener.check(Some("Bare")).unwrap().installed, Some(false));
    assert!(matches!(opener.check(Some("Missing")), Err(StoreError::NotInstalled { .. })));
}

#[test]
fn the_whole_session_is_encrypted_when_mandatory_and_only_a_trusted_server_is_accepted() {
    let (fake, _) = fake();
    let mut settings = fake.settings.clone();
    settings.encrypt = Encrypt::Mandatory;
    let mut untrusted = settings.clone();
    untrusted.ca_file = None;
    untrusted.trust_server_certificate = false;
    let refused = SqlServerOpener::new(untrusted).unwrap().open(Some("Sales")).unwrap().list().unwrap_err();
    assert!(matches!(refused, StoreError::Unreachable { .. }), "an unknown CA is refused: {refused:?}");
    let opener = SqlServerOpener::new(settings).unwrap();
    let mut store = opener.open(Some("Sales")).unwrap();
    store.save_and_activate(&conformance::record("tls@acme.com"), &conformance::log("add")).unwrap();
    assert!(store.get("tls@acme.com").unwrap().is_some());
    assert!(fake.server.logins().iter().all(|l| l.encrypted));
}

#[test]
fn every_statement_passes_the_t_sql_gate() {
    let mut statements: Vec<(&str, String)> = sql::ALL.iter().map(|(n, s)| (*n, s.to_string())).collect();
    statements.push(("session_setup", sql::session_setup(10_000)));
    for (name, text) in statements {
        let problems = slam_tsql::check(&text);
        assert!(problems.is_empty(), "{name}: {problems:?}\n{text}");
    }
}

#[test]
fn the_widths_the_store_cuts_to_are_the_install_scripts() {
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sql/slam-install.sql")).unwrap();
    for (column, width) in [
        ("Caller", sql::CALLER_WIDTH),
        ("Message", sql::MESSAGE_WIDTH),
        ("LastTestMessage", sql::LAST_TEST_MESSAGE_WIDTH),
    ] {
        let declared = script
            .lines()
            .find_map(|line| line.trim().strip_prefix(column).filter(|rest| rest.starts_with(' ')))
            .unwrap_or_else(|| panic!("{column} is not declared in slam-install.sql"));
        assert!(declared.trim_start().starts_with(&format!("NVARCHAR({width})")), "{column}: {declared}");
    }
}
