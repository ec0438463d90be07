//! The worker end to end over a real Unix socket: every guarantee of
//! `slam_worker::serve` from the outside.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use slam_protocol::frame::{DEFAULT_MAX_FRAME, read_frame, write_frame};
use slam_protocol::{PROTOCOL_VERSION, Request, Response};
use slam_worker::{Background, WorkerSettings};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How a test wants its worker.
struct Setup {
    settings: WorkerSettings,
    idle_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    refuse_everyone: bool,
    refuse_first: usize,
}

/// The library's own `Background` worker on a socket in a fresh directory.
struct TestWorker {
    dir: tempfile::TempDir,
    socket: PathBuf,
    running: Option<Background>,
}

impl TestWorker {
    fn start(configure: impl FnOnce(&mut Setup)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("slam.sock");
        let mut setup = Setup {
            settings: WorkerSettings {
                data_dir: dir.path().to_path_buf(),
                pipe: socket.to_string_lossy().into_owned(),
                allowed_clients: Vec::new(),
                ..WorkerSettings::default()
            },
            idle_timeout: None,
            request_timeout: None,
            refuse_everyone: false,
            refuse_first: 0,
        };
        configure(&mut setup);
        let Setup { settings, idle_timeout, request_timeout, refuse_everyone, refuse_first } = setup;
        let running = Background::start_with(settings, move |bound| {
            bound.set_limits(idle_timeout, request_timeout);
            if refuse_everyone {
                bound.allow_only(Vec::new());
            }
            bound.refuse_first(refuse_first);
        })
        .unwrap();
        TestWorker { dir, socket, running: Some(running) }
    }

    fn connect(&self) -> UnixStream {
        let stream = UnixStream::connect(&self.socket).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream
    }

    fn send(&self, operation: &str, args: serde_json::Value) -> Vec<Response> {
        let mut stream = self.connect();
        let request = request(format!("{operation}-1"), operation, args);
        write_frame(&mut stream, &request, DEFAULT_MAX_FRAME).unwrap();
        read_all(&mut stream)
    }

    /// Stops the worker after the requests in flight; a panic on its thread fails
    /// the test here.
    fn stop(mut self) {
        drop(self.running.take());
    }
}

/// A request with this id, operation and arguments.
fn request(id: impl Into<String>, operation: &str, args: serde_json::Value) -> Request {
    Request {
        version: PROTOCOL_VERSION,
        id: id.into(),
        operation: operation.into(),
        args: serde_json::from_value(args).unwrap(),
        caller: Default::default(),
    }
}

fn read_all(stream: &mut UnixStream) -> Vec<Response> {
    let mut frames = Vec::new();
    while let Some(frame) = read_frame::<Response>(stream, slam_protocol::frame::MAX_RESPONSE_FRAME).unwrap() {
        let done = matches!(frame, Response::Done { .. });
        frames.push(frame);
        if done {
            break;
        }
    }
    frames
}

fn error_number(frames: &[Response]) -> Option<u32> {
    match frames.last() {
        Some(Response::Done { error, .. }) => error.as_ref().map(|e| e.number),
        _ => panic!("no done frame: {frames:?}"),
    }
}

#[test]
fn ping_and_setup_jwt_round_trip_with_ids() {
    let worker = TestWorker::start(|_| {});
    let ping = worker.send("ping", serde_json::json!({}));
    assert!(
        matches!(&ping[0], Response::Message { text, .. } if text.contains("SLAM worker") && text.contains("up for"))
    );
    let Response::ResultSet { columns, rows, .. } = &ping[1] else { panic!("{ping:?}") };
    let mode = columns.iter().position(|c| c.name == "mode").unwrap();
    assert_eq!(rows[0][mode], slam_protocol::Value::Text("worker".into()));
    assert_eq!(error_number(&ping), None);
    assert!(ping.iter().all(|f| f.id() == "ping-1"));

    let setup =
        worker.send("setup_jwt", serde_json::json!({"key_name": "via-worker", "password": "a long passphrase"}));
    assert_eq!(error_number(&setup), None, "{setup:?}");
    assert!(setup.iter().any(|f| matches!(f, Response::ResultSet { .. })));
    assert!(worker.dir.path().join("keys").join("via-worker.pem").exists());
    let again = worker.send("setup_jwt", serde_json::json!({"key_name": "via-worker"}));
    assert_eq!(error_number(&again), None, "a valid keypair is kept with a warning: {again:?}");
    assert_eq!(status(&again), "kept");
    worker.stop();
}

