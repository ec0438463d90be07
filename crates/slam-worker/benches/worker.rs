//! Benchmark: the worker's round trip and what its token cache saves.
//!
//! Run with `cargo bench -p slam-worker --bench worker`. Prints:
//! - `ping` latency over the real pipe (Unix socket here, named pipe on Windows):
//!   p50 / p99 / max over `SLAM_BENCH_PINGS` sequential calls (default 2000), each a
//!   fresh connection, as the XP and the CLI make them;
//! - `test_connection` operations per second against the fake Salesforce (real
//!   TLS on loopback, `SLAM_BENCH_LATENCY_MS` of added latency per Salesforce
//!   request, default 20, to stand in for the internet), with the token cache on
//!   and off, sequential and from 8 clients at once.
//!
//! The fake answers in microseconds, so without added latency the numbers measure
//! SLAM's own overhead (TLS, JSON, SQLite, unsealing); with it they show what a
//! login costs and the cache saves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use slam_protocol::{PROTOCOL_VERSION, Request};
use slam_testkit::{App, FakeSalesforce, Org, User};
use slam_worker::WorkerSettings;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const USER: &str = "bench@acme.com";
const KEY_PASS: &str = "bench key passphrase";

fn start(settings: WorkerSettings) -> slam_worker::Background {
    slam_worker::Background::start(settings).unwrap()
}

fn call(pipe: &str, operation: &str, args: serde_json::Value) {
    let request = Request {
        version: PROTOCOL_VERSION,
        id: operation.into(),
        operation: operation.into(),
        args: serde_json::from_value(args).unwrap(),
        caller: Default::default(),
    };
    let done = slam_client::call(pipe, &request, &Default::default(), |_| {}).unwrap();
    assert!(done.is_none(), "{operation} failed: {done:?}");
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pipe_name(dir: &std::path::Path, tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    if cfg!(windows) {
        format!("speediful-slam-bench-{}-{tag}{n}", std::process::id())
    } else {
        dir.join(format!("{tag}{n}.sock")).to_string_lossy().into_owned()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSalesforce::start();
    let org = Org::production("acme");
    fake.add_org(org.clone());
    fake.add_user(User::new(USER, &org));
    let ca_file = fake.write_ca_file(dir.path()).to_string_lossy().into_owned();
    let settings = |cache_tokens: bool, tag: &str| {
        let mut s = WorkerSettings {
            data_dir: dir.path().to_path_buf(),
            pipe: pipe_name(dir.path(), tag),
            allowed_clients: Vec::new(),
            cache_tokens,
            ..WorkerSettings::default()
        };
        s.salesforce.ca_file = ca_file.clone();
        s.salesforce.resolve = vec![fake.resolve_spec()];
        s
    };

    // ping
    let cached = start(settings(true, "cached"));
    let pings = env_number("SLAM_BENCH_PINGS", 2000) as usize;
    for _ in 0..50 {
        call(cached.address(), "ping", serde_json::json!({}));
    }
    let mut times: Vec<Duration> = (0..pings)
        .map(|_| {
            let started = Instant::now();
            call(cached.address(), "ping", serde_json::json!({}));
            started.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "ping round trip over {} calls: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        pings,
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times[times.len() - 1].as_secs_f64() * 1e6
    );

    // A JWT connection, added through the worker.
    call(cached.address(), "setup_jwt", serde_json::json!({"key_name": "bench", "password": KEY_PASS}));
    let cert = std::fs::read_to_string(dir.path().join("keys").join("bench.crt")).unwrap();
    let consumer_key = App::random_consumer_key();
    fake.add_app(App::new(consumer_key.clone(), &org, cert).pre_authorize(USER));
    call(
        cached.address(),
        "add_connection",
        serde_json::json!({"username": USER, "auth_method": "jwt_bearer", "consumer_key": consumer_key,
                           "key_name": "bench", "key_password": KEY_PASS, "domain": "acme.my"}),
    );
    let uncached = start(settings(false, "uncached"));

    let latency = env_number("SLAM_BENCH_LATENCY_MS", 20);
    let rounds = env_number("SLAM_BENCH_TESTS", 96) as usize;
    for added in [0, latency] {
        fake.set_latency(Duration::from_millis(added));
        for (label, worker) in [("cache on ", &cached), ("cache off", &uncached)] {
            let test = || call(worker.address(), "test_connection", serde_json::json!({"username": USER}));
            test();
            let started = Instant::now();
            for _ in 0..rounds {
                test();
            }
            let sequential = rounds as f64 / started.elapsed().as_secs_f64();
            let started = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..8 {
                    scope.spawn(|| {
                        for _ in 0..rounds / 8 {
                            test();
                        }
                    });
                }
            });
            let parallel = (rounds / 8 * 8) as f64 / started.elapsed().as_secs_f64();
            println!(
                "test_connection, {label}, +{added} ms per Salesforce request: {sequential:.1} ops/s sequential, \
                 {parallel:.1} ops/s from 8 clients (one username: serialised)"
            );
        }
    }
    let logins = fake.requests().iter().filter(|r| r.path == "/services/oauth2/token").count();
    println!("logins seen by the fake Salesforce in all: {logins}");
}
