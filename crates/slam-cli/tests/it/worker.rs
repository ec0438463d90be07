//! `slam` through the worker: the same operations as `--local`, sent over the real
//! pipe (a Unix socket on Linux, the named pipe under Wine) to a worker running in
//! this test process, against the fake Salesforce.
//!
//! What these prove: every operation reaches the worker and comes back printed
//! exactly as `--local` prints it; a connection test always logs in (the worker's
//! token cache never stands in for one) while unlocked keys are kept; a missing
//! worker is reported with what to do.

use crate::support::{KEY_PASS, USER, World};
use crate::support::{Run, run};
use slam_testkit::User;
use slam_worker::WorkerSettings;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const SOAP_USER: &str = "soap-worker@acme.com";
const SOAP_PASSWORD: &str = "Worker-Pa55&<xml>";
const SOAP_TOKEN: &str = "WORKERTOKEN42";

/// A worker serving the World's data directory on its own pipe, on a thread of
/// this process.
struct TestWorker {
    _running: slam_worker::Background,
    address: String,
}

fn unique_pipe(dir: &std::path::Path) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    if cfg!(windows) {
        format!("speediful-slam-test-{}-{n}", std::process::id())
    } else {
        dir.join(format!("w{n}.sock")).to_string_lossy().into_owned()
    }
}

impl TestWorker {
    fn start(w: &World, cache_tokens: bool) -> Self {
        Self::start_with(w, cache_tokens, |_| {})
    }

    fn start_with(w: &World, cache_tokens: bool, adjust: impl FnOnce(&mut WorkerSettings)) -> Self {
        let mut settings = WorkerSettings {
            data_dir: w.slam.data_dir().to_path_buf(),
            pipe: unique_pipe(w.slam.data_dir()),
            allowed_clients: Vec::new(),
            cache_tokens,
            ..WorkerSettings::default()
        };
        settings.salesforce.ca_file = w.ca_file.to_string_lossy().into_owned();
        settings.salesforce.resolve = vec![w.fake.resolve_spec()];
        settings.salesforce.timeout_seconds = 5;
        adjust(&mut settings);
        let background = slam_worker::Background::start(settings).unwrap();
        let address = background.address().to_string();
        TestWorker { _running: background, address }
    }
}

/// `add-connection` of the World's JWT connection (passphrase in SLAM_KEY_PASSWORD).
fn add_jwt_args(w: &World) -> Vec<String> {
    let mut args = vec!["add-connection".to_string()];
    args.extend(w.jwt_flags());
    args
}

/// `slam --format json ARGS` through the worker at `pipe`, logs off so that
/// only what the user sees is compared.
fn via_worker(pipe: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slam"));
    cmd.args(["--pipe", pipe, "--format", "json"]).args(args);
    // The test's worker runs as the test's own account, not as the service account
    // the CLI trusts by default on Windows (on Unix it owns the socket's directory,
    // which the default trusts).
    #[cfg(windows)]
    cmd.args(["--worker-account", &slam_windows::current_user_sid().unwrap()]);
    finish(cmd, env)
}

/// The same, in-process (`--local`) on the same data directory and fake Salesforce.
fn local(w: &World, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slam"));
    cmd.args(["--local", "--format", "json", "--http-timeout", "5", "--data-dir"]).arg(w.slam.data_dir());
    cmd.arg("--ca-file").arg(&w.ca_file).arg("--resolve").arg(w.fake.resolve_spec()).args(args);
    finish(cmd, env)
}

fn finish(mut cmd: Command, env: &[(&str, &str)]) -> Run {
    for var in ["SLAM_DATA_DIR", "SLAM_KEY_PASSWORD", "SLAM_PASSWORD", "SLAM_TOKEN", "SLAM_PIPE", "SLAM_RESOLVE"] {
        cmd.env_remove(var);
    }
    cmd.env("SLAM_LOG", "off").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd)
}

/// Output with what legitimately differs between two runs (durations) blanked.
fn normalised(run: &Run) -> (i32, String, String) {
    let blank = |text: &str| {
        let mut out = String::new();
        let mut rest = text;
        // "in 123 ms" and "elapsed_ms":123 carry timings.
        while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
            let (head, tail) = rest.split_at(i);
            let digits = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
            let after = &tail[digits..];
            out.push_str(head);
            if after.starts_with(" ms") || head.trim_end().ends_with("\"elapsed_ms\":") {
                out.push('N');
            } else {
                out.push_str(&tail[..digits]);
            }
            rest = after;
        }
        out.push_str(rest);
        out
    };
    (run.code, blank(&run.stdout), blank(&run.stderr))
}

fn assert_same(worker: &Run, local: &Run, what: &str) {
    assert_eq!(normalised(worker), normalised(local), "{what}: the worker and --local printed differently");
}

