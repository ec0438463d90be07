//! `slam`: run SLAM operations from a shell.
//!
//! Every subcommand is a thin translation of flags into a [`Request`]: the
//! operation and its T-SQL parameters. By default the request goes to the SLAM
//! worker over its pipe; with `--local` it runs in this process through the same
//! `slam_core::ops::dispatch` the worker uses. Either way the same stream of
//! messages and result sets comes back and is rendered by [`render`], so both
//! print the same things. Messages go to stderr and
//! result sets to stdout, so `--format json` output can be piped straight into a
//! script. Exit code 0 means success, 1 a SLAM error, 2 a usage error.

#![forbid(unsafe_code)]

mod render;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use render::{Format, TerminalSink};
use slam_core::clock::SystemClock;
use slam_core::data_dir::DataDir;
use slam_core::ops::{self, Context};
use slam_core::salesforce::{HttpSettings, ResolveOverride};
use slam_protocol::{CallerContext, ErrorCode, OutputSink, PROTOCOL_VERSION, Request, Response, ResultSet, SlamError};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// Speediful SLAM: Salesforce connections for SQL Server, from the command line.
/// (No `Debug`: the parsed flags may hold passwords and tokens.)
#[derive(Parser)]
#[command(name = "slam", version, max_term_width = 100)]
struct Cli {
    /// The SLAM data directory (keys live in DIR/keys).
    /// [default: C:\ProgramData\Speediful\SLAM on Windows, /var/lib/speediful/slam elsewhere]
    #[arg(long, global = true, env = "SLAM_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Run the operation in this process instead of sending it to the SLAM worker.
    #[arg(long, global = true)]
    local: bool,

    /// The worker's pipe name (Windows) or socket path.
    /// [default: \\.\pipe\speediful-slam on Windows, /run/speediful/slam.sock elsewhere]
    #[arg(long, global = true, env = "SLAM_PIPE", value_name = "PATH")]
    pipe: Option<String>,

    /// How to print result sets.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// A PEM file of extra CA certificates to trust for Salesforce (e.g. a TLS-inspecting
    /// proxy's CA), besides the operating system's trust store.
    #[arg(long, global = true, env = "SLAM_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,

    /// Proxy URL for Salesforce (otherwise HTTPS_PROXY / HTTP_PROXY / NO_PROXY apply).
    #[arg(long, global = true, env = "SLAM_PROXY", value_name = "URL")]
    proxy: Option<String>,

    /// Seconds one Salesforce request may take, answer included.
    #[arg(long, global = true, env = "SLAM_HTTP_TIMEOUT", value_name = "SECONDS", default_value_t = 60)]
    http_timeout: u64,

    /// Send every host under SUFFIX to IP:PORT (TLS still checks the real host name), e.g.
    /// salesforce.com=127.0.0.1:8443 for the fake Salesforce. Comma-separated.
    #[arg(long, global = true, env = "SLAM_RESOLVE", value_name = "SUFFIX=IP:PORT", value_delimiter = ',')]
    resolve: Vec<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
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
        #[arg(long, env = "SLAM_KEY_PASSWORD", hide_env_values = true, value_name = "PASSPHRASE")]
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
    /// Log in to Salesforce with connection parameters and run the connection test;
    /// stores nothing. Takes the same parameters as add-connection.
    TestLogin(ConnectionFlags),
    /// Validate, test, store (secrets sealed) and activate a Salesforce connection.
    /// (SLAM_add_connection)
    AddConnection {
        #[command(flatten)]
        connection: ConnectionFlags,
        /// Optional alias for this environment.
        #[arg(long)]
        environment_name: Option<String>,
        /// Store the connection without testing it.
        #[arg(long)]
        skip_test: bool,
    },
    /// List the stored connections (never their secrets). (SLAM_list_connections)
    ListConnections,
    /// Make a stored connection the active one. (SLAM_use_connection_username)
    UseConnectionUsername {
        /// Salesforce username of a stored connection.
        #[arg(long)]
        username: String,
    },
    /// Log in with a stored connection and record the result. (SLAM_test_connection)
    TestConnection {
        /// Salesforce username of a stored connection.
        #[arg(long)]
        username: String,
    },
    /// Delete a stored connection. (SLAM_remove_connection)
    RemoveConnection {
        /// Salesforce username of a stored connection.
        #[arg(long)]
        username: String,
    },
    /// Show SLAM_Settings (the active connection).
    Settings,
    /// Check that the worker answers: its version, uptime and cached sessions.
    Ping,
}

