//! `slam install-sql`: the SQL side of an install in one command.
//!
//! Runs `sql/slam-master.sql` in `master` (the extended procedure and the worker's
//! login), then `sql/slam-install.sql` in the database named by `--database` (the
//! tables, the signed procedures and the worker's user). Both scripts are the ones
//! a DBA can run by hand in SSMS or sqlcmd; they are split into batches as sqlcmd
//! splits them (`slam_tsql::script`), with `SLAM_WORKER_ACCOUNT` and any `--var`
//! as sqlcmd variables. Each is safe to run again, so a failed run is fixed and
//! repeated, never undone by hand.

use secrecy::SecretString;
use slam_protocol::{ErrorCode, SlamError};
use slam_store::mssql::{
    BATCH_TIMEOUT, DATABASE_REPORT, Encrypt, MASTER_REPORT, ScriptBatch, ServerAddress, SqlAuth, SqlServerSettings,
    run_script,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `slam install-sql`'s own flags.
#[derive(clap::Args)]
pub(crate) struct InstallSqlArgs {
    /// The SQL Server instance: `host`, `host,port` or `host\INSTANCE`.
    #[arg(long, env = "SLAM_SQL_SERVER", value_name = "SERVER")]
    pub(crate) server: String,

    /// `windows` (you, as you are logged in; Windows only) or `sql` (with --user).
    #[arg(long, value_name = "METHOD", default_value = if cfg!(windows) { "windows" } else { "sql" })]
    pub(crate) authentication: String,

    /// The SQL Server login (`--authentication sql`); it must be a sysadmin.
    #[arg(long, env = "SLAM_SQL_USER", value_name = "LOGIN")]
    pub(crate) user: Option<String>,

    /// Read that login's password from standard input (otherwise SLAM_SQL_PASSWORD).
    #[arg(long)]
    pub(crate) password_stdin: bool,

    /// `strict` (TDS 8.0), `mandatory` or `optional` (only the login is encrypted).
    #[arg(long, value_name = "MODE")]
    pub(crate) encrypt: String,

    /// Accept the server's certificate whoever signed it (a test server). Avoid.
    #[arg(long)]
    pub(crate) trust_server_certificate: bool,

    /// A PEM file of CA certificates to trust for the server's certificate.
    #[arg(long, value_name = "FILE")]
    pub(crate) server_ca_file: Option<PathBuf>,

    /// Where slam-master.sql and slam-install.sql are
    /// [default: `sql` beside slam, or the source tree's `sql`].
    #[arg(long, value_name = "DIR")]
    pub(crate) scripts: Option<PathBuf>,

    /// Make no login for the worker (it uses SQL authentication; its login is yours to create).
    #[arg(long)]
    pub(crate) no_worker_login: bool,

    /// Run only slam-install.sql in --database, not slam-master.sql: for a further
    /// database on an instance already set up. slam-master.sql unloads xp_slam.dll
    /// (DBCC FREE), which is for an upgrade, at a moment no SLAM call runs.
    #[arg(long)]
    pub(crate) skip_master: bool,

    /// A sqlcmd variable for the scripts, NAME=VALUE (repeatable).
    #[arg(long = "var", short = 'v', value_name = "NAME=VALUE")]
    pub(crate) vars: Vec<String>,
}

/// Runs the scripts; `database` is the global `--database`, `worker_account` the
/// global `--worker-account`.
pub(crate) fn run(
    args: &InstallSqlArgs,
    database: Option<&str>,
    worker_account: Option<&str>,
    password: impl FnOnce() -> Result<String, SlamError>,
) -> Result<(), SlamError> {
    let scripts = scripts_dir(args.scripts.as_deref())?;
    let settings = settings(args, password)?;
    let worker =
        if args.no_worker_login { "" } else { worker_account.unwrap_or(slam_protocol::DEFAULT_WORKER_ACCOUNT) };
    fits_in_a_literal("--worker-account", worker)?;
    if worker.starts_with("S-1-") {
        return Err(invalid(format!(
            "--worker-account `{worker}` is a SID; the worker's login is made from an account name, e.g. \
             NT SERVICE\\SpeedifulSLAM (is SLAM_WORKER_ACCOUNT set in this shell?)"
        )));
    }
    let mut variables = BTreeMap::new();
    for var in &args.vars {
        let (name, value) = var.split_once('=').ok_or_else(|| invalid(format!("--var `{var}` is not NAME=VALUE")))?;
        variables.insert(name.trim().to_string(), value.to_string());
    }
    variables.insert("SLAM_WORKER_ACCOUNT".to_string(), worker.to_string());
    if !variables.contains_key(DLL_FOLDER) {
        variables.insert(DLL_FOLDER.to_string(), installed_dll_folder());
    }
    fits_in_a_literal(DLL_FOLDER, &variables[DLL_FOLDER])?;

    if args.skip_master {
        if database.is_none() {
            return Err(invalid("--skip-master needs --database: there is nothing else to run"));
        }
        eprintln!("Skipping slam-master.sql (--skip-master): xp_slam and the worker's login are left as they are.");
    } else {
        run_one(&settings, &scripts.join("slam-master.sql"), "master", &variables, MASTER_REPORT, worker)?;
    }
    match database {
        Some(database) => {
            run_one(&settings, &scripts.join("slam-install.sql"), database, &variables, DATABASE_REPORT, worker)?;
            eprintln!(
                "SLAM is installed in {}/{database}. Next: EXEC dbo.SLAM_ping; in that database.",
                settings.server
            );
        }
        None => eprintln!(
            "Only the instance part was installed. Run again with --database NAME for each database that will use SLAM."
        ),
    }
    Ok(())
}

fn run_one(
    settings: &SqlServerSettings,
    script: &Path,
    database: &str,
    variables: &BTreeMap<String, String>,
    report: &str,
    worker: &str,
) -> Result<(), SlamError> {
    let name = script.file_name().map_or_else(|| script.display().to_string(), |n| n.to_string_lossy().into_owned());
    let text =
        std::fs::read_to_string(script).map_err(|e| failed(format!("{} cannot be read: {e}", script.display())))?;
    let batches = slam_tsql::script::prepare(&text, variables).map_err(|e| failed(format!("{name}: {e}")))?;
    let batches: Vec<ScriptBatch<'_>> =
        batches.iter().map(|b| ScriptBatch { text: &b.text, first_line: b.first_line, repeat: b.repeat }).collect();
    eprintln!("Running {name} in {}/{database} ({} batches)...", settings.server, batches.len());
    let found = run_script(settings, database, &batches, report, worker, &mut |done, total| {
        tracing::debug!(script = %name, done, total, "batch done");
    })
    .map_err(|e| {
        failed(format!("{name}: {e}")).with_hint(
            "nothing after that batch ran; fix what SQL Server says (run as a sysadmin; slam-master.sql before \
             slam-install.sql), then run the same command again",
        )
    })?;
    eprintln!("{name}: done.");
    for (item, value) in found {
        eprintln!("  {item}: {value}");
    }
    Ok(())
}

fn settings(
    args: &InstallSqlArgs,
    password: impl FnOnce() -> Result<String, SlamError>,
) -> Result<SqlServerSettings, SlamError> {
    let server = ServerAddress::parse(&args.server).map_err(|e| invalid(format!("--server: {e}")))?;
    let encrypt = Encrypt::parse(&args.encrypt)
        .ok_or_else(|| invalid(format!("--encrypt `{}` is not `strict`, `mandatory` or `optional`", args.encrypt)))?;
    let auth = match args.authentication.as_str() {
        "windows" if slam_store::mssql::INTEGRATED_IS_AVAILABLE => SqlAuth::Integrated,
        "windows" => return Err(invalid("--authentication windows needs Windows; use `sql` with --user")),
        "sql" => {
            let user = args.user.clone().filter(|u| !u.trim().is_empty());
            let user = user.ok_or_else(|| invalid("--authentication sql needs --user (a sysadmin login)"))?;
            let password = password()?;
            if password.is_empty() {
                return Err(invalid("the SQL login's password is empty (--password-stdin or SLAM_SQL_PASSWORD)"));
            }
            SqlAuth::Login { user, password: SecretString::from(password) }
        }
        other => return Err(invalid(format!("--authentication `{other}` is not `windows` or `sql`"))),
    };
    let mut settings = SqlServerSettings::new(server, auth, encrypt);
    if args.trust_server_certificate && args.server_ca_file.is_some() {
        return Err(invalid(
            "give --server-ca-file or --trust-server-certificate, not both: trusting any certificate would ignore the CA file",
        ));
    }
    settings.trust_server_certificate = args.trust_server_certificate;
    settings.ca_file = args.server_ca_file.clone();
    settings.command_timeout = BATCH_TIMEOUT;
    Ok(settings)
}

/// The scripts paste these values into an `N'...'` literal, as sqlcmd would: a quote
/// or a line break would change the T-SQL around it.
fn fits_in_a_literal(what: &str, value: &str) -> Result<(), SlamError> {
    if value.contains(['\'', '\r', '\n']) {
        return Err(invalid(format!("{what} `{value}` contains a quote or a line break")));
    }
    Ok(())
}

/// The sqlcmd variable naming the folder `slam-master.sql` registers `xp_slam.dll` from.
const DLL_FOLDER: &str = "SLAM_DLL_FOLDER";

/// This program's folder when `xp_slam.dll` is beside it (the installed layout, wherever
/// the MSI's INSTALLDIR put it); otherwise empty, which the script reads as its default.
fn installed_dll_folder() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .filter(|dir| dir.join("xp_slam.dll").is_file())
        .map(|dir| dir.display().to_string())
        .unwrap_or_default()
}

/// `--scripts`, or `sql` beside the executable (the installed layout), or the
/// source tree's `sql` (a development build in `target/<profile>/`).
fn scripts_dir(given: Option<&Path>) -> Result<PathBuf, SlamError> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    let exe = std::env::current_exe().map_err(|e| invalid(format!("cannot find this program's folder: {e}")))?;
    let candidates: Vec<PathBuf> = exe.ancestors().skip(1).take(3).map(|dir| dir.join("sql")).collect();
    candidates.iter().find(|dir| dir.join("slam-master.sql").is_file()).cloned().ok_or_else(|| {
        invalid("slam-master.sql was not found beside slam; pass --scripts with the folder holding the SLAM scripts")
    })
}

fn invalid(message: impl Into<String>) -> SlamError {
    SlamError::new(ErrorCode::InvalidArgument, message)
}

fn failed(message: impl Into<String>) -> SlamError {
    SlamError::new(ErrorCode::InstallFailed, message)
}