#[test]
fn every_operation_runs_through_the_worker_and_prints_as_local_does() {
    let w = World::new();
    w.fake.add_user(User::new(SOAP_USER, &w.prod).with_password(SOAP_PASSWORD).with_security_token(SOAP_TOKEN));
    let worker = TestWorker::start(&w, true);
    let pipe = worker.address.as_str();
    let key_env = [("SLAM_KEY_PASSWORD", KEY_PASS)];
    let soap_env = [("SLAM_PASSWORD", SOAP_PASSWORD), ("SLAM_TOKEN", SOAP_TOKEN)];

    let ping = via_worker(pipe, &["ping"], &[]).ok();
    assert_eq!(ping.row()["mode"], "worker", "{}", ping.stdout);
    assert!(ping.stderr.contains("SLAM worker") && ping.stderr.contains("up for"), "{}", ping.stderr);
    assert_eq!(local(&w, &["ping"], &[]).ok().row()["mode"], "in-process");

    // Reads of the same data directory print identically.
    for args in [&["list-keys"][..], &["list-connections"], &["settings"]] {
        assert_same(&via_worker(pipe, args, &[]).ok(), &local(&w, args, &[]).ok(), args[0]);
    }
    // A login that stores nothing, both ways; and a failure, both ways.
    let soap = ["test-login", "--username", SOAP_USER, "--domain", "acme.my"];
    let through = via_worker(pipe, &soap, &soap_env).ok();
    assert!(through.warnings().iter().any(|w| w.contains("retiring")), "{}", through.stderr);
    assert_same(&through, &local(&w, &soap, &soap_env).ok(), "test-login");
    let missing = ["test-connection", "--username", "nobody@acme.com"];
    assert_same(&via_worker(pipe, &missing, &[]).fails_with(50206), &local(&w, &missing, &[]), "an error");

    // Changes made through the worker are what --local then reads.
    let setup = via_worker(pipe, &["setup-jwt", "--key-name", "via-worker"], &[("SLAM_KEY_PASSWORD", KEY_PASS)]).ok();
    assert_eq!(setup.row()["key_name"], "via-worker", "{}", setup.stdout);
    assert!(w.slam.key_file("via-worker").exists());
    let add = add_jwt_args(&w);
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let added = via_worker(pipe, &add, &key_env).ok();
    assert_eq!(added.row()["username"], USER);
    let add_soap = ["add-connection", "--username", SOAP_USER, "--domain", "acme.my"];
    via_worker(pipe, &add_soap, &soap_env).ok();
    assert_same(
        &via_worker(pipe, &["list-connections"], &[]).ok(),
        &local(&w, &["list-connections"], &[]).ok(),
        "list",
    );
    via_worker(pipe, &["use-connection-username", "--username", USER], &[]).ok();
    assert_eq!(local(&w, &["settings"], &[]).ok().row()["username"], USER);
    let tested = via_worker(pipe, &["test-connection", "--username", USER], &[]).ok();
    assert!(tested.stderr.contains("Connection test passed"), "{}", tested.stderr);
    let removed = via_worker(pipe, &["remove-connection", "--username", USER], &[]).ok();
    assert!(removed.warnings().iter().any(|w| w.contains("was the active connection")), "{}", removed.stderr);
    assert_eq!(local(&w, &["settings"], &[]).ok().row()["username"], serde_json::Value::Null);
    let gone = via_worker(pipe, &["remove-jwt", "--key-name", "via-worker"], &[]).ok();
    assert!(gone.warnings().iter().any(|w| w.contains("revoke")), "{}", gone.stderr);
    assert!(!w.slam.key_file("via-worker").exists());

    // Every operation the worker knows was exercised above.
    for operation in slam_protocol::catalogue::OPERATIONS {
        let flag = operation.cli_name();
        assert!(
            [
                "ping",
                "list-keys",
                "list-connections",
                "settings",
                "test-login",
                "test-connection",
                "setup-jwt",
                "add-connection",
                "use-connection-username",
                "remove-connection",
                "remove-jwt"
            ]
            .contains(&flag.as_str()),
            "{} is not exercised through the worker",
            operation.name
        );
    }
}

