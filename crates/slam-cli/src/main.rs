//! `slam`: run SLAM operations from a shell.
//!
//! Every subcommand is a thin translation of flags into a `slam_core::ops` call;
//! what the operation reports is rendered by [`render`]. Messages go to stderr and
//! result sets to stdout, so `--format json` output can be piped straight into a
//! script. Exit code 0 means success, 1 a SLAM error, 2 a usage error.

#![forbid(unsafe_code)]

mod render;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use render::{Format, TerminalSink};
use slam_core::clock::SystemClock;
use slam_core::data_dir::DataDir;
use slam_core::ops::{self, Context, SetupJwtArgs};
use slam_core::secret::{Secret, secret};
use slam_protocol::{ErrorCode, SlamError};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// Speediful SLAM: Salesforce connections for SQL Server, from the command line.
#[derive(Debug, Parser)]
#[command(name = "slam", version, max_term_width = 100)]
struct Cli {
    /// The SLAM data directory (keys live in DIR/keys).
    /// [default: C:\ProgramData\Speediful\SLAM on Windows, /var/lib/speediful/slam elsewhere]
    #[arg(long, global = true, env = "SLAM_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Run the operation in this process instead of sending it to the SLAM worker.
    /// (Until the worker ships, every operation runs in-process.)
    #[arg(long, global = true)]
    local: bool,

    /// How to print result sets.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a JWT keypair: a private key (.pem) and a self-signed certificate (.crt)
    /// to upload to the Salesforce External Client App. (SLAM_setup_jwt)
    SetupJwt {
        /// Name of the keypair; files are {name}.pem and {name}.crt. One per Salesforce org,
        /// e.g. acme-prod. [default: this machine's host name]
        #[arg(long, value_name = "NAME")]
        key_name: Option<String>,
        /// Passphrase that encrypts the private key (strongly recommended; not your
        /// Salesforce password). Prefer --password-stdin or SLAM_KEY_PASSWORD: a value
        /// on the command line is visible to other users of this machine.
        #[arg(
            long,
            env = "SLAM_KEY_PASSWORD",
            hide_env_values = true,
            value_name = "PASSPHRASE"
        )]
        password: Option<String>,
        /// Read the passphrase from the first line of standard input.
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
        /// Days until the certificate expires (1 to 3650). [default: 365]
        #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
        cert_days: Option<i64>,
        /// Replace an existing keypair whose certificate is still valid.
        #[arg(long)]
        force: bool,
    },
    /// Delete a keypair's files from this machine. (SLAM_remove_jwt)
    RemoveJwt {
        /// Name of the keypair to remove.
        #[arg(long, value_name = "NAME")]
        key_name: String,
    },
    /// List the keypairs on this machine with their certificates' expiry and fingerprints.
    ListKeys,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging();
    let mut sink = TerminalSink::new(cli.format);
    let result = run(cli, &matches, &mut sink);
    sink.finish(result.as_ref().err())
}

fn init_logging() {
    // Logs are for diagnosing SLAM itself: quiet unless SLAM_LOG asks (e.g. SLAM_LOG=debug).
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLAM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn run(cli: Cli, matches: &ArgMatches, sink: &mut TerminalSink) -> Result<(), SlamError> {
    let clock = SystemClock;
    let ctx = Context {
        data_dir: cli.data_dir.unwrap_or_else(DataDir::default_path),
        clock: &clock,
    };
    match cli.command {
        Command::SetupJwt {
            key_name,
            password,
            password_stdin,
            cert_days,
            force,
        } => {
            let password = if password_stdin {
                Some(read_stdin_secret()?)
            } else {
                let from_command_line = matches
                    .subcommand_matches("setup-jwt")
                    .and_then(|m| m.value_source("password"))
                    == Some(ValueSource::CommandLine);
                if from_command_line {
                    sink.warning_now(
                        "`--password` on the command line is visible to other users of this machine and \
                         stays in shell history; prefer `--password-stdin` or the SLAM_KEY_PASSWORD variable.",
                    );
                }
                password.map(secret)
            };
            ops::setup_jwt(
                &ctx,
                SetupJwtArgs {
                    key_name,
                    password,
                    cert_days,
                    force,
                },
                sink,
            )
        }
        Command::RemoveJwt { key_name } => ops::remove_jwt(&ctx, &key_name, sink),
        Command::ListKeys => ops::list_keys(&ctx, sink),
    }
}

/// The first line of standard input, without its line ending.
fn read_stdin_secret() -> Result<Secret, SlamError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        SlamError::new(
            ErrorCode::InvalidArgument,
            format!("reading the passphrase from standard input failed: {e}"),
        )
    })?;
    let trimmed = line.trim_end_matches(['\r', '\n']).to_string();
    // Overwrite the buffer we read into; `Secret` owns the only copy from here.
    line.clear();
    line.shrink_to_fit();
    Ok(secret(trimmed))
}
