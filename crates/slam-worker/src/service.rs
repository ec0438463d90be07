//! The worker as a Windows service: `slam-worker service install | uninstall |
//! start | stop`, and `service run`, which the service control manager starts.
//!
//! The service runs the same [`crate::bind`] / [`crate::Bound::serve`] as the
//! foreground worker; a Stop or Shutdown control finishes the requests in flight
//! before the service reports Stopped. It logs to a daily-rotated file (by default
//! DATA_DIR\logs\slam-worker.log) and writes start, stop and fatal errors to the
//! Application event log under the source [`EVENT_SOURCE`].
//!
//! By default the service runs as its own virtual account, `NT SERVICE\SpeedifulSLAM`:
//! no password, no rights beyond what the installer grants it (the data directory).

use crate::config::WorkerSettings;
use slam_protocol::{ErrorCode, SlamError};
use slam_windows::eventlog::{self, EventKind};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept, ServiceErrorControl,
    ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState,
    ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

/// The service's name (`sc query SpeedifulSLAM`).
pub const SERVICE_NAME: &str = "SpeedifulSLAM";
/// Its display name in services.msc.
pub const DISPLAY_NAME: &str = "Speediful SLAM worker";
/// The event log source.
pub const EVENT_SOURCE: &str = "Speediful SLAM";
/// The default account: the service's own virtual account.
pub const DEFAULT_ACCOUNT: &str = r"NT SERVICE\SpeedifulSLAM";

/// Event ids in the Application log.
const EVENT_STARTED: u32 = 1;
const EVENT_STOPPED: u32 = 2;
const EVENT_FAILED: u32 = 3;

/// How long `start` / `stop` wait for the service to reach the state.
const STATE_WAIT: Duration = Duration::from_secs(60);

fn scm_error(action: &str, e: windows_service::Error) -> SlamError {
    let detail = match &e {
        windows_service::Error::Winapi(io) => io.to_string(),
        other => other.to_string(),
    };
    let denied = matches!(&e, windows_service::Error::Winapi(io) if io.raw_os_error() == Some(5));
    let error = SlamError::new(ErrorCode::Internal, format!("{action} failed: {detail}"));
    if denied { error.with_hint("run this from an elevated (Administrator) prompt") } else { error }
}

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, SlamError> {
    ServiceManager::local_computer(None::<&str>, access).map_err(|e| scm_error("opening the service manager", e))
}

/// Registers the service to start automatically, running this executable with
/// `service run` (and `--config FILE` when one was given), as `account` (or its
/// own virtual account); registers the event source.
pub fn install(config: Option<&Path>, account: Option<&str>) -> Result<String, SlamError> {
    let exe = this_exe()?;
    let mut arguments = vec![OsString::from("service"), OsString::from("run")];
    if let Some(config) = config {
        let absolute = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
        arguments.splice(0..0, [OsString::from("--config"), absolute.into_os_string()]);
    }
    let account = account.unwrap_or(DEFAULT_ACCOUNT);
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.clone(),
        launch_arguments: arguments,
        dependencies: Vec::new(),
        // LocalSystem is the SCM's default when no account is named.
        account_name: (!account.eq_ignore_ascii_case("LocalSystem")).then(|| account.into()),
        account_password: None,
    };
    let scm = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let service = scm
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_CONFIG | ServiceAccess::START)
        .map_err(|e| match &e {
            windows_service::Error::Winapi(io) if io.raw_os_error() == Some(1073) => {
                SlamError::new(ErrorCode::InvalidArgument, format!("the service {SERVICE_NAME} is already installed"))
                    .with_hint("`slam-worker service uninstall` first to reinstall it")
            }
            _ => scm_error("creating the service", e),
        })?;
    let _ = service.set_description(
        "Serves Speediful SLAM operations (Salesforce connections) to SQL Server over a local named pipe.",
    );
    let events = set_recovery_and_events(&service, &exe);
    Ok(format!(
        "Installed the service {SERVICE_NAME} ({DISPLAY_NAME}), automatic start, running as {account}{events}. \
         Start it with `slam-worker service start`."
    ))
}

