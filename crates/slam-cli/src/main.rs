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

mod install_sql;
mod render;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};
use render::{Format, TerminalSink};
use slam_core::clock::SystemClock;
use slam_core::data_dir::DataDir;
use slam_core::ops::{self, Context};
use slam_core::salesforce::{HttpSettings, ResolveOverride};
use slam_protocol::catalogue::{self, Operation, Param, ParamDefault, ParamType};
use slam_protocol::{CallerContext, ErrorCode, OutputSink, PROTOCOL_VERSION, Request, Response, ResultSet, SlamError};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// Speediful SLAM: Salesforce connections for SQL Server, from the command line.
// No `Debug`: the parsed flags may hold passwords and tokens.
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

    /// The account the worker runs as: whatever serves the pipe must run as it (or
    /// as root / LocalSystem) before any request is sent. Unix: a uid; Windows: a
    /// SID or account name. [default: the owner of the socket's directory on Unix,
    /// NT SERVICE\SpeedifulSLAM on Windows]
    #[arg(long, global = true, env = "SLAM_WORKER_ACCOUNT", value_name = "ACCOUNT")]
    worker_account: Option<String>,

    /// The SQL Server database the operation is for (the worker's SQL Server store
    /// keeps connections in each database's SLAM tables); for install-sql, the
    /// database to install SLAM in.
    #[arg(long, global = true, env = "SLAM_DATABASE", value_name = "NAME")]
    database: Option<String>,

    /// How to print result sets.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// A PEM file of extra CA certificates to trust for Salesforce (e.g. a TLS-inspecting
    /// proxy's CA), besides the operating system's trust store.
    #[arg(long, global = true, env = "SLAM_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,

    /// Proxy URL for Salesforce (otherwise HTTPS_PROXY / HTTP_PROXY / NO_PROXY apply).
    #[arg(long, global = true, env = "SLAM_PROXY", hide_env_values = true, value_name = "URL")]
    proxy: Option<String>,

    /// Seconds one Salesforce request may take, answer included.
    #[arg(long, global = true, env = "SLAM_HTTP_TIMEOUT", value_name = "SECONDS", default_value_t = 60)]
    http_timeout: u64,

    /// Send every host under SUFFIX to IP:PORT (TLS still checks the real host name), e.g.
    /// salesforce.com=127.0.0.1:8443 for the fake Salesforce. Comma-separated.
    #[arg(long, global = true, env = "SLAM_RESOLVE", value_name = "SUFFIX=IP:PORT", value_delimiter = ',')]
    resolve: Vec<String>,
}

