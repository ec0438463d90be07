//! `slam-worker`: serve SLAM operations on a local socket, in the foreground.
//!
//! Stops on Ctrl-C (or SIGTERM), after finishing the requests in flight.

#![forbid(unsafe_code)]

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// The SLAM worker (foreground).
#[derive(Parser)]
#[command(name = "slam-worker", version)]
struct Args {
    /// The SLAM data directory.
    #[arg(long, env = "SLAM_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The socket to listen on.
    #[arg(long, env = "SLAM_PIPE", value_name = "PATH", default_value = "/run/speediful/slam.sock")]
    pipe: PathBuf,
    /// Also allow these uids to connect (the worker's own uid always may). Comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "UID")]
    allow_uid: Vec<u32>,
}

#[cfg(unix)]
fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLAM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let data_dir = args.data_dir.unwrap_or_else(slam_core::data_dir::DataDir::default_path);
    let mut config = slam_worker::server::WorkerConfig::new(data_dir);
    config.allowed_uids = args.allow_uid;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime failed: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let listener = match slam_worker::server::bind(&args.pipe, &mut config) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.pipe.display());
                return ExitCode::from(1);
            }
        };
        tracing::info!(socket = %args.pipe.display(), "SLAM worker listening");
        slam_worker::server::run(listener, config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        ExitCode::SUCCESS
    })
}

#[cfg(not(unix))]
fn main() -> ExitCode {
    let _ = Args::parse();
    eprintln!("error: the Windows named-pipe worker is not built yet; use `slam --local`");
    ExitCode::from(1)
}
