//! The behaviour every [`Store`] must have, written once.
//!
//! `run_all` takes a factory of empty stores. The SQLite tests call it; so do the SQL
//! Server store's tests, over TDS against the test kit's fake server always, and
//! against a real server when `SLAM_TEST_MSSQL` names one.
//! Panics on the first violation, naming it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::{ConnectionRecord, LogEntry, Store, StoreError, TestResult};

pub fn record(username: &str) -> ConnectionRecord {
    ConnectionRecord {
        username: username.to_string(),
        auth_method: "jwt_bearer".into(),
        domain: "acme.my".into(),
        environment_name: Some("prod".into()),
        api_version: 60,
        key_name: Some("acme-prod".into()),
        consumer_key: Some("3MVG9xyz".into()),
        password_sealed: None,
        token_sealed: None,
        key_password_sealed: Some(vec![1, 2, 3, 0, 255]),
        instance_url: Some("https://acme.my.salesforce.com".into()),
        org_id: Some("00D000000000001AAA".into()),
        created_at: "2026-11-23T10:00:00Z".into(),
        updated_at: "2026-11-23T10:00:00Z".into(),
        last_test_at: Some("2026-11-23T10:00:00Z".into()),
        last_test_ok: Some(true),
        last_test_message: Some("ok".into()),
    }
}

pub fn log(operation: &str) -> LogEntry {
    LogEntry {
        at: "2026-11-23T10:00:01Z".into(),
        operation: operation.into(),
        username: None,
        caller: "test".into(),
        outcome: "ok".into(),
        error_number: None,
        message: operation.into(),
    }
}

/// Runs every check, each on a fresh store from `make`.
pub fn run_all(make: &mut dyn FnMut() -> Box<dyn Store>) {
    save_activates_and_replaces_keeping_created_at(make().as_mut());
    usernames_are_case_insensitive(make().as_mut());
    list_is_ordered(make().as_mut());
    activate_unknown_lists_known(make().as_mut());
    remove_active_clears_settings(make().as_mut());
    remove_inactive_keeps_settings(make().as_mut());
    record_test_updates_only_that_row(make().as_mut());
    every_change_is_logged(make().as_mut());
    failed_operations_change_nothing(make().as_mut());
}

fn save_activates_and_replaces_keeping_created_at(s: &mut dyn Store) {
    assert_eq!(s.active_username().unwrap(), None, "a new store has no active connection");
    let first = record("a@acme.com");
    assert!(!s.save_and_activate(&first, &log("add")).unwrap().replaced);
    assert_eq!(s.get("a@acme.com").unwrap().as_ref(), Some(&first));
    assert_eq!(s.active_username().unwrap().as_deref(), Some("a@acme.com"));

    let mut second = record("a@acme.com");
    second.auth_method = "security_token".into();
    second.key_name = None;
    second.password_sealed = Some(vec![9; 40]);
    second.created_at = "2027-01-01T00:00:00Z".into();
    second.updated_at = "2027-01-01T00:00:00Z".into();
    assert!(s.save_and_activate(&second, &log("add")).unwrap().replaced, "re-adding replaces");
    let stored = s.get("a@acme.com").unwrap().unwrap();
    assert_eq!(stored.created_at, first.created_at, "created_at survives a replace");
    assert_eq!(stored.updated_at, second.updated_at);
    assert_eq!(stored.auth_method, "security_token");
    assert_eq!(stored.key_name, None);
    assert_eq!(stored.password_sealed, second.password_sealed);
    assert_eq!(s.list().unwrap().len(), 1);
}

fn usernames_are_case_insensitive(s: &mut dyn Store) {
    s.save_and_activate(&record("Mixed@Acme.com"), &log("add")).unwrap();
    assert!(s.get("mixed@acme.com").unwrap().is_some());
    assert!(s.save_and_activate(&record("MIXED@ACME.COM"), &log("add")).unwrap().replaced);
    assert_eq!(s.list().unwrap().len(), 1);
    s.save_and_activate(&record("other@acme.com"), &log("add")).unwrap();
    s.activate("MIXED@acme.COM", &log("use")).unwrap();
    assert_eq!(s.active_username().unwrap().as_deref(), Some("MIXED@ACME.COM"));
}

fn list_is_ordered(s: &mut dyn Store) {
    for u in ["c@x.com", "A@x.com", "b@x.com"] {
        s.save_and_activate(&record(u), &log("add")).unwrap();
    }
    let names: Vec<_> = s.list().unwrap().into_iter().map(|r| r.username).collect();
    assert_eq!(names, ["A@x.com", "b@x.com", "c@x.com"]);
}