/// The parameters of SLAM_add_connection.
#[derive(clap::Args)]
struct ConnectionFlags {
    /// Salesforce username.
    #[arg(long)]
    username: Option<String>,
    /// jwt_bearer (recommended) or security_token.
    #[arg(long, default_value = "security_token")]
    auth_method: String,
    /// Consumer Key of the External Client App (jwt_bearer).
    #[arg(long)]
    consumer_key: Option<String>,
    /// Keypair from setup-jwt (jwt_bearer).
    #[arg(long)]
    key_name: Option<String>,
    /// Passphrase of the keypair (jwt_bearer). Prefer SLAM_KEY_PASSWORD.
    #[arg(long, env = "SLAM_KEY_PASSWORD", hide_env_values = true)]
    key_password: Option<String>,
    /// Salesforce password (security_token). Prefer SLAM_PASSWORD.
    #[arg(long, env = "SLAM_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Salesforce security token (security_token). Prefer SLAM_TOKEN.
    #[arg(long, env = "SLAM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// login, test, or a My Domain such as acme.my or acme--partial.sandbox.my.
    #[arg(long, default_value = "login")]
    domain: String,
    /// Salesforce API version.
    #[arg(long, default_value_t = 60, allow_negative_numbers = true)]
    api_version: i64,
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

fn run(mut cli: Cli, matches: &ArgMatches, sink: &mut TerminalSink) -> Result<(), SlamError> {
    let sub = matches.subcommand().map(|(_, m)| m);
    let caller = caller();
    let command = std::mem::replace(&mut cli.command, Command::Ping);
    let (operation, args) = operation(command, sub, sink)?;
    let request = Request {
        version: PROTOCOL_VERSION,
        id: format!("cli-{}-{}", std::process::id(), operation),
        operation: operation.to_string(),
        args,
        caller: caller.clone(),
    };
    if operation == "test_login" {
        sink.set_json_envelope(true);
    }
    if cli.local {
        let clock = SystemClock;
        let http = http_settings(&cli)?;
        let ctx = Context {
            data_dir: cli.data_dir.unwrap_or_else(DataDir::default_path),
            clock: &clock,
            http,
            caller: caller.describe(None),
            resident: None,
        };
        return block_on(ops::dispatch(&ctx, request, sink));
    }
    for id in ["data_dir", "ca_file", "proxy", "http_timeout", "resolve"] {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            sink.warning_now(&format!(
                "`--{}` applies only with --local; the worker uses its own configuration (slam-worker.toml).",
                id.replace('_', "-")
            ));
        }
    }
    let pipe = cli.pipe.unwrap_or_else(|| slam_protocol::DEFAULT_PIPE.to_string());
    let done = slam_client::call(&pipe, &request, &slam_client::CallOptions::default(), |response| match response {
        Response::Message { severity, text, .. } => sink.message(severity, &text),
        Response::ResultSet { columns, rows, .. } => sink.result_set(ResultSet { columns, rows }),
        Response::Done { .. } => {}
    })
    .map_err(|e| {
        let error = e.to_slam_error();
        match (error.code, &error.hint) {
            (ErrorCode::WorkerUnavailable, Some(hint)) => {
                let hint = format!("{hint}; or run the operation in this process with --local");
                error.with_hint(hint)
            }
            _ => error,
        }
    })?;
    match done {
        None => Ok(()),
        Some(error) => Err(error.to_slam_error()),
    }
}