/// The path the service runs (and the event source names): this executable.
fn this_exe() -> Result<PathBuf, SlamError> {
    std::env::current_exe()
        .map_err(|e| SlamError::new(ErrorCode::Internal, format!("this executable's path is unknown: {e}")))
}

/// What both ways of installing the service (`service install`, and the MSI through
/// `service prepare`) set after creating it: restart after a crash (10 s, then 60 s,
/// then not until the counter resets a day later) and the Application event log
/// source. Neither is worth failing an install for: a problem is reported and logged.
fn set_recovery_and_events(service: &windows_service::service::Service, exe: &Path) -> String {
    let actions = ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![
            ServiceAction { action_type: ServiceActionType::Restart, delay: Duration::from_secs(10) },
            ServiceAction { action_type: ServiceActionType::Restart, delay: Duration::from_secs(60) },
            ServiceAction { action_type: ServiceActionType::None, delay: Duration::ZERO },
        ]),
    };
    let recovery = match service.update_failure_actions(actions) {
        Ok(()) => "restarts after a crash".to_string(),
        Err(e) => {
            tracing::warn!(error = %e, "the restart-on-failure actions could not be set");
            format!("the restart-after-a-crash actions could not be set ({e})")
        }
    };
    match eventlog::register_source(EVENT_SOURCE, exe) {
        Ok(()) => format!("; {recovery}; events go to the Application log as \"{EVENT_SOURCE}\""),
        Err(e) => format!("; {recovery}; the event log source could not be registered ({e})"),
    }
}

/// What the installer runs, as LocalSystem, before the service first starts: the
/// data directory and its `keys` folder, created if missing, with a protected DACL
/// for SYSTEM, Administrators and `account` (the service's account), and, only when
/// there is no configuration file yet, one admitting `sql_instance`'s service
/// account to the pipe. Re-running it (an upgrade, a repair) restores the DACLs and
/// keeps the configuration, keys, master key and store as they are.
pub fn prepare(
    settings: &WorkerSettings,
    config: &Path,
    sql_instance: &str,
    account: &str,
) -> Result<String, SlamError> {
    let client = crate::pipe_acl::instance_service_account(sql_instance)?;
    let sid = crate::pipe_acl::account_sid(account, slam_windows::lookup_account_sid).map_err(|e| {
        SlamError::new(ErrorCode::InvalidArgument, format!("the service account `{account}` is unknown: {e}"))
    })?;
    let failed = |what: &str, path: &Path, e: std::io::Error| {
        SlamError::new(ErrorCode::DataDirUnusable, format!("{what} {} failed: {e}", path.display()))
    };
    let mut report = Vec::new();
    for dir in [settings.data_dir.clone(), settings.data_dir.join("keys")] {
        let existed = dir.is_dir();
        std::fs::create_dir_all(&dir).map_err(|e| failed("creating", &dir, e))?;
        slam_windows::restrict_to_account(&dir, &sid).map_err(|e| failed("restricting", &dir, e))?;
        let verb = if existed { "kept" } else { "created" };
        report.push(format!("{verb} {} (SYSTEM, Administrators and {account} only)", dir.display()));
    }
    // The MSI registered the service just before (InstallServices); its own tables
    // cannot express the recovery actions or the event source.
    let exe = this_exe()?;
    match manager(ServiceManagerAccess::CONNECT)
        .and_then(|scm| scm.open_service(SERVICE_NAME, ServiceAccess::CHANGE_CONFIG).map_err(not_installed))
    {
        Ok(service) => report.push(format!("the service {SERVICE_NAME}{}", set_recovery_and_events(&service, &exe))),
        Err(e) => report.push(format!("the service's recovery and event source were not set: {}", e.message)),
    }
    if config.exists() {
        report.push(format!("kept the configuration {}", config.display()));
    } else {
        let written = WorkerSettings {
            allowed_clients: vec![client.clone()],
            store: "sqlserver".into(),
            sqlserver: crate::config::SqlServerSection {
                server: crate::pipe_acl::instance_server(sql_instance),
                authentication: "windows".into(),
                // The worker and the instance share this machine: only the login
                // crosses loopback encrypted, against the instance's own (often
                // self-signed) certificate. docs/sql-server-store.md says how to
                // require full encryption with a trusted certificate.
                encrypt: "optional".into(),
                trust_server_certificate: true,
                ..crate::config::SqlServerSection::default()
            },
            data_dir: settings.data_dir.clone(),
            ..WorkerSettings::default()
        };
        let text = format!(
            "# Written by the Speediful SLAM installer; edit it, then restart the service.\n\
             # Every setting is documented in docs\\worker.md; [sqlserver] in docs\\sql-server-store.md.\n{}",
            written.to_toml()
        );
        std::fs::write(config, text).map_err(|e| failed("writing", config, e))?;
        report.push(format!(
            "wrote {} admitting {client} to the pipe, the store in {}'s databases",
            config.display(),
            written.sqlserver.server
        ));
    }
    Ok(report.join("\n"))
}

