//! The Windows transport and service, under Wine in CI (scripts/windows-lane.sh)
//! and on real Windows when run there.
//!
//! Wine runs named pipes, `GetNamedPipeClientProcessId` and the service control
//! manager faithfully, but it does not enforce pipe DACLs and ignores
//! `FILE_FLAG_FIRST_PIPE_INSTANCE`; the checks that need those run only on real
//! Windows, and say so. Wine also keeps no owner for a pipe (`GetSecurityInfo`
//! succeeds with no owner SID), so there the client identifies the server by its
//! process's token instead; and every Wine process runs as the same user, so the
//! tests name that user as the worker's account where a call must succeed.

#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use slam_protocol::{PROTOCOL_VERSION, Request, Response, Value};
use slam_windows::pipe_client::{self, PipeClient};
use slam_worker::WorkerSettings;
use slam_worker::pipe_acl::service_sid;
use std::time::{Duration, Instant};

fn settings(dir: &std::path::Path, pipe: &str) -> WorkerSettings {
    WorkerSettings { data_dir: dir.to_path_buf(), pipe: pipe.to_string(), ..WorkerSettings::default() }
}

fn ping(pipe: &str) -> (Vec<Response>, Option<slam_protocol::WireError>) {
    let request = Request {
        version: PROTOCOL_VERSION,
        id: "ping-w".into(),
        operation: "ping".into(),
        args: Default::default(),
        caller: Default::default(),
    };
    let mut frames = Vec::new();
    let done = slam_client::call(pipe, &request, &trusting_ourselves(), |r| frames.push(r)).unwrap();
    (frames, done)
}

/// Call options that trust this process's own account to serve the pipe: the
/// worker in these tests runs as we do (and under Wine every process does).
fn trusting_ourselves() -> slam_client::CallOptions {
    slam_client::CallOptions {
        worker_account: slam_client::WorkerAccount::Named(slam_windows::current_user_sid().unwrap()),
        ..slam_client::CallOptions::default()
    }
}

/// True when the DACL the kernel reports is the one we built: the same SDDL, or
/// the same with `GA` (generic all) mapped to the pipe's specific rights (`FA`),
/// as Windows maps generic rights when it assigns a descriptor to a new object.
fn same_dacl(applied: &str, built: &str) -> bool {
    applied == built || applied == built.replace(";GA;", ";FA;")
}

