//! The worker end to end over a real Unix socket: every guarantee of
//! `slam_worker::serve` from the outside.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use slam_protocol::frame::{DEFAULT_MAX_FRAME, read_frame, write_frame};
use slam_protocol::{PROTOCOL_VERSION, Request, Response};
use slam_worker::unix::{bind, run};
use slam_worker::{Worker, WorkerSettings};
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
}

struct TestWorker {
    dir: tempfile::TempDir,
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestWorker {
    fn start(configure: impl FnOnce(&mut Setup) + Send + 'static) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("slam.sock");
        let data_dir = dir.path().to_path_buf();
        let path = socket.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let mut setup = Setup {
                    settings: WorkerSettings { data_dir, ..WorkerSettings::default() },
                    idle_timeout: None,
                    request_timeout: None,
                    refuse_everyone: false,
                };
                configure(&mut setup);
                let mut worker = Worker::new(&setup.settings).unwrap();
                worker.set_limits(setup.idle_timeout, setup.request_timeout);
                let mut listener = bind(&path, &[]).unwrap();
                if setup.refuse_everyone {
                    listener.allow_only(Vec::new());
                }
                ready.send(()).unwrap();
                run(listener, std::sync::Arc::new(worker), async move {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        is_ready.recv_timeout(Duration::from_secs(10)).unwrap();
        TestWorker { dir, socket, stop: Some(stop), thread: Some(thread) }
    }

    fn connect(&self) -> UnixStream {
        let stream = UnixStream::connect(&self.socket).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream
    }

    fn send(&self, operation: &str, args: serde_json::Value) -> Vec<Response> {
        let mut stream = self.connect();
        let request = Request {
            version: PROTOCOL_VERSION,
            id: format!("{operation}-1"),
            operation: operation.into(),
            args: serde_json::from_value(args).unwrap(),
            caller: Default::default(),
        };
        write_frame(&mut stream, &request, DEFAULT_MAX_FRAME).unwrap();
        read_all(&mut stream)
    }

    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn read_all(stream: &mut UnixStream) -> Vec<Response> {
    let mut frames = Vec::new();
    while let Some(frame) = read_frame::<Response>(stream, 4 * DEFAULT_MAX_FRAME).unwrap() {
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
    assert_eq!(error_number(&again), Some(50104));
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
fn a_peer_that_is_not_allowed_is_refused() {
    let worker = TestWorker::start(|s| s.refuse_everyone = true);
    let frames = worker.send("ping", serde_json::json!({}));
    assert_eq!(frames.len(), 1, "nothing but the refusal: {frames:?}");
    assert_eq!(error_number(&frames), Some(50404));
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
    let request = Request {
        version: PROTOCOL_VERSION,
        id: "inflight".into(),
        operation: "setup_jwt".into(),
        args: serde_json::from_value(serde_json::json!({"key_name": "inflight"})).unwrap(),
        caller: Default::default(),
    };
    write_frame(&mut stream, &request, DEFAULT_MAX_FRAME).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let socket = worker.socket.clone();
    let stopper = std::thread::spawn(move || worker.stop());
    let frames = read_all(&mut stream);
    assert_eq!(error_number(&frames), None, "the request in flight completes: {frames:?}");
    stopper.join().unwrap();
    assert!(UnixStream::connect(&socket).is_err(), "no longer accepting");
}