#[test]
fn unknown_operations_and_bad_frames_get_an_answer() {
    let worker = TestWorker::start(|_| {});
    assert_eq!(error_number(&worker.send("drop_everything", serde_json::json!({}))), Some(50401));

    let mut huge = worker.connect();
    huge.write_all(&u32::MAX.to_le_bytes()).unwrap();
    assert_eq!(error_number(&read_all(&mut huge)), Some(50405));

    let mut garbage = worker.connect();
    garbage.write_all(&5u32.to_le_bytes()).unwrap();
    garbage.write_all(b"{{{{{").unwrap();
    assert_eq!(error_number(&read_all(&mut garbage)), Some(50405));
    worker.stop();
}

#[test]
fn silent_and_vanishing_clients_cannot_hold_the_worker() {
    let worker = TestWorker::start(|s| s.idle_timeout = Some(Duration::from_millis(300)));
    let mut silent = worker.connect();
    let started = Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "the worker closes a silent connection");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    let mut half = worker.connect();
    half.write_all(&100u32.to_le_bytes()).unwrap();
    half.write_all(b"{\"version\":").unwrap();
    drop(half);
    assert_eq!(error_number(&worker.send("ping", serde_json::json!({}))), None, "still serving");
    worker.stop();
}

#[test]
fn dozens_of_clients_at_once() {
    let worker = std::sync::Arc::new(TestWorker::start(|_| {}));
    let clients: Vec<_> = (0..40)
        .map(|_| {
            let worker = worker.clone();
            std::thread::spawn(move || error_number(&worker.send("ping", serde_json::json!({}))))
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), None);
    }
}

#[test]
fn a_peer_that_is_not_allowed_is_refused_and_nothing_runs() {
    let worker = TestWorker::start(|s| s.refuse_everyone = true);
    let frames = worker.send("setup_jwt", serde_json::json!({"key_name": "planted"}));
    assert_eq!(frames.len(), 1, "nothing but the refusal: {frames:?}");
    assert_eq!(error_number(&frames), Some(50404));
    let keys = worker.dir.path().join("keys");
    let made: Vec<_> =
        std::fs::read_dir(&keys).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(made.is_empty(), "a refused request made {made:?}");
    worker.stop();
}

/// Connects `count` clients that send `request` (or nothing) and then neither read
/// nor close.
fn stalled_clients(worker: &TestWorker, count: usize, request: Option<&Request>) -> Vec<UnixStream> {
    (0..count)
        .map(|_| {
            let mut stream = worker.connect();
            if let Some(request) = request {
                write_frame(&mut stream, request, DEFAULT_MAX_FRAME).unwrap();
            }
            stream
        })
        .collect()
}

/// A ping's round trip, failing the test if it takes 5 s (the client's own limit).
fn timed_ping(worker: &TestWorker) -> Duration {
    let started = Instant::now();
    let mut stream = worker.connect();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write_frame(&mut stream, &request("p", "ping", serde_json::json!({})), DEFAULT_MAX_FRAME).unwrap();
    let frames = read_all(&mut stream);
    assert_eq!(error_number(&frames), None);
    started.elapsed()
}

#[test]
fn refused_peers_do_not_take_the_allowed_clients_slots() {
    // Two slots, 64 refused peers that send nothing: before, each held a slot for
    // the whole idle limit (10 s) and the ping waited behind them.
    let worker = TestWorker::start(|s| {
        s.settings.max_connections = 2;
        s.refuse_first = 64;
    });
    let _refused = stalled_clients(&worker, 64, None);
    let took = timed_ping(&worker);
    assert!(took < Duration::from_secs(1), "a ping behind 64 refused peers took {took:?}");
    worker.stop();
}

/// Makes the answer of `list_keys` larger than a socket's buffer: one real keypair
/// and `copies` copies of its files under other names.
fn plant_keys(worker: &TestWorker, copies: usize) {
    assert_eq!(error_number(&worker.send("setup_jwt", serde_json::json!({"key_name": "k0"}))), None);
    let keys = worker.dir.path().join("keys");
    for i in 1..=copies {
        for ext in ["pem", "crt"] {
            std::fs::copy(keys.join(format!("k0.{ext}")), keys.join(format!("k{i}.{ext}"))).unwrap();
        }
    }
}

