//! The worker with `store = "sqlserver"`, end to end: `slam` sends the operation
//! and its database over the real pipe, the worker keeps the connection in that
//! database's SLAM tables through tiberius (TLS, a SQL login read from a file),
//! and the fake SQL Server holds the rows a DBA would `SELECT`.

use crate::support::{KEY_PASS, USER, World};
use slam_store::mssql::fake::{SlamTables, WORKER_LOGIN};
use slam_testkit::tds::{FakeSqlServer, Tls};
use slam_worker::config::SqlServerSection;
use std::process::{Command, Stdio};

fn slam(pipe: &str, args: &[&str]) -> crate::support::Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slam"));
    cmd.args(["--pipe", pipe]).args(args);
    #[cfg(windows)]
    cmd.args(["--worker-account", &slam_windows::current_user_sid().unwrap()]);
    for var in ["SLAM_DATA_DIR", "SLAM_PIPE", "SLAM_DATABASE", "SLAM_PASSWORD", "SLAM_TOKEN"] {
        cmd.env_remove(var);
    }
    cmd.env("SLAM_KEY_PASSWORD", KEY_PASS).env("SLAM_LOG", "off").stdin(Stdio::null());
    crate::support::run(cmd)
}

#[test]
fn through_the_worker_connections_live_in_the_callers_sql_server_database() {
    let w = World::new();
    let tables = SlamTables::new();
    tables.install("Sales");
    tables.create_bare("Staging");
    let sql = FakeSqlServer::start(tables.clone(), Tls::Required).unwrap();
    let password_file = w.slam.data_dir().join("sql-password.txt");
    std::fs::write(&password_file, "Worker-Sql-Pw-1\n").unwrap();
    let ca = sql.write_ca_file(w.slam.data_dir()).unwrap();

    let mut settings = slam_worker::WorkerSettings {
        data_dir: w.slam.data_dir().to_path_buf(),
        pipe: if cfg!(windows) {
            format!("speediful-slam-sqlstore-{}", std::process::id())
        } else {
            w.slam.data_dir().join("sql.sock").to_string_lossy().into_owned()
        },
        allowed_clients: Vec::new(),
        store: "sqlserver".into(),
        sqlserver: SqlServerSection {
            server: format!("127.0.0.1,{}", sql.addr().port()),
            authentication: "sql".into(),
            user: WORKER_LOGIN.into(),
            password_file: password_file.to_string_lossy().into_owned(),
            encrypt: "mandatory".into(),
            // SChannel wants revocation data for a CA file (see the store's tests).
            ca_file: if cfg!(windows) { String::new() } else { ca.to_string_lossy().into_owned() },
            trust_server_certificate: cfg!(windows),
            ..SqlServerSection::default()
        },
        ..slam_worker::WorkerSettings::default()
    };
    settings.salesforce.ca_file = w.ca_file.to_string_lossy().into_owned();
    settings.salesforce.resolve = vec![w.fake.resolve_spec()];
    settings.salesforce.timeout_seconds = 5;
    let worker = slam_worker::Background::start(settings).unwrap();
    let pipe = worker.address().to_string();

    let mut add = vec!["--database", "Sales", "add-connection"];
    let flags = w.jwt_flags();
    add.extend(flags.iter().map(String::as_str));
    let added = slam(&pipe, &add);
    assert_eq!(added.code, 0, "{}", added.stderr);

    // What a DBA sees in Sales: the active connection and who did it.
    assert_eq!(tables.active_username("Sales").as_deref(), Some(USER));
    let log = tables.log("Sales");
    let (operation, caller, outcome) = log.last().unwrap();
    assert_eq!((operation.as_str(), outcome.as_str()), ("add_connection", "ok"), "{log:?}");
    assert!(caller.contains("db Sales") && caller.contains("verified peer"), "{caller}");
    let sealed = tables.sealed_bytes("Sales");
    assert!(!sealed.is_empty(), "the key passphrase is stored, sealed");
    assert!(!sealed.windows(KEY_PASS.len()).any(|w| w == KEY_PASS.as_bytes()), "never in clear");

    let listed = slam(&pipe, &["--database", "Sales", "--format", "json", "list-connections"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains(USER), "{}", listed.stdout);

    // A database without SLAM, and no database at all: each says what to do.
    let bare = slam(&pipe, &["--database", "Staging", "list-connections"]);
    assert!(bare.stderr.contains("50009") && bare.stderr.contains("slam-install.sql"), "{}", bare.stderr);
    let none = slam(&pipe, &["list-connections"]);
    assert!(none.stderr.contains("50005") && none.stderr.contains("--database"), "{}", none.stderr);

    // The worker's sessions are the SQL login's, named, encrypted; the password was
    // read from its file and never shown.
    let logins = sql.logins();
    assert!(logins.iter().all(|l| l.user.as_deref() == Some(WORKER_LOGIN) && l.password_given && l.encrypted));
    assert!(logins.iter().all(|l| l.app_name == "Speediful SLAM"));
    for run in [&added, &listed, &bare, &none] {
        assert!(!run.stderr.contains("Worker-Sql-Pw-1") && !run.stdout.contains("Worker-Sql-Pw-1"));
    }
}
