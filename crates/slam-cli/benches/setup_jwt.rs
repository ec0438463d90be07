//! Benchmark: `slam setup-jwt` end to end against the openssl command sequence from
//! the reference guides that it replaces.
//!
//! Run with `cargo bench -p slam-cli --bench setup_jwt` (set `SLAM_BENCH_RUNS` for
//! more or fewer runs, default 10). It prints the median and mean of each, and the
//! ratio. RSA key generation dominates and its time varies a lot from run to run
//! (it searches for primes), so compare medians over several runs.
//!
//! The two sides are not the same work: `openssl genpkey -aes-256-cbc` protects the
//! key with 2,048 PBKDF2 iterations, we use 600,000 (OWASP guidance). A third line
//! re-encrypts openssl's key at our iteration count so the KDF cost can be told apart
//! from the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "bench passphrase, long enough";

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("command could not start");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).env("BENCH_PASS", PASSPHRASE).args(args));
}

fn slam_setup(dir: &Path) {
    run(Command::new(env!("CARGO_BIN_EXE_slam"))
        .args(["--local", "--data-dir"])
        .arg(dir)
        .args(["setup-jwt", "--key-name", "bench"])
        .env("SLAM_KEY_PASSWORD", PASSPHRASE));
}

/// The guide's sequence: encrypted key, decrypted copy, CSR, self-signed certificate.
fn openssl_setup(dir: &Path) {
    openssl(
        dir,
        &[
            "genpkey",
            "-aes-256-cbc",
            "-algorithm",
            "RSA",
            "-pass",
            "env:BENCH_PASS",
            "-out",
            "server.pass.key",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
    );
    openssl(dir, &["rsa", "-passin", "env:BENCH_PASS", "-in", "server.pass.key", "-out", "server.key"]);
    openssl(dir, &["req", "-new", "-key", "server.key", "-subj", "/CN=bench", "-out", "server.csr"]);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-sha256",
            "-days",
            "365",
            "-in",
            "server.csr",
            "-signkey",
            "server.key",
            "-out",
            "server.crt",
        ],
    );
}

/// The same, then the key re-encrypted at SLAM's KDF cost.
fn openssl_setup_same_kdf(dir: &Path) {
    openssl_setup(dir);
    let iterations = slam_core::keys::PBKDF2_ITERATIONS.to_string();
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-v2prf",
            "hmacWithSHA256",
            "-iter",
            &iterations,
            "-in",
            "server.key",
            "-passout",
            "env:BENCH_PASS",
            "-out",
            "server.p8.key",
        ],
    );
}

fn measure(runs: usize, f: impl Fn(&Path)) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let start = Instant::now();
            f(dir.path());
            start.elapsed()
        })
        .collect()
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and
    // expects a quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs: usize =
        std::env::var("SLAM_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(if quick { 1 } else { 10 });
    println!("setup-jwt: {runs} run(s) each, RSA-2048, passphrase-protected key + self-signed certificate");
    let slam = measure(runs, slam_setup);
    let guide = measure(runs, openssl_setup);
    let same_kdf = measure(runs, openssl_setup_same_kdf);
    let line = |name: &str, s: &[Duration]| {
        println!(
            "  {name:<48} median {:>8.1} ms   mean {:>8.1} ms",
            median(s).as_secs_f64() * 1e3,
            mean(s).as_secs_f64() * 1e3
        );
    };
    line("slam setup-jwt (PBKDF2 600,000 iterations)", &slam);
    line("openssl guide sequence (PBKDF2 2,048 iterations)", &guide);
    line("openssl guide + pkcs8 at 600,000 iterations", &same_kdf);
    let ratio = |other: &[Duration]| median(&slam).as_secs_f64() / median(other).as_secs_f64();
    println!("  ratio slam / openssl guide:          {:.2}", ratio(&guide));
    println!("  ratio slam / openssl same KDF cost:  {:.2}", ratio(&same_kdf));
}