/// The operation a subcommand names and its arguments, as the T-SQL procedure's
/// parameters (what both --local and the worker take).
fn operation(
    command: Command,
    sub: Option<&ArgMatches>,
    sink: &mut TerminalSink,
) -> Result<(&'static str, BTreeMap<String, serde_json::Value>), SlamError> {
    let mut args = BTreeMap::new();
    let mut put = |name: &str, value: serde_json::Value| {
        if !value.is_null() {
            args.insert(name.to_string(), value);
        }
    };
    let operation = match command {
        Command::SetupJwt { key_name, password, password_stdin, cert_days, force } => {
            let password = if password_stdin {
                Some(read_stdin_secret()?)
            } else {
                secret_flag(sub, "password", "--password-stdin` or the SLAM_KEY_PASSWORD variable", password, sink)
            };
            put("key_name", key_name.into());
            put("password", password.into());
            put("cert_days", cert_days.into());
            put("force", force.into());
            "setup_jwt"
        }
        Command::RemoveJwt { key_name } => {
            put("key_name", key_name.into());
            "remove_jwt"
        }
        Command::ListKeys => "list_keys",
        Command::Ping => "ping",
        Command::TestLogin(flags) => {
            connection_args(flags, sub, sink, &mut put);
            "test_login"
        }
        Command::AddConnection { connection, environment_name, skip_test } => {
            connection_args(connection, sub, sink, &mut put);
            put("environment_name", environment_name.into());
            put("skip_test", skip_test.into());
            "add_connection"
        }
        Command::ListConnections => "list_connections",
        Command::UseConnectionUsername { username } => {
            put("username", username.into());
            "use_connection_username"
        }
        Command::TestConnection { username } => {
            put("username", username.into());
            "test_connection"
        }
        Command::RemoveConnection { username } => {
            put("username", username.into());
            "remove_connection"
        }
        Command::Settings => "settings",
    };
    Ok((operation, args))
}

fn connection_args(
    flags: ConnectionFlags,
    sub: Option<&ArgMatches>,
    sink: &mut TerminalSink,
    put: &mut impl FnMut(&str, serde_json::Value),
) {
    put("username", flags.username.into());
    put("auth_method", flags.auth_method.into());
    put("consumer_key", flags.consumer_key.into());
    put("key_name", flags.key_name.into());
    put(
        "key_password",
        secret_flag(sub, "key_password", "the SLAM_KEY_PASSWORD variable", flags.key_password, sink).into(),
    );
    put("password", secret_flag(sub, "password", "the SLAM_PASSWORD variable", flags.password, sink).into());
    put("token", secret_flag(sub, "token", "the SLAM_TOKEN variable", flags.token, sink).into());
    put("domain", flags.domain.into());
    put("api_version", flags.api_version.into());
}

/// Who runs this, for SLAM_Log: the OS account and the program.
fn caller() -> CallerContext {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    CallerContext {
        login: Some(user),
        application: Some(format!("slam-cli {}", env!("CARGO_PKG_VERSION"))),
        ..CallerContext::default()
    }
}

/// Runs an async operation on a runtime that lives only for this call.
fn block_on<T>(future: impl std::future::Future<Output = Result<T, SlamError>>) -> Result<T, SlamError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SlamError::new(ErrorCode::Internal, format!("starting the async runtime failed: {e}")))?;
    runtime.block_on(future)
}

/// A secret flag's value; warns when it came from the command line, where other
/// users can read it (process list, shell history).
fn secret_flag(
    matches: Option<&ArgMatches>,
    id: &str,
    better: &str,
    value: Option<String>,
    sink: &mut TerminalSink,
) -> Option<String> {
    if matches.and_then(|m| m.value_source(id)) == Some(ValueSource::CommandLine) {
        sink.warning_now(&format!(
            "`--{}` on the command line is visible to other users of this machine and stays in shell history; \
             prefer `{better}.",
            id.replace('_', "-")
        ));
    }
    value
}

fn http_settings(cli: &Cli) -> Result<HttpSettings, SlamError> {
    let resolve = cli
        .resolve
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| ResolveOverride::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SlamError::new(ErrorCode::InvalidArgument, e).with_hint("write `--resolve SUFFIX=IP:PORT`"))?;
    Ok(HttpSettings {
        extra_ca_file: cli.ca_file.clone(),
        proxy: cli.proxy.clone(),
        request_timeout: std::time::Duration::from_secs(cli.http_timeout.max(1)),
        resolve,
        ..HttpSettings::default()
    })
}

/// The first line of standard input, without its line ending.
fn read_stdin_secret() -> Result<String, SlamError> {
    // The buffer is wiped on drop; `Secret` owns the only other copy.
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        SlamError::new(ErrorCode::InvalidArgument, format!("reading the passphrase from standard input failed: {e}"))
    })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