/// Stops the service if it runs, and removes it and its event source.
pub fn uninstall() -> Result<String, SlamError> {
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let service = scm
        .open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE)
        .map_err(not_installed)?;
    let status = service.query_status().map_err(|e| scm_error("querying the service", e))?;
    if status.current_state != ServiceState::Stopped {
        let _ = service.stop();
        wait_for(&service, ServiceState::Stopped)?;
    }
    service.delete().map_err(|e| scm_error("deleting the service", e))?;
    drop(service);
    let _ = eventlog::unregister_source(EVENT_SOURCE);
    Ok(format!("Removed the service {SERVICE_NAME}. The data directory and its keys are left in place."))
}

/// Starts the service and waits until it runs.
pub fn start() -> Result<String, SlamError> {
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let service =
        scm.open_service(SERVICE_NAME, ServiceAccess::START | ServiceAccess::QUERY_STATUS).map_err(not_installed)?;
    let started = Instant::now();
    service.start::<&OsStr>(&[]).map_err(|e| scm_error("starting the service", e))?;
    wait_for(&service, ServiceState::Running)?;
    Ok(format!("The service {SERVICE_NAME} is running (started in {} ms).", started.elapsed().as_millis()))
}

/// Stops the service and waits until it has stopped.
pub fn stop() -> Result<String, SlamError> {
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let service =
        scm.open_service(SERVICE_NAME, ServiceAccess::STOP | ServiceAccess::QUERY_STATUS).map_err(not_installed)?;
    let started = Instant::now();
    service.stop().map_err(|e| scm_error("stopping the service", e))?;
    wait_for(&service, ServiceState::Stopped)?;
    Ok(format!("The service {SERVICE_NAME} has stopped (in {} ms).", started.elapsed().as_millis()))
}

/// The service's current state, for scripts and tests.
pub fn state() -> Result<ServiceState, SlamError> {
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let service = scm.open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS).map_err(not_installed)?;
    Ok(service.query_status().map_err(|e| scm_error("querying the service", e))?.current_state)
}

fn not_installed(e: windows_service::Error) -> SlamError {
    match &e {
        windows_service::Error::Winapi(io) if io.raw_os_error() == Some(1060) => {
            SlamError::new(ErrorCode::WorkerUnavailable, format!("the service {SERVICE_NAME} is not installed"))
                .with_hint("install it with `slam-worker service install` (elevated)")
        }
        _ => scm_error("opening the service", e),
    }
}