#[test]
fn the_named_pipe_serves_clients_and_admits_only_the_named_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = format!("speediful-slam-test-{}", std::process::id());
    let running = slam_worker::Background::start(settings(dir.path(), &pipe)).unwrap();
    assert_eq!(running.address(), format!(r"\\.\pipe\{pipe}"));
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // The DACL: SYSTEM, Administrators, our own account, and the default instance's
    // SQL Server service with read/write data only; nobody else.
    let listener = runtime
        .block_on(async { slam_worker::pipe::bind(&format!("{pipe}-acl"), &[r"NT SERVICE\MSSQLSERVER".into()]) })
        .unwrap();
    let own = slam_windows::current_user_sid().unwrap();
    let sddl = listener.sddl().to_string();
    assert_eq!(
        sddl,
        format!("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;{own})(A;;0x12008b;;;{})", service_sid("MSSQLSERVER"))
    );
    let applied = listener.applied_dacl();
    println!("the kernel holds: {applied:?}");
    if slam_windows::running_under_wine() {
        // Wine keeps the descriptor it was given, but may print it differently;
        // what it returns must at least be a protected DACL that is not empty.
        let applied = applied.unwrap();
        if !same_dacl(&applied, &sddl) {
            println!("note: Wine reads back {applied} for {sddl}");
            assert!(applied.starts_with("D:P(") && applied.len() > "D:P".len(), "{applied}");
        }
    } else {
        let applied = applied.unwrap();
        assert!(same_dacl(&applied, &sddl), "the kernel holds {applied}, we built {sddl}");
    }

    // Clients, one after another and many at once, each served on its own instance.
    for _ in 0..3 {
        let (frames, done) = ping(&pipe);
        assert!(done.is_none(), "{done:?}");
        let Some(Response::ResultSet { columns, rows, .. }) =
            frames.iter().find(|f| matches!(f, Response::ResultSet { .. }))
        else {
            panic!("{frames:?}")
        };
        let mode = columns.iter().position(|c| c.name == "mode").unwrap();
        assert_eq!(rows[0][mode], Value::Text("worker".into()));
    }
    // Who serves the pipe, as a client sees it before it sends anything.
    let path = slam_protocol::windows_pipe_path(&pipe);
    let client = PipeClient::open(&path, Instant::now() + Duration::from_secs(10), &mut || false).unwrap();
    let owner = client.server_owner_sid();
    let token_user = client.server_process_user_sid();
    println!("the worker's pipe: owner {owner:?}, server process user {token_user:?}, we are {own}");
    let account = client.server_account().unwrap();
    assert!(account == own || account == pipe_client::ADMINISTRATORS_SID, "{account}");
    assert!(client.verify_server(std::slice::from_ref(&own)).is_ok());
    assert_eq!(client.server_process_id().unwrap(), std::process::id(), "the worker runs in this process");
    drop(client);

    let clients: Vec<_> = (0..16)
        .map(|_| {
            let pipe = pipe.clone();
            std::thread::spawn(move || ping(&pipe).1)
        })
        .collect();
    for client in clients {
        assert!(client.join().unwrap().is_none());
    }

    // A second worker on the same name is refused at start (real Windows only: Wine
    // ignores FILE_FLAG_FIRST_PIPE_INSTANCE).
    let second = runtime.block_on(async { slam_worker::bind(&settings(dir.path(), &pipe)).map(|_| ()) });
    if slam_windows::running_under_wine() {
        println!("note: under Wine a second first-instance pipe is not refused; checked on real Windows only");
    } else {
        let error = second.unwrap_err();
        assert_eq!(error.code.number(), 50407, "{error}");
    }

    drop(running);
    let error = slam_client::call(
        &pipe,
        &Request {
            version: PROTOCOL_VERSION,
            id: "x".into(),
            operation: "ping".into(),
            args: Default::default(),
            caller: Default::default(),
        },
        &slam_client::CallOptions { busy_wait: Duration::from_millis(200), ..Default::default() },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(error.to_slam_error().code.number(), 50407, "{error}");
}

/// A pipe served by an account the client does not trust (here: this test's own
/// process, while the client expects the service's virtual account, the default)
/// is refused before a byte of the request is written, and the error names the
/// account found.
#[test]
fn the_client_sends_nothing_to_a_pipe_served_by_another_account() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pipe = format!("speediful-slam-squat-{}", std::process::id());
    let path = slam_protocol::windows_pipe_path(&pipe);
    let server = {
        let _context = runtime.enter();
        tokio::net::windows::named_pipe::ServerOptions::new().first_pipe_instance(true).create(&path).unwrap()
    };
    let squatter = runtime.spawn(async move {
        use tokio::io::AsyncReadExt;
        server.connect().await.unwrap();
        let mut server = server;
        let mut received = Vec::new();
        // Until the client goes away (or 10 s, far beyond the refusal).
        let _ = tokio::time::timeout(Duration::from_secs(10), server.read_to_end(&mut received)).await;
        received
    });
    let own = slam_windows::current_user_sid().unwrap();
    let request = Request {
        version: PROTOCOL_VERSION,
        id: "squat".into(),
        operation: "add_connection".into(),
        args: Default::default(),
        caller: Default::default(),
    };
    let options =
        slam_client::CallOptions { worker_account: slam_client::WorkerAccount::Default, ..Default::default() };
    let error = slam_client::call(&pipe, &request, &options, |_| {}).unwrap_err();
    println!("refused: {error}");
    let slam = error.to_slam_error();
    assert_eq!(slam.code.number(), 50414, "{error}");
    let slam_client::ClientError::UntrustedServer { found, expected, .. } = &error else { panic!("{error:?}") };
    assert!(found.starts_with(&own) && found.contains(&format!("pid {}", std::process::id())), "{found}");
    assert!(expected.contains(slam_protocol::DEFAULT_WORKER_SID) && expected.contains("S-1-5-18"), "{expected}");
    assert!(slam.message.contains(&own), "the message names the account found: {slam}");
    let received = runtime.block_on(squatter).unwrap();
    assert!(received.is_empty(), "the squatter received {} bytes", received.len());

    // The same pipe name served by our real worker, with our account trusted, works.
    let dir = tempfile::tempdir().unwrap();
    let running = slam_worker::Background::start(settings(dir.path(), &pipe)).unwrap();
    let (_, done) = ping(&pipe);
    assert!(done.is_none(), "{done:?}");
    drop(running);
}

