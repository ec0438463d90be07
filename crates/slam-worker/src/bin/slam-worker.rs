//! `slam-worker`: serve SLAM operations on the local pipe.
//!
//! In the foreground it stops on Ctrl-C (or SIGTERM), after finishing the requests
//! in flight. On Windows, `slam-worker service ...` installs and controls the
//! Windows service, which runs the same code.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use slam_protocol::SlamError;
use slam_worker::WorkerSettings;
use slam_worker::config::default_config_path;
use std::path::PathBuf;
use std::process::ExitCode;

/// The SLAM worker: serves SLAM operations to the SQL Server XP and the `slam` CLI.
#[derive(Parser)]
#[command(name = "slam-worker", version, max_term_width = 100)]
struct Args {
    /// The configuration file (TOML). [default: %ProgramData%\Speediful\SLAM\slam-worker.toml
    /// on Windows, /etc/speediful/slam-worker.toml elsewhere; absent means defaults]
    #[arg(long, env = "SLAM_WORKER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The SLAM data directory (overrides `data_dir`).
    #[arg(long, env = "SLAM_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The pipe name on Windows, the socket path elsewhere (overrides `pipe`).
    #[arg(long, env = "SLAM_PIPE", value_name = "PATH")]
    pipe: Option<String>,
    /// Also allow this client (uid on Unix, account or SID on Windows). Repeatable.
    #[arg(long = "allow-client", value_name = "CLIENT")]
    allow_client: Vec<String>,
    /// Check the configuration (and the files and directories it names), print the
    /// effective settings, and exit.
    #[arg(long)]
    check_config: bool,
    /// Print a configuration file with every setting at its default, and exit.
    #[arg(long, conflicts_with = "check_config")]
    print_default_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The Windows service: install, uninstall, start, stop.
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[derive(Subcommand, Clone)]
enum ServiceCommand {
    /// Register the service (automatic start, runs this executable with --config if given).
    Install {
        /// The account to run as: LocalSystem, or DOMAIN\user for a managed service
        /// account. [default: the service's virtual account NT SERVICE\SpeedifulSLAM]
        #[arg(long, value_name = "ACCOUNT")]
        account: Option<String>,
    },
    /// Stop (if running) and remove the service.
    Uninstall,
    /// What the installer runs as LocalSystem: create the data directory and keys\
    /// with a DACL for SYSTEM, Administrators and the service's account, and a
    /// configuration admitting the SQL Server instance if there is none.
    Prepare {
        /// The SQL Server instance whose service account may use the pipe:
        /// MSSQLSERVER (the default instance) or a named instance (SQLEXPRESS).
        #[arg(long, value_name = "INSTANCE", default_value = "MSSQLSERVER")]
        sql_instance: String,
        /// The account the service runs as.
        #[arg(long, value_name = "ACCOUNT", default_value = slam_protocol::DEFAULT_WORKER_ACCOUNT)]
        account: String,
    },
    /// Start the service and wait until it runs.
    Start,
    /// Stop the service and wait until it has stopped.
    Stop,
    /// What the service control manager runs; not for people.
    #[command(hide = true)]
    Run,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", WorkerSettings::default().to_toml());
        return ExitCode::SUCCESS;
    }
    let settings = match load_settings(&args) {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    match args.command {
        Some(Command::Service(command)) => service(command, &settings, args.config.as_deref()),
        None if args.check_config => check_config(&settings),
        None => foreground(&settings),
    }
}

/// The file's settings with flags and environment variables applied.
fn load_settings(args: &Args) -> Result<WorkerSettings, SlamError> {
    // `service prepare` writes the configuration the installer names: it may not exist yet.
    let preparing = matches!(&args.command, Some(Command::Service(ServiceCommand::Prepare { .. })));
    let (path, required) = match &args.config {
        Some(path) => (path.clone(), !preparing),
        None => (default_config_path(), false),
    };
    let mut settings = WorkerSettings::load(&path, required)?;
    if let Some(dir) = &args.data_dir {
        settings.data_dir = dir.clone();
    }
    if let Some(pipe) = &args.pipe {
        settings.pipe = pipe.clone();
    }
    settings.allowed_clients.extend(args.allow_client.iter().cloned());
    settings.validate()?;
    Ok(settings)
}

fn fail(error: &SlamError) -> ExitCode {
    eprintln!("error: SLAM error {} {}: {}", error.code.number(), error.code.as_str(), error.message);
    if let Some(hint) = &error.hint {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(1)
}

fn check_config(settings: &WorkerSettings) -> ExitCode {
    let mut problems = slam_worker::check::environment(settings);
    print!("{}", settings.to_toml());
    match slam_worker::check::sqlserver(settings) {
        Some(Ok(found)) => eprintln!("{found}"),
        Some(Err(problem)) => problems.push(problem),
        None => {}
    }
    if problems.is_empty() {
        eprintln!("The configuration is valid and everything it names is usable.");
        ExitCode::SUCCESS
    } else {
        for problem in &problems {
            fail(problem);
        }
        ExitCode::from(1)
    }
}

fn foreground(settings: &WorkerSettings) -> ExitCode {
    let log_file = (!settings.log.file.is_empty()).then(|| PathBuf::from(&settings.log.file));
    let _guard = match slam_worker::logging::init(&settings.log, log_file.as_deref()) {
        Ok(guard) => guard,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime failed: {e}");
            return ExitCode::from(1);
        }
    };
    let served = runtime.block_on(slam_worker::listen_and_serve(settings, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("interrupted: finishing the requests in flight");
    }));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

#[cfg(windows)]
fn service(command: ServiceCommand, settings: &WorkerSettings, config: Option<&std::path::Path>) -> ExitCode {
    use slam_worker::service;
    let result = match command {
        ServiceCommand::Install { account } => service::install(config, account.as_deref()),
        ServiceCommand::Uninstall => service::uninstall(),
        ServiceCommand::Prepare { sql_instance, account } => {
            let config = config.map_or_else(slam_worker::config::default_config_path, std::path::Path::to_path_buf);
            service::prepare(settings, &config, &sql_instance, &account)
        }
        ServiceCommand::Start => service::start(),
        ServiceCommand::Stop => service::stop(),
        ServiceCommand::Run => service::run(settings.clone()),
    };
    match result {
        Ok(message) => {
            eprintln!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

#[cfg(not(windows))]
fn service(_: ServiceCommand, _: &WorkerSettings, _: Option<&std::path::Path>) -> ExitCode {
    fail(
        &SlamError::new(slam_protocol::ErrorCode::InvalidArgument, "`slam-worker service` is for Windows")
            .with_hint("on Unix run `slam-worker` under your service manager (e.g. a systemd unit)"),
    )
}