#[test]
fn sixty_four_clients_that_stop_reading_do_not_stall_a_ping() {
    let worker = TestWorker::start(|_| {});
    plant_keys(&worker, 250);
    let big = request("big", "list_keys", serde_json::json!({}));
    let mut probe = worker.connect();
    write_frame(&mut probe, &big, DEFAULT_MAX_FRAME).unwrap();
    let answer: usize = read_all(&mut probe).iter().map(|f| serde_json::to_vec(f).unwrap().len()).sum();
    assert!(answer > 300_000, "the answer ({answer} bytes) must not fit in a socket buffer");

    let stalled = stalled_clients(&worker, 64, Some(&big));
    // Wait until every answer has begun to arrive (each operation is over and its
    // writer is stuck on a full buffer), so the ping measures the stalled writers,
    // not 64 key listings competing for the CPU.
    for stream in &stalled {
        let mut first = [0u8; 16];
        let (got, _) = rustix::net::recv(stream, &mut first, rustix::net::RecvFlags::PEEK).unwrap();
        assert!(got > 0);
    }
    let took = timed_ping(&worker);
    assert!(took < Duration::from_secs(1), "a ping behind 64 clients that stopped reading took {took:?}");
    drop(stalled);
    worker.stop();
}

#[test]
fn a_client_that_stops_reading_loses_its_connection_after_the_idle_limit() {
    // One slot, held by a client that stopped reading: before, it was held forever.
    let worker = TestWorker::start(|s| {
        s.settings.max_connections = 1;
        s.idle_timeout = Some(Duration::from_millis(300));
    });
    plant_keys(&worker, 250);
    let mut stalled = stalled_clients(&worker, 1, Some(&request("big", "list_keys", serde_json::json!({}))));
    std::thread::sleep(Duration::from_millis(100));
    let took = timed_ping(&worker);
    assert!(took < Duration::from_secs(3), "the ping waited {took:?} for the stalled client's slot");
    // The stalled client's answer was cut: reading it now ends before any `done`.
    let mut bytes = Vec::new();
    stalled[0].read_to_end(&mut bytes).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains(r#""type":"done""#), "the cut answer has no done frame");
    worker.stop();
}

#[test]
fn max_connections_makes_the_next_client_wait_for_a_slot() {
    let limit = Duration::from_millis(700);
    let worker = TestWorker::start(|s| {
        s.settings.max_connections = 2;
        s.idle_timeout = Some(limit);
    });
    let silent = stalled_clients(&worker, 2, None);
    let took = timed_ping(&worker);
    assert!(took >= limit - Duration::from_millis(100), "the third client was served at once ({took:?})");
    drop(silent);
    let silent = stalled_clients(&worker, 1, None);
    let took = timed_ping(&worker);
    assert!(took < limit, "a free slot was not used ({took:?})");
    drop(silent);
    worker.stop();
}

#[test]
fn max_operations_bounds_the_work_in_flight_but_not_ping() {
    // One operation at a time. The first setup_jwt is held inside the operation by
    // its key's file lock (taken here), so it outlives its caller's time limit and
    // keeps the only operation slot: a second, on another key, must never run.
    let worker = TestWorker::start(|s| {
        s.settings.max_operations = 1;
        s.request_timeout = Some(Duration::from_millis(300));
    });
    // The vault's folder, made as the vault makes it (a key generation here could
    // itself outlast the short limit on a loaded machine).
    let keys = worker.dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let lock = std::fs::File::create(keys.join(".first.lock")).unwrap();
    lock.lock().unwrap();
    let mut first = worker.connect();
    write_frame(&mut first, &request("a", "setup_jwt", serde_json::json!({"key_name": "first"})), DEFAULT_MAX_FRAME)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let second = worker.send("setup_jwt", serde_json::json!({"key_name": "second"}));
    let Some(Response::Done { error: Some(error), .. }) = second.last() else { panic!("{second:?}") };
    assert_eq!(error.number, 50406);
    assert!(error.message.contains("did not run"), "{}", error.message);
    assert!(timed_ping(&worker) < Duration::from_secs(1), "ping does not wait for an operation slot");
    let Some(Response::Done { error: Some(error), .. }) = read_all(&mut first).pop() else { panic!() };
    assert!(error.message.contains("goes on in the worker"), "{}", error.message);

    drop(lock);
    let started = Instant::now();
    while !keys.join("first.crt").exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "the first setup_jwt never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(!keys.join("second.crt").exists() && !keys.join("second.pem").exists(), "the cancelled request ran");
    worker.stop();
}

#[test]
fn a_request_over_its_time_limit_is_answered_with_a_timeout() {
    let worker = TestWorker::start(|s| s.request_timeout = Some(Duration::from_millis(1)));
    let frames = worker.send("setup_jwt", serde_json::json!({"key_name": "slow"}));
    assert_eq!(error_number(&frames), Some(50406));
    worker.stop();
}

#[test]
fn shutdown_finishes_requests_in_flight() {
    let worker = TestWorker::start(|_| {});
    let mut stream = worker.connect();
    let request = request("inflight", "setup_jwt", serde_json::json!({"key_name": "inflight"}));
    write_frame(&mut stream, &request, DEFAULT_MAX_FRAME).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let socket = worker.socket.clone();
    let stopper = std::thread::spawn(move || worker.stop());
    let frames = read_all(&mut stream);
    assert_eq!(error_number(&frames), None, "the request in flight completes: {frames:?}");
    stopper.join().unwrap();
    assert!(UnixStream::connect(&socket).is_err(), "no longer accepting");
}

/// The `status` column of a `setup_jwt` answer: created, replaced or kept.
fn status(frames: &[Response]) -> String {
    frames
        .iter()
        .find_map(|f| match f {
            Response::ResultSet { columns, rows, .. } => {
                let i = columns.iter().position(|c| c.name == "status")?;
                Some(rows[0][i].display())
            }
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn a_client_that_disconnects_mid_request_does_not_stop_the_operation() {
    let worker = TestWorker::start(|_| {});
    let mut stream = worker.connect();
    let request =
        request("gone", "setup_jwt", serde_json::json!({"key_name": "orphan", "password": "a long passphrase"}));
    write_frame(&mut stream, &request, DEFAULT_MAX_FRAME).unwrap();
    drop(stream);
    // The operation completes (nothing half-written), and the worker keeps serving.
    let started = Instant::now();
    while !worker.dir.path().join("keys").join("orphan.crt").exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "the orphaned operation never completed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(error_number(&worker.send("list_keys", serde_json::json!({}))), None);
    let again = worker.send("setup_jwt", serde_json::json!({"key_name": "orphan"}));
    assert_eq!(status(&again), "kept", "the keypair is whole and valid: {again:?}");
    worker.stop();
}

/// `slam-worker` itself: --check-config, --print-default-config, and the
/// foreground worker stopping cleanly on SIGINT.
mod binary {
    use super::*;
    use std::process::Command;

    fn slam_worker(args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_slam-worker"))
            .args(args)
            .env_remove("SLAM_DATA_DIR")
            .env_remove("SLAM_PIPE")
            .env_remove("SLAM_WORKER_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn check_config_names_what_is_wrong_and_passes_what_is_right() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("slam-worker.toml");
        let config_arg = config.to_str().unwrap();

        std::fs::write(&config, "request_timout_seconds = 5\n").unwrap();
        let (code, _, err) = slam_worker(&["--config", config_arg, "--check-config"]);
        assert_eq!(code, 1);
        assert!(err.contains("50409") && err.contains("request_timout_seconds"), "{err}");

        let missing = dir.path().join("nope");
        std::fs::write(
            &config,
            format!(
                "data_dir = '{}'\npipe = '{}'\n[salesforce]\nca_file = '{}'\n",
                missing.display(),
                dir.path().join("no-such-dir").join("s.sock").display(),
                dir.path().join("missing-ca.pem").display()
            ),
        )
        .unwrap();
        let (code, _, err) = slam_worker(&["--config", config_arg, "--check-config"]);
        assert_eq!(code, 1);
        for setting in ["`data_dir`", "[salesforce]", "`pipe`"] {
            assert!(err.contains(setting), "{setting} not reported:\n{err}");
        }

        std::fs::write(
            &config,
            format!("data_dir = '{}'\npipe = '{}'\n", dir.path().display(), dir.path().join("s.sock").display()),
        )
        .unwrap();
        let (code, out, err) = slam_worker(&["--config", config_arg, "--check-config"]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("valid"), "{err}");
        // A configuration every user may rewrite (to add a client, a proxy, a CA)
        // is reported, and the worker would not start on it.
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let (code, _, err) = slam_worker(&["--config", config_arg, "--check-config"]);
        assert_eq!(code, 1);
        assert!(err.contains("50007") && err.contains(config_arg) && err.contains("every user"), "{err}");
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let effective: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(effective["request_timeout_seconds"].as_integer(), Some(120), "defaults filled in:\n{out}");
        // Flags override the file.
        let (_, out, _) = slam_worker(&["--config", config_arg, "--pipe", "/tmp/other.sock", "--check-config"]);
        assert!(out.contains("pipe = \"/tmp/other.sock\""), "{out}");
        // An explicit file that does not exist is an error, not silent defaults.
        let (code, _, err) =
            slam_worker(&["--config", dir.path().join("absent.toml").to_str().unwrap(), "--check-config"]);
        assert_eq!(code, 1);
        assert!(err.contains("absent.toml"), "{err}");

        let (code, template, _) = slam_worker(&["--print-default-config"]);
        assert_eq!(code, 0);
        assert!(template.contains("[salesforce]") && template.contains("[log]"), "{template}");
    }

    /// Every secret a worker handles, through the real binary at `trace` level
    /// against the fake Salesforce: none may reach its log.
    #[test]
    fn no_secret_reaches_the_workers_log_even_at_trace_level() {
        use slam_testkit::{App, FakeSalesforce, Org, User};
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSalesforce::start();
        let prod = Org::production("acme");
        fake.add_org(prod.clone());
        let (password, token, key_pass) = ("Trace-Pa55word-Secret", "TRACETOKENSECRET77", "trace key passphrase & <x>");
        fake.add_user(User::new("soap@acme.com", &prod).with_password(password).with_security_token(token));
        fake.add_user(User::new("jwt@acme.com", &prod));
        let ca = fake.write_ca_file(dir.path());
        let config = dir.path().join("worker.toml");
        std::fs::write(
            &config,
            format!(
                "[salesforce]\nca_file = '{}'\nresolve = ['{}']\ntimeout_seconds = 5\n[log]\nlevel = 'trace'\n",
                ca.display(),
                fake.resolve_spec()
            ),
        )
        .unwrap();
        let socket = dir.path().join("trace.sock");
        let log = dir.path().join("worker.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_slam-worker"))
            .args(["--config", config.to_str().unwrap(), "--data-dir", dir.path().to_str().unwrap()])
            .args(["--pipe", socket.to_str().unwrap()])
            .env_remove("SLAM_LOG")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the worker exited ({status:?}): {}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            assert!(started.elapsed() < Duration::from_secs(20), "the worker did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let socket = socket.to_str().unwrap().to_string();
        let send = |operation: &str, args: serde_json::Value| {
            let done = slam_client::call(&socket, &request("t", operation, args), &Default::default(), |_| {});
            done.unwrap().map(|e| e.number)
        };
        let soap = |password: &str| serde_json::json!({"username": "soap@acme.com", "password": password, "token": token, "domain": "acme.my"});
        assert_eq!(send("setup_jwt", serde_json::json!({"key_name": "trace", "password": key_pass})), None);
        let cert = std::fs::read_to_string(dir.path().join("keys/trace.crt")).unwrap();
        let consumer_key = App::random_consumer_key();
        fake.add_app(App::new(consumer_key.clone(), &prod, cert).pre_authorize("jwt@acme.com"));
        assert_eq!(send("add_connection", soap(password)), None);
        assert_eq!(send("add_connection", soap("Wrong-Trace-Secret")), Some(50320));
        assert_eq!(send("test_connection", serde_json::json!({"username": "soap@acme.com"})), None);
        let jwt = serde_json::json!({"username": "jwt@acme.com", "auth_method": "jwt_bearer", "consumer_key": consumer_key,
            "key_name": "trace", "key_password": key_pass, "domain": "acme.my"});
        assert_eq!(send("add_connection", jwt), None);
        assert_eq!(send("test_connection", serde_json::json!({"username": "jwt@acme.com"})), None);
        // A secret where a name belongs is refused without being repeated.
        assert!(send("test_connection", serde_json::json!({"username": password})).is_some());
        assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
        assert!(child.wait().unwrap().success());

        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("TRACE") && logged.contains("add_connection"), "the log was at trace level:\n{logged}");
        println!("{} lines logged, {} at TRACE", logged.lines().count(), logged.matches("TRACE").count());
        let assertions: Vec<String> =
            fake.requests().iter().filter_map(|r| r.form_value("assertion").map(str::to_string)).collect();
        assert!(!assertions.is_empty(), "a JWT login happened");
        for secret in
            [password, token, key_pass, "Wrong-Trace-Secret"].map(str::to_string).into_iter().chain(assertions)
        {
            assert!(!logged.contains(&secret), "the worker logged a secret: {secret:.12}…\n{logged}");
        }
        assert!(!logged.contains(&format!("{}!", &prod.org_id[..15])), "an access token was logged:\n{logged}");
    }

    #[test]
    fn the_foreground_worker_serves_and_stops_cleanly_on_sigint() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("fg.sock");
        let log = dir.path().join("worker.log");
        let empty_config = dir.path().join("empty.toml");
        std::fs::write(&empty_config, "").unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_slam-worker"))
            .args(["--data-dir", dir.path().to_str().unwrap(), "--pipe", socket.to_str().unwrap()])
            .env("SLAM_WORKER_CONFIG", &empty_config)
            .env("SLAM_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the worker exited ({status:?}): {}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            assert!(started.elapsed() < Duration::from_secs(20), "the worker did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let request = request("fg", "ping", serde_json::json!({}));
        let socket_text = socket.to_str().unwrap().to_string();
        let done = slam_client::call(&socket_text, &request, &Default::default(), |_| {}).unwrap();
        assert!(done.is_none());
        assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("SLAM worker listening") && logged.contains("SLAM worker stopped"), "{logged}");
        assert!(logged.contains("operation=\"ping\"") || logged.contains("operation=ping"), "{logged}");
    }
}

#[test]
fn the_socket_and_the_private_files_have_their_modes() {
    use std::os::unix::fs::PermissionsExt;
    let worker = TestWorker::start(|_| {});
    let mode = |path: PathBuf| {
        std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
    };
    assert_eq!(mode(worker.socket.clone()), 0o660, "the socket: owner and group only");
    assert_eq!(error_number(&worker.send("setup_jwt", serde_json::json!({"key_name": "modes"}))), None);
    assert_eq!(error_number(&worker.send("list_connections", serde_json::json!({}))), None);
    let dir = worker.dir.path();
    assert_eq!(mode(dir.join("keys")), 0o700);
    assert_eq!(mode(dir.join("keys/modes.pem")), 0o600);
    assert_eq!(mode(dir.join("keys/modes.crt")), 0o644, "the certificate is public (it is uploaded to Salesforce)");
    assert_eq!(mode(dir.join("slam.db")), 0o600, "the store");
    worker.stop();
}

#[test]
fn the_worker_refuses_to_start_on_files_another_account_could_have_planted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let settings = WorkerSettings {
        data_dir: dir.path().to_path_buf(),
        pipe: dir.path().join("slam.sock").to_string_lossy().into_owned(),
        allowed_clients: Vec::new(),
        ..WorkerSettings::default()
    };
    // A keys folder every user may write into: anyone could drop a key or a
    // configuration of their own in it.
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = dir.path().join("slam-worker.toml");
    std::fs::write(&config, "").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let settings = WorkerSettings { source: Some(config.clone()), ..settings };

    let Err(error) = Background::start(settings.clone()) else { panic!("the worker started") };
    assert_eq!(error.code.number(), 50007, "{error}");
    for path in [&keys, &config] {
        assert!(error.message.contains(&path.display().to_string()), "{path:?} not named: {}", error.message);
    }
    assert!(error.message.contains("every user"), "{}", error.message);
    assert!(!dir.path().join("slam.sock").exists(), "nothing listens");

    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    drop(Background::start(settings).unwrap());
}

#[test]
fn the_log_records_the_verified_peer_beside_what_the_caller_claims() {
    let worker = TestWorker::start(|_| {});
    let mut stream = worker.connect();
    let mut claimed = request("r", "remove_connection", serde_json::json!({"username": "nobody@example.com"}));
    claimed.caller.login = Some(r"CORP\someone-else".into());
    write_frame(&mut stream, &claimed, DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(error_number(&read_all(&mut stream)), Some(50206));
    let mut store = slam_store::SqliteStore::open(&worker.dir.path().join("slam.db")).unwrap();
    let log = slam_store::Store::recent_log(&mut store, 1).unwrap();
    let uid = rustix::process::getuid().as_raw();
    assert!(
        log[0].caller.starts_with(r"CORP\someone-else") && log[0].caller.ends_with(&format!("verified peer uid {uid}")),
        "{}",
        log[0].caller
    );
    worker.stop();
}