#[test]
fn a_test_always_logs_in_so_a_revoked_approval_fails_at_once_and_keys_stay_unlocked() {
    let w = World::new();
    let worker = TestWorker::start(&w, true);
    let pipe = worker.address.as_str();
    let logins = || w.fake.requests().iter().filter(|r| r.path == "/services/oauth2/token").count();
    let add = add_jwt_args(&w);
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    via_worker(pipe, &add, &[("SLAM_KEY_PASSWORD", KEY_PASS)]).ok();
    let after_add = logins();
    assert!(after_add >= 1);

    for n in 1..=3 {
        let run = via_worker(pipe, &["test-connection", "--username", USER], &[]).ok();
        assert!(run.stderr.contains("Connection test passed"), "{}", run.stderr);
        assert_eq!(logins(), after_add + n, "every test performs a login, as the spec says");
    }
    let ping = via_worker(pipe, &["ping"], &[]).ok();
    assert_eq!(ping.row()["cached_sessions"], 1, "the session is kept for other work");
    assert_eq!(ping.row()["unlocked_keys"], 1, "the encrypted key was unlocked once and kept");

    // The administrator withdraws the user's approval of the app. A session from the
    // last test still works, but the next test must fail, at once.
    let cert = std::fs::read_to_string(w.slam.cert_file("acme-prod")).unwrap();
    w.fake.add_app(slam_testkit::App::new(w.consumer_key.clone(), &w.prod, cert.clone()));
    via_worker(pipe, &["test-connection", "--username", USER], &[]).fails_with(50312);
    assert_eq!(via_worker(pipe, &["ping"], &[]).ok().row()["cached_sessions"], 0, "a failed test drops it");
    w.fake.add_app(slam_testkit::App::new(w.consumer_key.clone(), &w.prod, cert).pre_authorize(USER));

    // The kept key never stands in for the passphrase: a wrong one is refused.
    let mut wrong = add.clone();
    wrong[0] = "test-login";
    via_worker(pipe, &wrong, &[("SLAM_KEY_PASSWORD", "not the passphrase")]).fails_with(50110);

    // A rotated keypair whose new certificate is not uploaded yet fails the test;
    // its old unlocked key is forgotten.
    via_worker(pipe, &["setup-jwt", "--key-name", "acme-prod", "--force"], &[("SLAM_KEY_PASSWORD", KEY_PASS)]).ok();
    assert_eq!(via_worker(pipe, &["ping"], &[]).ok().row()["unlocked_keys"], 0);
    let before = logins();
    via_worker(pipe, &["test-connection", "--username", USER], &[]).fails_with(50313);
    assert_eq!(logins(), before + 1, "the new key was tried with a real login");
    via_worker(pipe, &["remove-jwt", "--key-name", "acme-prod"], &[]).ok();
    assert_eq!(via_worker(pipe, &["ping"], &[]).ok().row()["unlocked_keys"], 0);
}

#[test]
fn without_the_token_cache_every_test_logs_in() {
    let w = World::new();
    let worker = TestWorker::start(&w, false);
    let pipe = worker.address.as_str();
    let logins = || w.fake.requests().iter().filter(|r| r.path == "/services/oauth2/token").count();
    let add = add_jwt_args(&w);
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    via_worker(pipe, &add, &[("SLAM_KEY_PASSWORD", KEY_PASS)]).ok();
    let before = logins();
    via_worker(pipe, &["test-connection", "--username", USER], &[]).ok();
    via_worker(pipe, &["test-connection", "--username", USER], &[]).ok();
    assert_eq!(logins(), before + 2);
    assert_eq!(via_worker(pipe, &["ping"], &[]).ok().row()["cached_sessions"], serde_json::Value::Null);
}

#[test]
fn no_worker_listening_is_reported_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = unique_pipe(dir.path());
    let run = via_worker(&pipe, &["list-keys"], &[]).fails_with(50407);
    assert!(run.stderr.contains("no SLAM worker listens on"), "{}", run.stderr);
    assert!(run.stderr.contains("slam-worker") && run.stderr.contains("--local"), "{}", run.stderr);
    assert_eq!(run.json()["error"]["code"], "SLAM_WORKER_UNAVAILABLE");
}

#[test]
fn local_only_flags_are_flagged_when_the_worker_runs_the_operation() {
    let w = World::new();
    let worker = TestWorker::start(&w, true);
    let run = via_worker(&worker.address, &["--proxy", "http://127.0.0.1:9", "list-keys"], &[]).ok();
    assert!(run.warnings().iter().any(|w| w.contains("--proxy") && w.contains("--local")), "{}", run.stderr);
}

#[test]
fn a_request_queued_behind_the_same_username_past_its_time_limit_never_runs() {
    let w = World::new();
    let worker = TestWorker::start_with(&w, false, |s| {
        s.request_timeout_seconds = 1;
        s.salesforce.timeout_seconds = 30;
    });
    let pipe = worker.address.clone();
    let add = add_jwt_args(&w);
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    via_worker(&pipe, &add, &[("SLAM_KEY_PASSWORD", KEY_PASS)]).ok();
    let logins = || w.fake.requests().iter().filter(|r| r.path == "/services/oauth2/token").count();
    let before = logins();
    let last_test = || local(&w, &["list-connections"], &[]).ok().row()["last_test_at"].clone();
    let tested_before = last_test();

    // Salesforce holds every answer: the first test stays inside its login for as
    // long as this test wants, whatever the machine's speed.
    w.fake.hang(true);
    let first = std::thread::spawn({
        let pipe = pipe.clone();
        move || via_worker(&pipe, &["test-connection", "--username", USER], &[])
    });
    // Wait for the event itself: the first test's login has reached Salesforce.
    let started = std::time::Instant::now();
    while logins() == before {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the first test never logged in");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = via_worker(&pipe, &["test-connection", "--username", USER], &[]).fails_with(50406);
    assert!(second.stderr.contains("did not run"), "{}", second.stderr);
    let first = first.join().unwrap().fails_with(50406);
    assert!(first.stderr.contains("goes on in the worker"), "{}", first.stderr);

    // Released, the first finishes in the background and records its test; the
    // second never starts.
    w.fake.hang(false);
    let started = std::time::Instant::now();
    while last_test() == tested_before {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the first test never completed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(logins(), before + 1, "only the first request logged in");
}
