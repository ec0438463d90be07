//! `slam install-sql` against the fake SQL Server: the real scripts from `sql/`,
//! split as sqlcmd splits them, sent batch by batch over TDS (TLS, SQL login),
//! in master and then in the database; a refused batch stops the run and is
//! reported at its script line.

use slam_testkit::tds::{
    Column, ColumnType, FakeSqlServer, Handler, Login, Param, Reply, ResultSet, SqlError, Tls, Value,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Records every batch with the database of its session; refuses the batch that
/// contains `refuse` (if any).
#[derive(Default)]
struct Recorder {
    databases: Mutex<BTreeMap<u32, String>>,
    batches: Mutex<Vec<(String, String)>>,
    refuse: Option<&'static str>,
}

impl Handler for Recorder {
    fn login(&self, login: &Login) -> Result<(), SqlError> {
        if login.user.as_deref() != Some("sa") || !login.password_given {
            return Err(SqlError::login_failed(login.user.as_deref().unwrap_or("")));
        }
        self.databases.lock().unwrap().insert(login.session, login.database.clone());
        Ok(())
    }

    fn batch(&self, session: u32, sql: &str) -> Vec<Reply> {
        let database = self.databases.lock().unwrap().get(&session).cloned().unwrap_or_default();
        self.batches.lock().unwrap().push((database, sql.to_string()));
        if self.refuse.is_some_and(|marker| sql.contains(marker)) {
            let message = "CREATE TABLE permission denied in database 'Sales'.";
            return vec![Reply::Error(SqlError { number: 262, class: 14, state: 1, message: message.into() })];
        }
        vec![Reply::Done { rows: None }]
    }

    fn execute(&self, _session: u32, sql: &str, params: &[Param]) -> Vec<Reply> {
        // The report queries: answer as an installed instance would.
        let account = match params.first().map(|p| &p.value) {
            Some(Value::NVarChar(account)) => account.clone(),
            _ => String::new(),
        };
        let rows: Vec<(String, String)> = if sql.contains("xp_slam") {
            vec![
                ("master.dbo.xp_slam".into(), r"C:\Program Files\Speediful\SLAM\xp_slam.dll".into()),
                (format!("worker login {account}"), "present".into()),
            ]
        } else {
            vec![("tables".into(), "3".into()), ("worker user".into(), "SLAM_worker".into())]
        };
        let columns = vec![Column::new("Item", ColumnType::NVarChar), Column::new("Value", ColumnType::NVarChar)];
        let rows = rows.into_iter().map(|(a, b)| vec![Value::NVarChar(a), Value::NVarChar(b)]).collect();
        vec![Reply::Rows(ResultSet { columns, rows }), Reply::Done { rows: None }]
    }
}

fn sql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql")
}

/// The folder the tests pass as SLAM_DLL_FOLDER (`--var`), as for an MSI installed with
/// another INSTALLDIR.
fn dll_folder() -> String {
    r"D:\Apps\Speediful SLAM".to_string()
}

fn variables(account: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("SLAM_WORKER_ACCOUNT".to_string(), account.to_string()),
        ("SLAM_DLL_FOLDER".to_string(), dll_folder()),
    ])
}

fn batches_of(script: &str, account: &str) -> Vec<String> {
    let text = std::fs::read_to_string(sql_dir().join(script)).unwrap();
    let variables = variables(account);
    slam_tsql::script::prepare(&text, &variables).unwrap().into_iter().map(|b| b.text).collect()
}

struct Run {
    code: i32,
    stderr: String,
}

fn install(server: &FakeSqlServer, ca: &Path, extra: &[&str]) -> Run {
    install_encrypted(server, ca, "mandatory", extra)
}

