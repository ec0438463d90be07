//! The store behaviour suite against a real SQL Server, when `SLAM_TEST_MSSQL`
//! names one; otherwise these tests say they did not run and pass.
//!
//! `SLAM_TEST_MSSQL` is `key=value;` pairs: `server` (required), `database`
//! (required, and it must start with `slam_test`: the suite empties its SLAM
//! tables before every check), `user` and `password` (SQL authentication; without
//! them Windows authentication), `encrypt` (`strict`, `mandatory`, `optional`;
//! default `mandatory`), `trust_server_certificate` (`true` for a test server's
//! self-signed certificate). How to run it: docs/sql-server-store.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::conformance;
use std::collections::BTreeMap;

fn settings_from_env() -> Option<(SqlServerSettings, String)> {
    let text = std::env::var("SLAM_TEST_MSSQL").ok().filter(|t| !t.trim().is_empty())?;
    let pairs: BTreeMap<String, String> = text
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let server = ServerAddress::parse(pairs.get("server").expect("SLAM_TEST_MSSQL needs server=")).unwrap();
    let database = pairs.get("database").expect("SLAM_TEST_MSSQL needs database=").clone();
    assert!(
        database.to_ascii_lowercase().starts_with("slam_test"),
        "SLAM_TEST_MSSQL: the database must be a scratch one named slam_test...: the suite empties its SLAM tables"
    );
    let auth = match (pairs.get("user"), pairs.get("password")) {
        (Some(user), Some(password)) => {
            SqlAuth::Login { user: user.clone(), password: secrecy::SecretString::from(password.clone()) }
        }
        _ => SqlAuth::Integrated,
    };
    let encrypt = Encrypt::parse(pairs.get("encrypt").map_or("mandatory", String::as_str)).unwrap();
    let mut settings = SqlServerSettings::new(server, auth, encrypt);
    settings.trust_server_certificate = pairs.get("trust_server_certificate").is_some_and(|v| v == "true");
    Some((settings, database))
}

/// Empties the SLAM tables of the scratch database through a session of its own.
fn empty_tables(settings: &SqlServerSettings, database: &str) {
    let batch = [ScriptBatch {
        text: "DELETE FROM dbo.SLAM_Connections; DELETE FROM dbo.SLAM_Log; \
               UPDATE dbo.SLAM_Settings SET Username = NULL, UpdatedAt = NULL;",
        first_line: 1,
        repeat: 1,
    }];
    run_script(settings, database, &batch, "SELECT N'emptied', N'yes';", "", &mut |_, _| {}).unwrap();
}

#[test]
fn a_real_sql_server_passes_the_conformance_suite() {
    let Some((settings, database)) = settings_from_env() else {
        eprintln!("SLAM_TEST_MSSQL is not set: the suite ran against the fake TDS server only");
        return;
    };
    let opener = SqlServerOpener::new(settings.clone()).unwrap();
    let report = opener.check(Some(&database)).unwrap();
    assert_eq!(report.installed, Some(true), "run sql/slam-install.sql in {database} first");
    conformance::run_all(&mut || {
        empty_tables(&settings, &database);
        opener.open(Some(&database)).unwrap()
    });
}

#[test]
fn a_real_sql_server_reports_a_held_lock_as_locked() {
    let Some((mut settings, database)) = settings_from_env() else {
        eprintln!("SLAM_TEST_MSSQL is not set: skipped");
        return;
    };
    settings.lock_timeout = Duration::from_millis(500);
    empty_tables(&settings, &database);
    let opener = SqlServerOpener::new(settings.clone()).unwrap();
    let mut store = opener.open(Some(&database)).unwrap();
    store.save_and_activate(&conformance::record("lock@acme.com"), &conformance::log("add")).unwrap();
    // A DBA's open transaction: a second session holds an exclusive table lock
    // while the store tries to write.
    let holder = SqlServerOpener::new(settings).unwrap();
    hold_table_lock(&holder, &database, || {
        let error = store.activate("lock@acme.com", &conformance::log("use")).unwrap_err();
        assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
    });
}

/// Runs `while_held` while another session holds `TABLOCKX` on `SLAM_Settings`.
fn hold_table_lock(opener: &SqlServerOpener, database: &str, while_held: impl FnOnce()) {
    let shared = opener.shared.clone();
    let database = database.to_string();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let store = shared.settings.store_name(&database);
        let worker = shared.clone();
        shared
            .block(&store, async move {
                let mut client = open_session(&worker.settings, Some(&database)).await?;
                batch(
                    &mut client,
                    "locking",
                    "BEGIN TRANSACTION; SELECT TOP (1) Id FROM dbo.SLAM_Settings WITH (TABLOCKX, HOLDLOCK);",
                )
                .await?;
                let _ = locked_tx.send(());
                let _ = tokio::task::spawn_blocking(move || release_rx.recv()).await;
                batch(&mut client, "unlocking", sql::ROLLBACK).await
            })
            .unwrap();
    });
    locked_rx.recv().unwrap();
    while_held();
    release_tx.send(()).unwrap();
    holder.join().unwrap();
}