fn activate_unknown_lists_known(s: &mut dyn Store) {
    s.save_and_activate(&record("one@x.com"), &log("add")).unwrap();
    s.save_and_activate(&record("two@x.com"), &log("add")).unwrap();
    match s.activate("three@x.com", &log("use")) {
        Err(StoreError::NotFound { known, .. }) => assert_eq!(known, ["one@x.com", "two@x.com"]),
        other => panic!("activating an unknown user must fail with NotFound, got {other:?}"),
    }
    assert_eq!(s.active_username().unwrap().as_deref(), Some("two@x.com"), "a failed activate changes nothing");
    s.activate("one@x.com", &log("use")).unwrap();
    assert_eq!(s.active_username().unwrap().as_deref(), Some("one@x.com"));
}

fn remove_active_clears_settings(s: &mut dyn Store) {
    s.save_and_activate(&record("a@x.com"), &log("add")).unwrap();
    assert!(s.remove("a@x.com", &log("remove")).unwrap().was_active);
    assert_eq!(s.active_username().unwrap(), None);
    assert!(s.get("a@x.com").unwrap().is_none());
    assert!(matches!(s.remove("a@x.com", &log("remove")), Err(StoreError::NotFound { .. })));
}

fn remove_inactive_keeps_settings(s: &mut dyn Store) {
    s.save_and_activate(&record("a@x.com"), &log("add")).unwrap();
    s.save_and_activate(&record("b@x.com"), &log("add")).unwrap();
    assert!(!s.remove("a@x.com", &log("remove")).unwrap().was_active);
    assert_eq!(s.active_username().unwrap().as_deref(), Some("b@x.com"));
}

fn record_test_updates_only_that_row(s: &mut dyn Store) {
    s.save_and_activate(&record("a@x.com"), &log("add")).unwrap();
    s.save_and_activate(&record("b@x.com"), &log("add")).unwrap();
    let failed = TestResult {
        at: "2026-12-01T00:00:00Z".into(),
        ok: false,
        message: "INVALID_LOGIN".into(),
        instance_url: None,
        org_id: None,
    };
    s.record_test("a@x.com", &failed, &log("test")).unwrap();
    let a = s.get("a@x.com").unwrap().unwrap();
    assert_eq!(a.last_test_ok, Some(false));
    assert_eq!(a.last_test_message.as_deref(), Some("INVALID_LOGIN"));
    assert_eq!(a.instance_url.as_deref(), Some("https://acme.my.salesforce.com"), "a failed test keeps the URL");
    let passed = TestResult {
        at: "2026-12-02T00:00:00Z".into(),
        ok: true,
        message: "ok".into(),
        instance_url: Some("https://new.my.salesforce.com".into()),
        org_id: Some("00D000000000002AAA".into()),
    };
    s.record_test("a@x.com", &passed, &log("test")).unwrap();
    let a = s.get("a@x.com").unwrap().unwrap();
    assert_eq!(a.instance_url.as_deref(), Some("https://new.my.salesforce.com"));
    assert_eq!(s.get("b@x.com").unwrap().unwrap(), record("b@x.com"), "other rows untouched");
    assert!(matches!(s.record_test("nobody@x.com", &passed, &log("test")), Err(StoreError::NotFound { .. })));
}

fn every_change_is_logged(s: &mut dyn Store) {
    s.save_and_activate(&record("a@x.com"), &log("add_connection")).unwrap();
    s.activate("a@x.com", &log("use_connection_username")).unwrap();
    s.append_log(&log("failed_thing")).unwrap();
    s.remove("a@x.com", &log("remove_connection")).unwrap();
    let ops: Vec<_> = s.recent_log(10).unwrap().into_iter().map(|l| l.operation).collect();
    assert_eq!(ops, ["remove_connection", "failed_thing", "use_connection_username", "add_connection"]);
    assert_eq!(s.recent_log(2).unwrap().len(), 2);
}

fn failed_operations_change_nothing(s: &mut dyn Store) {
    s.save_and_activate(&record("a@x.com"), &log("add")).unwrap();
    let before = (s.list().unwrap(), s.active_username().unwrap(), s.recent_log(100).unwrap());
    let _ = s.activate("zzz@x.com", &log("use"));
    let _ = s.remove("zzz@x.com", &log("remove"));
    let after = (s.list().unwrap(), s.active_username().unwrap(), s.recent_log(100).unwrap());
    assert_eq!(before, after, "a failed operation must not change rows, settings or the log");
}