fn main() -> ExitCode {
    let matches = cli_command().get_matches();
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
        // tiberius logs every server error at ERROR; install-sql reports them itself.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tiberius=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn run(cli: Cli, matches: &ArgMatches, sink: &mut TerminalSink) -> Result<(), SlamError> {
    if let Some(("install-sql", sub)) = matches.subcommand() {
        let args = install_sql::InstallSqlArgs::from_arg_matches(sub)
            .map_err(|e| SlamError::new(ErrorCode::InvalidArgument, e.to_string()))?;
        let password = || match args.password_stdin {
            true => read_stdin_secret(),
            false => Ok(std::env::var("SLAM_SQL_PASSWORD").unwrap_or_default()),
        };
        return install_sql::run(&args, cli.database.as_deref(), cli.worker_account.as_deref(), password);
    }
    let mut caller = caller();
    caller.database = cli.database.clone();
    let (operation, args) = request_args(matches, sink)?;
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
        if cli.database.is_some() {
            sink.warning_now(
                "`--database` applies only through the worker's SQL Server store; --local uses DATA_DIR/slam.db.",
            );
        }
        let clock = SystemClock;
        let http = http_settings(&cli)?;
        let data_dir = cli.data_dir.unwrap_or_else(DataDir::default_path);
        let ctx = Context {
            store: ops::embedded_store(&data_dir),
            data_dir,
            clock: &clock,
            http,
            caller: caller.describe(None),
            resident: None,
            database: caller.database.clone(),
        };
        return block_on(ops::dispatch(&ctx, request, sink));
    }
    for id in ["data_dir", "ca_file", "proxy", "http_timeout", "resolve"] {
        // (`--database` is the reverse: it matters only to the worker's SQL Server store.)
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            sink.warning_now(&format!(
                "`--{}` applies only with --local; the worker uses its own configuration (slam-worker.toml).",
                id.replace('_', "-")
            ));
        }
    }
    let pipe = cli.pipe.unwrap_or_else(|| slam_protocol::DEFAULT_PIPE.to_string());
    let options = slam_client::CallOptions {
        worker_account: match cli.worker_account.filter(|a| !a.trim().is_empty()) {
            Some(account) => slam_client::WorkerAccount::Named(account.trim().to_string()),
            None => slam_client::WorkerAccount::Default,
        },
        ..slam_client::CallOptions::default()
    };
    let done = slam_client::call(&pipe, &request, &options, |response| match response {
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

/// The whole command line: the global flags from [`Cli`], and one subcommand per
/// operation of the catalogue, its flags built from the operation's parameters
/// (names, types, defaults, help), so a parameter added to the catalogue is a flag
/// here with no further edit.
fn cli_command() -> clap::Command {
    let mut command = Cli::command().subcommand_required(true);
    for operation in catalogue::OPERATIONS {
        command = command.subcommand(subcommand(operation));
    }
    let install = clap::Command::new("install-sql").about(
        "Install or upgrade SLAM on a SQL Server instance: sql/slam-master.sql in master, then \
         sql/slam-install.sql in --database. Safe to run again.",
    );
    command.subcommand(<install_sql::InstallSqlArgs as clap::Args>::augment_args(install))
}

fn subcommand(operation: &Operation) -> clap::Command {
    let about = match operation.procedure {
        Some(procedure) => format!("{} ({procedure})", operation.description),
        None => operation.description.to_string(),
    };
    let mut sub = clap::Command::new(operation.cli_name()).about(about).next_help_heading("Parameters");
    for param in operation.params {
        let flag = param.name.replace('_', "-");
        let mut arg = Arg::new(param.name).long(flag.clone()).help(param.description);
        arg = match param.ty {
            ParamType::Bit => arg.action(ArgAction::SetTrue),
            ParamType::Int => arg.value_parser(clap::value_parser!(i64)).allow_negative_numbers(true).value_name("N"),
            ParamType::Text { .. } => arg.value_name(param.name.to_uppercase()),
        };
        arg = match param.default {
            ParamDefault::Required => arg.required(true),
            ParamDefault::Text(text) => arg.default_value(text),
            ParamDefault::Int(n) => arg.default_value(n.to_string()),
            ParamDefault::Null | ParamDefault::Bit(_) => arg,
        };
        if param.secret {
            let env = secret_env(operation, param);
            arg = arg.env(env).hide_env_values(true).help(format!(
                "{}. Prefer {env} or --{flag}-stdin: a value on the command line is visible to other users",
                param.description
            ));
            sub = sub.arg(
                Arg::new(format!("{}_stdin", param.name))
                    .long(format!("{flag}-stdin"))
                    .action(ArgAction::SetTrue)
                    .conflicts_with(param.name)
                    .help(format!("Read --{flag} from the first line of standard input")),
            );
        }
        sub = sub.arg(arg);
    }
    sub
}

/// The environment variable a secret flag falls back to. A keypair's passphrase is
/// `SLAM_KEY_PASSWORD` whether it is being set (`setup-jwt --password`) or used
/// (`--key-password`), so one variable serves a whole script.
fn secret_env(operation: &Operation, param: &Param) -> &'static str {
    match (operation.name, param.name) {
        ("setup_jwt", "password") | (_, "key_password") => "SLAM_KEY_PASSWORD",
        (_, "token") => "SLAM_TOKEN",
        _ => "SLAM_PASSWORD",
    }
}

/// The operation the subcommand names and its arguments, as the T-SQL procedure's
/// parameters (what both --local and the worker take).
fn request_args(
    matches: &ArgMatches,
    sink: &mut TerminalSink,
) -> Result<(&'static str, BTreeMap<String, serde_json::Value>), SlamError> {
    let internal = |e: clap::parser::MatchesError| SlamError::new(ErrorCode::Internal, format!("reading flags: {e}"));
    let (name, sub) =
        matches.subcommand().ok_or_else(|| SlamError::new(ErrorCode::Internal, "no subcommand (clap requires one)"))?;
    let operation = catalogue::OPERATIONS
        .iter()
        .find(|op| op.cli_name() == name)
        .ok_or_else(|| SlamError::new(ErrorCode::Internal, format!("subcommand `{name}` is not catalogued")))?;
    let mut args = BTreeMap::new();
    let mut read_stdin = false;
    for param in operation.params {
        let value = match param.ty {
            ParamType::Text { .. } => sub.try_get_one::<String>(param.name).map_err(internal)?.cloned().map(Into::into),
            ParamType::Int => sub.try_get_one::<i64>(param.name).map_err(internal)?.copied().map(Into::into),
            ParamType::Bit => sub.try_get_one::<bool>(param.name).map_err(internal)?.copied().map(Into::into),
        };
        let value = if param.secret && sub.get_flag(&format!("{}_stdin", param.name)) {
            if std::mem::replace(&mut read_stdin, true) {
                return Err(SlamError::new(
                    ErrorCode::InvalidArgument,
                    "only one secret can be read from standard input",
                )
                .with_hint("give the others in their environment variables"));
            }
            Some(read_stdin_secret()?.into())
        } else {
            if param.secret && sub.value_source(param.name) == Some(ValueSource::CommandLine) {
                sink.warning_now(&format!(
                    "`--{}` on the command line is visible to other users of this machine and stays in shell \
                     history; prefer `--{}-stdin` or the {} variable.",
                    param.name.replace('_', "-"),
                    param.name.replace('_', "-"),
                    secret_env(operation, param)
                ));
            }
            value
        };
        if let Some(value) = value {
            args.insert(param.name.to_string(), value);
        }
    }
    Ok((operation.name, args))
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
    // The buffer is wiped on drop. The returned `String` is a plain copy: it travels
    // as a JSON string in the request, which is not zeroed either (docs/security.md).
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        SlamError::new(ErrorCode::InvalidArgument, format!("reading the passphrase from standard input failed: {e}"))
    })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_parameter_is_a_flag_and_the_command_line_is_well_formed() {
        let command = cli_command();
        command.clone().debug_assert();
        for operation in catalogue::OPERATIONS {
            let sub = command.find_subcommand(operation.cli_name()).unwrap();
            for param in operation.params {
                let arg = sub.get_arguments().find(|a| a.get_id() == param.name).unwrap();
                assert_eq!(arg.get_long(), Some(param.name.replace('_', "-").as_str()));
                assert_eq!(arg.is_required_set(), param.default == ParamDefault::Required, "{}", param.name);
            }
        }
    }

    #[test]
    fn flags_become_the_requests_arguments_with_the_catalogues_defaults() {
        let matches = cli_command()
            .try_get_matches_from(["slam", "add-connection", "--username", "u@x.com", "--skip-test"])
            .unwrap();
        let mut sink = TerminalSink::new(Format::Json);
        let (operation, args) = request_args(&matches, &mut sink).unwrap();
        assert_eq!(operation, "add_connection");
        assert_eq!(args["auth_method"], "security_token");
        assert_eq!(args["domain"], "login");
        assert_eq!(args["api_version"], 60);
        assert_eq!(args["skip_test"], true);
        assert!(!args.contains_key("environment_name"), "NULL is left out");
        let usage = cli_command().try_get_matches_from(["slam", "remove-connection"]).unwrap_err();
        assert_eq!(usage.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
}