fn install_encrypted(server: &FakeSqlServer, ca: &Path, encrypt: &str, extra: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slam"));
    cmd.args(["install-sql", "--server", &format!("127.0.0.1,{}", server.addr().port())])
        .args(["--authentication", "sql", "--user", "sa", "--encrypt", encrypt])
        .args(["--scripts"])
        .arg(sql_dir())
        .args(extra)
        .env("SLAM_SQL_PASSWORD", "Sa-Passw0rd-Not-Echoed")
        .env_remove("SLAM_DATABASE")
        .env_remove("SLAM_WORKER_ACCOUNT")
        .stdin(Stdio::null());
    // SChannel wants revocation data for a CA file (see the store's fake tests).
    if cfg!(windows) {
        cmd.arg("--trust-server-certificate");
    } else {
        cmd.arg("--server-ca-file").arg(ca);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = crate::support::spawn(&mut cmd).wait_with_output().unwrap();
    Run { code: out.status.code().unwrap_or(-1), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn start(recorder: Recorder) -> (Arc<Recorder>, FakeSqlServer, tempfile::TempDir, PathBuf) {
    let recorder = Arc::new(recorder);
    let server = FakeSqlServer::start(recorder.clone(), Tls::Required).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = server.write_ca_file(dir.path()).unwrap();
    (recorder, server, dir, ca)
}

#[test]
fn install_sql_runs_the_master_script_in_master_then_the_install_script_in_the_database() {
    let (recorder, server, _dir, ca) = start(Recorder::default());
    let folder = format!("SLAM_DLL_FOLDER={}", dll_folder());
    let run = install(&server, &ca, &["--database", "Sales", "--var", &folder]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let account = r"NT SERVICE\SpeedifulSLAM";
    let master = batches_of("slam-master.sql", account);
    let database = batches_of("slam-install.sql", account);
    let sent = recorder.batches.lock().unwrap().clone();
    let expected: Vec<(String, String)> = master
        .iter()
        .map(|b| ("master".to_string(), b.clone()))
        .chain(database.iter().map(|b| ("Sales".to_string(), b.clone())))
        .collect();
    assert_eq!(sent.len(), expected.len(), "every batch once, nothing else");
    assert!(sent == expected, "the batches, in order, each in its database");
    assert!(
        sent.iter().any(|(_, b)| b.contains(r"N'NT SERVICE\SpeedifulSLAM'")),
        "the worker's account is substituted"
    );
    assert!(!sent.iter().any(|(_, b)| b.contains("$(SLAM_WORKER_ACCOUNT)") || b.contains("$(SLAM_DLL_FOLDER)")));
    assert!(
        sent.iter().any(|(_, b)| b.contains(&format!("LTRIM(RTRIM(N'{}'))", dll_folder()))),
        "the DLL's folder is substituted"
    );
    assert!(server.logins().iter().all(|l| l.encrypted && l.app_name == "Speediful SLAM"));

    for words in [
        &format!("Running slam-master.sql in 127.0.0.1,{}/master ({} batches)", server.addr().port(), master.len()),
        "slam-master.sql: done.",
        r"master.dbo.xp_slam: C:\Program Files\Speediful\SLAM\xp_slam.dll",
        r"worker login NT SERVICE\SpeedifulSLAM: present",
        "slam-install.sql: done.",
        "worker user: SLAM_worker",
        "SLAM is installed in",
    ] {
        assert!(run.stderr.contains(words), "missing `{words}` in:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("Sa-Passw0rd-Not-Echoed"));
}

#[test]
fn skip_master_runs_only_the_database_script_and_needs_a_database() {
    let (recorder, server, _dir, ca) = start(Recorder::default());
    let run = install(&server, &ca, &["--database", "Sales", "--skip-master"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sent = recorder.batches.lock().unwrap().clone();
    let expected: Vec<(String, String)> =
        batches_of("slam-install.sql", r"NT SERVICE\SpeedifulSLAM").into_iter().map(|b| ("Sales".into(), b)).collect();
    assert!(sent == expected, "only slam-install.sql, in Sales: no DBCC xp_slam(FREE) on a live instance");
    assert!(run.stderr.contains("Skipping slam-master.sql"), "{}", run.stderr);

    let run = install(&server, &ca, &["--skip-master"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--skip-master needs --database"), "{}", run.stderr);
}

#[test]
fn a_refused_batch_stops_the_install_at_its_script_line_and_nothing_after_it_runs() {
    let (recorder, server, _dir, ca) =
        start(Recorder { refuse: Some("CREATE TABLE dbo.SLAM_Log"), ..Default::default() });
    let run = install(&server, &ca, &["--database", "Sales", "--worker-account", r"CORP\svc-slam$"]);
    assert_eq!(run.code, 1, "{}", run.stderr);

    let text = std::fs::read_to_string(sql_dir().join("slam-install.sql")).unwrap();
    let variables = variables(r"CORP\svc-slam$");
    let batches = slam_tsql::script::prepare(&text, &variables).unwrap();
    let refused = batches.iter().position(|b| b.text.contains("CREATE TABLE dbo.SLAM_Log")).unwrap();
    // The fake reports every error at line 1 of its batch: the script line is the
    // batch's first.
    let line = batches[refused].first_line;
    let expected = format!("slam-install.sql: line {line}: Msg 262, Level 14, State 1: CREATE TABLE permission denied");
    assert!(run.stderr.contains("50010") && run.stderr.contains(&expected), "want `{expected}` in:\n{}", run.stderr);
    assert!(run.stderr.contains("run the same command again"), "{}", run.stderr);

    let sent = recorder.batches.lock().unwrap().clone();
    let in_database: Vec<_> = sent.iter().filter(|(db, _)| db == "Sales").collect();
    assert_eq!(in_database.len(), refused + 1, "the refused batch was the last one sent");
    assert!(sent.iter().any(|(_, b)| b.contains(r"N'CORP\svc-slam$'")), "--worker-account is the login made");
}

#[test]
fn without_a_database_only_the_instance_part_runs_and_bad_input_is_refused_before_connecting() {
    let (recorder, server, _dir, ca) = start(Recorder::default());
    let run = install(&server, &ca, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("Run again with --database"), "{}", run.stderr);
    assert!(recorder.batches.lock().unwrap().iter().all(|(db, _)| db == "master"));
    // Without --var, install-sql names its own folder when xp_slam.dll is beside it (the
    // installed layout; the Windows lane builds one there), else leaves the default.
    let sent = recorder.batches.lock().unwrap().clone();
    let declared = sent.iter().find_map(|(_, b)| b.split("DECLARE @dll_folder NVARCHAR(260) = LTRIM(RTRIM(N'").nth(1));
    let folder = declared.and_then(|rest| rest.split("'))").next()).expect("the DLL folder is declared");
    assert!(folder.is_empty() || Path::new(folder).join("xp_slam.dll").is_file(), "{folder}");
    assert_eq!(folder.is_empty(), !Path::new(env!("CARGO_BIN_EXE_slam")).with_file_name("xp_slam.dll").is_file());

    let logins_before = server.logins().len();
    let run = install_encrypted(&server, &ca, "sometimes", &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("sometimes"), "{}", run.stderr);
    // A CA file that trusting any certificate would silently ignore.
    let both = if cfg!(windows) {
        vec!["--server-ca-file".to_string(), ca.display().to_string()]
    } else {
        vec!["--trust-server-certificate".to_string()]
    };
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    let run = install(&server, &ca, &both);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("not both"), "{}", run.stderr);
    assert_eq!(server.logins().len(), logins_before, "nothing connected");
}