/// Installs, starts, uses, stops and removes the real service. Runs under Wine
/// (a throwaway prefix), or on Windows when SLAM_TEST_SERVICE=1 in an elevated
/// prompt: it must not touch a developer's machine unasked.
#[test]
fn the_service_installs_starts_serves_stops_and_uninstalls() {
    if !slam_windows::running_under_wine() && std::env::var_os("SLAM_TEST_SERVICE").is_none() {
        println!("skipped: set SLAM_TEST_SERVICE=1 (elevated) to install a real service");
        return;
    }
    let exe = env!("CARGO_BIN_EXE_slam-worker");
    let dir = tempfile::tempdir().unwrap();
    let pipe = format!("speediful-slam-svc-{}", std::process::id());
    let config = dir.path().join("slam-worker.toml");
    let log = dir.path().join("logs").join("worker.log");
    std::fs::write(
        &config,
        format!(
            "data_dir = '{}'\npipe = '{pipe}'\n[log]\nfile = '{}'\nlevel = 'debug'\n",
            dir.path().display(),
            log.display()
        ),
    )
    .unwrap();
    let slam_worker = |args: &[&str]| {
        let out = std::process::Command::new(exe).arg("--config").arg(&config).args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    // A leftover from an interrupted run would make install fail.
    let _ = slam_worker(&["service", "uninstall"]);

    let (ok, text) = slam_worker(&["service", "install", "--account", "LocalSystem"]);
    assert!(ok && text.contains("Installed the service SpeedifulSLAM"), "{text}");
    let (ok, text) = slam_worker(&["service", "install", "--account", "LocalSystem"]);
    assert!(!ok && text.contains("already installed"), "{text}");

    let (ok, text) = slam_worker(&["service", "start"]);
    assert!(ok && text.contains("is running"), "{text}");
    let (frames, done) = ping(&pipe);
    assert!(done.is_none(), "{frames:?} {done:?}");
    let pid_column = match &frames[1] {
        Response::ResultSet { columns, rows, .. } => {
            rows[0][columns.iter().position(|c| c.name == "pid").unwrap()].clone()
        }
        other => panic!("{other:?}"),
    };
    assert_ne!(pid_column, Value::Int(i64::from(std::process::id())), "served by the service's own process");

    let (ok, text) = slam_worker(&["service", "stop"]);
    assert!(ok && text.contains("has stopped"), "{text}");
    let (ok, text) = slam_worker(&["service", "uninstall"]);
    assert!(ok && text.contains("Removed the service"), "{text}");
    let (ok, text) = slam_worker(&["service", "start"]);
    assert!(!ok && text.contains("not installed"), "{text}");

    // The service logged to its file: start, the request, the stop.
    let logs: String = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(logs.contains("SLAM worker listening"), "{logs}");
    assert!(logs.contains("request served") && logs.contains("ping"), "{logs}");
    assert!(logs.contains("SLAM worker stopped"), "{logs}");
}

#[test]
fn the_worker_executable_carries_the_event_message_table() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_slam-worker"));
    for id in [1, 2, 3] {
        let text = slam_windows::eventlog::rendered_message(exe, id, "SpeedifulSLAM started, listening on x.")
            .unwrap_or_else(|e| panic!("event {id} has no message in slam-worker.exe: {e}"));
        assert_eq!(text.trim_end(), "SpeedifulSLAM started, listening on x.");
    }
    assert!(slam_windows::eventlog::rendered_message(exe, 99, "x").is_err(), "only our ids are defined");
}