fn wait_for(service: &windows_service::service::Service, wanted: ServiceState) -> Result<(), SlamError> {
    let started = Instant::now();
    loop {
        let status = service.query_status().map_err(|e| scm_error("querying the service", e))?;
        if status.current_state == wanted {
            return Ok(());
        }
        if status.current_state == ServiceState::Stopped && wanted == ServiceState::Running {
            return Err(SlamError::new(
                ErrorCode::WorkerUnavailable,
                format!("the service {SERVICE_NAME} stopped while starting (exit code {:?})", status.exit_code),
            )
            .with_hint(format!("the Application event log (source \"{EVENT_SOURCE}\") and the worker's log say why")));
        }
        if started.elapsed() > STATE_WAIT {
            return Err(SlamError::new(
                ErrorCode::WorkerUnavailable,
                format!(
                    "the service {SERVICE_NAME} did not reach {wanted:?} within {} s (it is {:?})",
                    STATE_WAIT.as_secs(),
                    status.current_state
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The settings `service run` was started with, for the service's main function
/// (the dispatcher calls it without arguments of ours).
static SETTINGS: OnceLock<WorkerSettings> = OnceLock::new();

/// Hands this process to the service control manager; returns when the service
/// has stopped. Only the SCM should run this.
pub fn run(settings: WorkerSettings) -> Result<String, SlamError> {
    let _ = SETTINGS.set(settings);
    windows_service::service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(|e| {
        scm_error("connecting to the service control manager", e)
            .with_hint("`service run` is started by Windows; use `slam-worker service start`")
    })?;
    Ok(format!("The service {SERVICE_NAME} has stopped."))
}

windows_service::define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    let Some(settings) = SETTINGS.get() else { return };
    // A panic must not leave the service "running" with nothing behind it.
    let outcome = std::panic::catch_unwind(|| run_service(settings))
        .unwrap_or_else(|_| Err(SlamError::new(ErrorCode::Internal, "the service panicked")));
    if let Err(e) = outcome {
        eventlog::report(EVENT_SOURCE, EventKind::Error, EVENT_FAILED, &format!("{SERVICE_NAME} failed: {e}"));
    }
}

fn run_service(settings: &WorkerSettings) -> Result<(), SlamError> {
    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let handler = move |control| match control {
        ServiceControl::Stop => {
            let _ = stop_tx.send("stop");
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Shutdown => {
            let _ = stop_tx.send("system shutdown");
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status_handle = service_control_handler::register(SERVICE_NAME, handler)
        .map_err(|e| scm_error("registering the service control handler", e))?;
    let report = |state, accepted, exit: u32, wait: u64| {
        let _ = status_handle.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accepted,
            exit_code: if exit == 0 { ServiceExitCode::Win32(0) } else { ServiceExitCode::ServiceSpecific(exit) },
            checkpoint: 0,
            wait_hint: Duration::from_secs(wait),
            process_id: None,
        });
    };
    report(ServiceState::StartPending, ServiceControlAccept::empty(), 0, 30);

    let result = serve_until_stopped(settings, &mut stop_rx, || {
        report(ServiceState::Running, ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN, 0, 0);
    });
    // Everything is finished (logs flushed) before Stopped is reported: the process
    // may end as soon as it is.
    match &result {
        Ok(why) => {
            eventlog::report(
                EVENT_SOURCE,
                EventKind::Information,
                EVENT_STOPPED,
                &format!("{SERVICE_NAME} stopped ({why})."),
            );
            report(ServiceState::Stopped, ServiceControlAccept::empty(), 0, 0);
        }
        Err(e) => {
            eventlog::report(EVENT_SOURCE, EventKind::Error, EVENT_FAILED, &format!("{SERVICE_NAME} failed: {e}"));
            report(ServiceState::Stopped, ServiceControlAccept::empty(), e.code.number(), 0);
        }
    }
    result.map(|_| ())
}

fn serve_until_stopped(
    settings: &WorkerSettings,
    stop_rx: &mut tokio::sync::mpsc::UnboundedReceiver<&'static str>,
    running: impl FnOnce(),
) -> Result<&'static str, SlamError> {
    let log_file = if settings.log.file.is_empty() {
        crate::logging::default_log_file(&settings.data_dir)
    } else {
        settings.log.file.clone().into()
    };
    let _log = crate::logging::init(&settings.log, Some(&log_file))?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| SlamError::new(ErrorCode::Internal, format!("starting the runtime failed: {e}")))?;
    runtime.block_on(async {
        let bound = crate::bind(settings).inspect_err(|e| tracing::error!(error = %e, "the worker cannot start"))?;
        let address = bound.address().to_string();
        running();
        eventlog::report(
            EVENT_SOURCE,
            EventKind::Information,
            EVENT_STARTED,
            &format!("{SERVICE_NAME} {} started, listening on {address}.", env!("CARGO_PKG_VERSION")),
        );
        let mut why = "stop requested";
        bound
            .serve(async {
                why = stop_rx.recv().await.unwrap_or("control channel closed");
                tracing::info!(reason = why, "stopping: finishing the requests in flight");
            })
            .await;
        Ok(why)
    })
}
