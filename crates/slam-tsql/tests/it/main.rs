//! The scripts in `sql/`, checked as far as possible without a SQL Server:
//! - every script passes the T-SQL gate (a real grammar plus SLAM's rules), whole
//!   and batch by batch as `slam install-sql` sends it (`slam_tsql::script`);
//! - the worker's login is created only if missing, and its user may read and write
//!   the three tables and nothing else;
//! - `sql/slam-install.sql` holds exactly the procedures the catalogue generates;
//! - the contract: every procedure of the catalogue exists with exactly its
//!   parameters, types and defaults, and every parameter reaches the request under
//!   the name dispatch expects; the spec's own examples bind to the procedures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use slam_protocol::catalogue::{self, ParamDefault};
use slam_tsql::generate::{self, XP};
use slam_tsql::script::{self, ScriptError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn sql_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sql")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(sql_dir().join(name)).unwrap()
}

#[test]
fn every_script_passes_the_gate() {
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(sql_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    scripts.sort();
    let names: Vec<String> = scripts.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["slam-install.sql", "slam-master.sql", "slam-uninstall.sql"]);
    for path in scripts {
        let problems = slam_tsql::check(&std::fs::read_to_string(&path).unwrap());
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(listed.is_empty(), "{}:\n{}", path.display(), listed.join("\n"));
    }
}

/// `SLAM_BLESS=1 cargo test -p slam-tsql` rewrites the sections after a catalogue change.
#[test]
fn the_scripts_hold_the_generated_procedures_and_list() {
    for (file, section, block) in generate::sections() {
        let path = sql_dir().join(file);
        let script = read(file);
        if generate::current_block(&script, section) != Some(block.as_str()) {
            if std::env::var_os("SLAM_BLESS").is_some() {
                let blessed = generate::with_block(&script, section, &block)
                    .unwrap_or_else(|| panic!("{file}: no `{}` marker line", section.begin));
                std::fs::write(&path, blessed).unwrap();
            } else {
                panic!("sql/{file} is stale at `{}`: run `SLAM_BLESS=1 cargo test -p slam-tsql`", section.begin);
            }
        }
    }
}

/// The `@name AS [alias]` pairs of the procedure's `args` object.
fn request_args(text: &str) -> Vec<(String, String)> {
    let Some(start) = text.find("JSON_QUERY((SELECT @") else { return Vec::new() };
    let list = &text[start + "JSON_QUERY((SELECT ".len()..];
    let list = &list[..list.find(" FOR JSON").unwrap()];
    list.split(", ")
        .map(|pair| {
            let (variable, alias) = pair.split_once(" AS ").unwrap();
            (variable.to_string(), alias.trim_matches(['[', ']']).to_string())
        })
        .collect()
}

#[test]
fn every_catalogued_procedure_exists_with_exactly_its_parameters_and_reaches_dispatch() {
    let defined = slam_tsql::procedures(&read("slam-install.sql"));
    let mut expected: Vec<&str> = generate::procedures().map(|(_, name)| name).collect();
    expected.push("SLAM_help");
    let mut names: Vec<&str> = defined.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected, "the install script defines exactly the catalogue's procedures");

    for (op, name) in generate::procedures() {
        let procedure = defined.iter().find(|p| p.name == name).unwrap();
        assert_eq!(procedure.schema, "dbo");
        let params: Vec<(String, String, Option<String>)> =
            procedure.params.iter().map(|p| (p.name.clone(), p.ty.clone(), p.default.clone())).collect();
        let wanted: Vec<(String, String, Option<String>)> =
            op.params.iter().map(|p| (p.sql_name(), p.ty.sql(), p.default.sql())).collect();
        assert_eq!(params, wanted, "{name}: parameters, types and defaults, in order");

        // Every parameter reaches the request under the name dispatch expects, and
        // the operation is the catalogue's.
        let args = request_args(&procedure.text);
        let expected_args: Vec<(String, String)> =
            op.params.iter().map(|p| (p.sql_name(), p.name.to_string())).collect();
        assert_eq!(args, expected_args, "{name}: request arguments");
        assert!(procedure.text.contains(&format!("N'{}' AS [operation]", op.name)), "{name}: operation");

        // One way of calling the XP and of failing.
        assert_eq!(
            procedure
                .text
                .matches(&format!("EXEC @rc = {XP} @request, @error_number OUTPUT, @error_message OUTPUT;"))
                .count(),
            1,
            "{name}"
        );
        assert!(procedure.text.contains("THROW @number, @text, 1;"), "{name}: raises what the XP reports");
        assert_eq!(
            procedure.text.contains("IF @@TRANCOUNT > 0"),
            op.changes_state,
            "{name}: refuses an open transaction exactly when it changes state"
        );
        for p in op.params.iter().filter(|p| p.default == ParamDefault::Required) {
            assert!(procedure.text.contains(&format!("IF {} IS NULL", p.sql_name())), "{name}: checks {}", p.name);
        }
    }
}

/// The calls the functional spec shows (slam-connection-management.txt), verbatim.
const SPEC_EXAMPLES: &[&str] = &[
    "EXEC dbo.SLAM_setup_jwt @key_name = 'acme-prod', @password = 'your_strong_passphrase'",
    "EXEC dbo.SLAM_add_connection @username = 'your_username@company.com', @auth_method = 'jwt_bearer', \
     @consumer_key = '3MVxxxxxxxxxxxxxxxxxxxxxxx', @key_name = 'acme-prod', @key_password = 'your_strong_passphrase', \
     @domain = 'login'",
    "EXEC dbo.SLAM_remove_jwt @key_name = 'acme-prod'",
    "EXEC dbo.SLAM_add_connection @username = 'your_username@company.com', @password = 'your_password', \
     @token = 'your_security_token', @domain = 'login'",
    "EXEC dbo.SLAM_list_connections",
    "EXEC dbo.SLAM_use_connection_username @username = 'your_username@company.com'",
    "EXEC dbo.SLAM_test_connection @username = 'your_username@company.com'",
    "EXEC dbo.SLAM_remove_connection @username = 'your_username@company.com'",
];

#[test]
fn the_specs_examples_bind_to_the_procedures() {
    let defined = slam_tsql::procedures(&read("slam-install.sql"));
    for example in SPEC_EXAMPLES {
        assert!(slam_tsql::check(&format!("{example};\n")).is_empty(), "{example}");
        let rest = example.strip_prefix("EXEC dbo.").unwrap();
        let (name, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let procedure = defined.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{name} is missing"));
        let given: Vec<&str> = args.split(", ").filter_map(|a| a.split_once(" = ").map(|(n, _)| n.trim())).collect();
        for arg in &given {
            assert!(procedure.params.iter().any(|p| p.name == *arg), "{example}: {arg} is not a parameter of {name}");
        }
        for required in procedure.params.iter().filter(|p| p.default.is_none()) {
            assert!(given.contains(&required.name.as_str()), "{example}: {} is required", required.name);
        }
    }
}

#[test]
fn the_spec_defaults_are_the_procedures_defaults() {
    // The spec's parameter tables, as (procedure, parameter, default).
    let spec = [
        ("SLAM_setup_jwt", "@key_name", Some("NULL")),
        ("SLAM_setup_jwt", "@password", Some("NULL")),
        ("SLAM_setup_jwt", "@cert_days", Some("365")),
        ("SLAM_setup_jwt", "@force", Some("0")),
        ("SLAM_add_connection", "@username", None),
        ("SLAM_add_connection", "@auth_method", Some("N'security_token'")),
        ("SLAM_add_connection", "@consumer_key", Some("NULL")),
        ("SLAM_add_connection", "@key_name", Some("NULL")),
        ("SLAM_add_connection", "@key_password", Some("NULL")),
        ("SLAM_add_connection", "@password", Some("NULL")),
        ("SLAM_add_connection", "@token", Some("NULL")),
        ("SLAM_add_connection", "@domain", Some("N'login'")),
        ("SLAM_add_connection", "@environment_name", Some("NULL")),
        ("SLAM_add_connection", "@api_version", Some("60")),
        ("SLAM_add_connection", "@skip_test", Some("0")),
        ("SLAM_remove_jwt", "@key_name", None),
        ("SLAM_use_connection_username", "@username", None),
        ("SLAM_test_connection", "@username", None),
        ("SLAM_remove_connection", "@username", None),
    ];
    let defined = slam_tsql::procedures(&read("slam-install.sql"));
    for (name, param, default) in spec {
        let procedure = defined.iter().find(|p| p.name == name).unwrap();
        let found = procedure.params.iter().find(|p| p.name == param).unwrap_or_else(|| panic!("{name} {param}"));
        assert_eq!(found.default.as_deref(), default, "{name} {param}");
    }
    // The spec's secret parameters are the catalogue's secrets.
    for op in catalogue::OPERATIONS {
        for p in op.params {
            assert_eq!(p.secret, ["password", "key_password", "token"].contains(&p.name), "{} {}", op.name, p.name);
        }
    }
}

#[test]
fn help_lists_every_procedure_and_parameter() {
    let script = read("slam-install.sql");
    let help = slam_tsql::procedures(&script).into_iter().find(|p| p.name == "SLAM_help").unwrap();
    for (op, name) in generate::procedures() {
        assert!(help.text.contains(&format!("N'{name}', NULL")), "{name}");
        for p in op.params {
            assert!(help.text.contains(&format!("N'{name}', N'{}'", p.sql_name())), "{name} {}", p.name);
        }
    }
    assert!(help.text.contains(env!("CARGO_PKG_VERSION")), "the installed version");
}

#[test]
fn security_setup_signs_without_trustworthy_or_chaining() {
    let install = read("slam-install.sql");
    for forbidden in ["SET TRUSTWORTHY", "SET DB_CHAINING", "TO PUBLIC", "WITH EXECUTE AS"] {
        assert!(!install.to_uppercase().contains(&forbidden.to_uppercase()), "{forbidden}");
    }
    for needed in
        ["ADD SIGNATURE TO dbo.", "REMOVE PRIVATE KEY", "FROM CERTIFICATE", "GRANT EXECUTE ON dbo.xp_slam TO "]
    {
        assert!(install.contains(needed), "{needed}");
    }
    let master = read("slam-master.sql");
    assert!(!master.contains("GRANT"), "slam-master.sql grants nothing");
    assert!(master.contains("sp_addextendedproc N'xp_slam'"), "the export's exact case");
}

/// Only the procedures SLAM wrote are signed, granted or dropped: a `dbo.SLAM_x` someone
/// else created must never be signed (it could then call xp_slam for any database).
#[test]
fn only_the_procedures_slam_wrote_are_signed_granted_or_dropped() {
    let list = generate::procedure_list_block();
    let mut signed: Vec<&str> = list.lines().filter(|l| l.ends_with(", 1),") || l.ends_with(", 1);")).collect();
    signed.sort();
    let mut expected: Vec<String> = generate::procedures().map(|(_, name)| format!("    (N'{name}', 1)")).collect();
    expected.sort();
    let signed: Vec<String> = signed.iter().map(|l| l.trim_end_matches([',', ';']).to_string()).collect();
    assert_eq!(signed, expected, "every procedure that calls the XP is signed, and nothing else");
    assert!(list.contains("(N'SLAM_help', 0)"), "SLAM_help is granted but never signed");

    for name in ["slam-install.sql", "slam-uninstall.sql"] {
        let text = read(name);
        for statement in ["ADD SIGNATURE TO", "GRANT EXECUTE ON dbo.' + QUOTENAME", "DROP PROCEDURE"] {
            for (at, _) in text.match_indices(statement) {
                // The SELECT that builds the statement names its source within a few lines.
                let source: String = text[at..].lines().take(3).collect::<Vec<_>>().join("\n");
                assert!(
                    source.contains("FROM @slam_procedures") || source.contains("FROM @signed"),
                    "{name}: `{statement}` must take its names from the generated list:\n{source}"
                );
            }
        }
        assert!(text.contains("not part of this SLAM version") || text.contains("did not write them"), "{name}");
    }
    // The uninstall finds the master user the install made: both name it the same way
    // (the scripts run standalone, so the expression is written in each).
    let naming = |text: &str| {
        let start = text.find("DECLARE @master_principal SYSNAME = ").unwrap();
        text[start..start + text[start..].find(" END;").unwrap()].to_string()
    };
    assert_eq!(naming(&read("slam-install.sql")), naming(&read("slam-uninstall.sql")));
}

/// The variables `slam install-sql` passes, as `sqlcmd -v` would.
fn worker_variables(account: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("SLAM_WORKER_ACCOUNT".to_string(), account.to_string()),
        ("SLAM_DLL_FOLDER".to_string(), r"D:\Apps\Speediful SLAM".to_string()),
    ])
}

/// Every batch, as `slam install-sql` sends it after `prepare`, passes the gate too
/// (a batch is all SQL Server sees: a `GO` inside a string would show here).
#[test]
fn every_batch_passes_the_gate_as_sent() {
    for name in ["slam-master.sql", "slam-install.sql", "slam-uninstall.sql"] {
        let text = read(name);
        for account in [r"NT SERVICE\SpeedifulSLAM", r"CORP\svc-slam", ""] {
            let batches = script::prepare(&text, &worker_variables(account)).unwrap();
            assert!(batches.len() > 1, "{name} has batches");
            for batch in &batches {
                assert_eq!(batch.repeat, 1, "{name}: no GO n in our scripts");
                let problems: Vec<String> = slam_tsql::check(&batch.text)
                    .iter()
                    .map(|p| format!("line {} (batch line {}): {}", batch.first_line + p.line - 1, p.line, p.message))
                    .collect();
                assert!(problems.is_empty(), "{name} with {account:?}:\n{}", problems.join("\n"));
                assert!(!batch.text.contains("$("), "{name}: every variable is substituted");
            }
            // Every line of the script is in a batch at its own line number, but the GOs.
            for batch in &batches {
                for (i, line) in batch.text.lines().enumerate() {
                    let original = text.lines().nth(batch.first_line - 1 + i).unwrap();
                    if !original.contains("$(") {
                        assert_eq!(line, original, "{name}: line {}", batch.first_line + i);
                    }
                }
            }
        }
    }
}

#[test]
fn the_scripts_need_the_worker_account_and_use_it() {
    for name in ["slam-master.sql", "slam-install.sql"] {
        let text = read(name);
        let first_use = text.lines().position(|l| l.contains("$(SLAM_WORKER_ACCOUNT)")).unwrap() + 1;
        // `slam install-sql` must always pass it: without it the script does not run.
        let only_the_folder = BTreeMap::from([("SLAM_DLL_FOLDER".to_string(), String::new())]);
        let err = script::prepare(&text, &only_the_folder).unwrap_err();
        assert_eq!(err, ScriptError::UndefinedVariable { name: "SLAM_WORKER_ACCOUNT".to_string(), line: first_use });
        assert!(err.to_string().contains("SLAM_WORKER_ACCOUNT"), "{err}");

        let batches = script::prepare(&text, &worker_variables(r"CORP\svc-slam")).unwrap();
        let all: String = batches.iter().map(|b| b.text.as_str()).collect();
        assert!(all.contains(r"DECLARE @worker SYSNAME = LTRIM(RTRIM(N'CORP\svc-slam'));"), "{name}");
        let batches = script::prepare(&text, &worker_variables("")).unwrap();
        let all: String = batches.iter().map(|b| b.text.as_str()).collect();
        assert!(all.contains("DECLARE @worker SYSNAME = LTRIM(RTRIM(N''));"), "{name}: an empty value");

        // Run unchanged in SSMS (no SQLCMD mode), the reference stays and the script falls
        // back on the virtual account; the test for it holds no `$(` of its own.
        assert_eq!(
            text.matches("$(").count(),
            text.matches("N'$(SLAM_WORKER_ACCOUNT)'").count() + text.matches("N'$(SLAM_DLL_FOLDER)'").count(),
            "{name}"
        );
        assert!(text.contains("IF LEFT(@worker, 2) = N'$' + N'('"), "{name}");
        assert!(text.contains(r"SET @worker = N'NT SERVICE\SpeedifulSLAM';"), "{name}");
    }
    // The uninstall script needs no variable.
    assert!(script::prepare(&read("slam-uninstall.sql"), &BTreeMap::new()).is_ok());
}

/// xp_slam.dll is registered from the folder named by SLAM_DLL_FOLDER (the MSI's
/// INSTALLDIR, which install-sql passes), or the default folder when it is empty or,
/// in SSMS without SQLCMD mode, left as written.
#[test]
fn the_dll_is_registered_from_the_folder_given_or_the_default() {
    let text = read("slam-master.sql");
    let batches = script::prepare(&text, &worker_variables("x")).unwrap();
    let all: String = batches.iter().map(|b| b.text.as_str()).collect();
    assert!(all.contains(r"DECLARE @dll_folder NVARCHAR(260) = LTRIM(RTRIM(N'D:\Apps\Speediful SLAM'));"));
    assert!(text.contains("IF LEFT(@dll_folder, 2) = N'$' + N'(' OR @dll_folder = N''"));
    assert!(text.contains(r"SET @dll_folder = N'C:\Program Files\Speediful\SLAM\';"));
    assert!(text.contains("EXEC sys.sp_addextendedproc N'xp_slam', @path;"));
    let with_worker = BTreeMap::from([("SLAM_WORKER_ACCOUNT".to_string(), String::new())]);
    let err = script::prepare(&text, &with_worker).unwrap_err();
    assert!(matches!(err, ScriptError::UndefinedVariable { ref name, .. } if name == "SLAM_DLL_FOLDER"), "{err}");
}

#[test]
fn the_worker_login_is_created_only_if_missing_and_gets_nothing() {
    let master = read("slam-master.sql");
    assert_eq!(master.matches("N'CREATE LOGIN ").count(), 1, "one CREATE LOGIN, in dynamic SQL");
    let guard = "ELSE IF NOT EXISTS (SELECT 1 FROM sys.server_principals WHERE name = @worker)\nBEGIN\n";
    let guarded = master.find(guard).expect("the existence check");
    let create = master.find("N'CREATE LOGIN ").unwrap();
    let end = guarded + master[guarded..].find("\nEND").unwrap();
    assert!(guarded < create && create < end, "CREATE LOGIN is inside the IF NOT EXISTS block");
    let run = master.find("EXEC sys.sp_executesql @create_login;").unwrap();
    assert!(create < run && run < end, "and so is its EXEC");
    assert!(
        master.contains("N'CREATE LOGIN ' + QUOTENAME(@worker) + N' FROM WINDOWS WITH DEFAULT_DATABASE = master;'")
    );
    let upper = master.to_uppercase();
    for forbidden in ["ALTER SERVER ROLE", "SP_ADDSRVROLEMEMBER", "GRANT ", "CONTROL SERVER", "IMPERSONATE"] {
        assert!(!upper.contains(forbidden), "slam-master.sql: {forbidden}");
    }
}

/// The statements of `script` that start with `keyword` (anywhere, dynamic SQL too),
/// up to their `;`, white space collapsed.
fn statements<'a>(script: &'a str, keyword: &'a str) -> impl Iterator<Item = String> + 'a {
    let upper = script.to_ascii_uppercase();
    let keyword = keyword.to_ascii_uppercase();
    let starts: Vec<usize> = upper
        .match_indices(&keyword)
        .map(|(i, _)| i)
        .filter(|&i| !upper[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    starts.into_iter().map(move |i| {
        let end = script[i..].find(';').map_or(script.len(), |e| i + e);
        script[i..end].split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

#[test]
fn the_worker_user_may_read_and_write_the_three_tables_and_nothing_else() {
    let install = read("slam-install.sql");
    let mut granted = BTreeSet::new();
    for grant in statements(&install, "GRANT").filter(|g| g.to_lowercase().contains("slam_worker")) {
        let rest = grant.strip_prefix("GRANT ").unwrap();
        let (permissions, rest) = rest.split_once(" ON ").unwrap_or_else(|| panic!("{grant}"));
        let (object, grantee) = rest.split_once(" TO ").unwrap_or_else(|| panic!("{grant}"));
        assert_eq!(grantee, "SLAM_worker", "{grant}: to the user alone, without GRANT OPTION");
        for permission in permissions.split(',') {
            assert!(granted.insert((permission.trim().to_string(), object.to_string())), "{grant}: twice");
        }
    }
    let mut expected = BTreeSet::new();
    for table in ["dbo.SLAM_Settings", "dbo.SLAM_Connections", "dbo.SLAM_Log"] {
        for permission in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
            expected.insert((permission.to_string(), table.to_string()));
        }
    }
    assert_eq!(granted, expected);

    // No role, no ownership, no other way in.
    for keyword in ["ALTER ROLE", "sp_addrolemember", "ALTER AUTHORIZATION", "ALTER USER", "DENY", "REVOKE"] {
        for statement in statements(&install, keyword) {
            assert!(!statement.to_lowercase().contains("slam_worker"), "{statement}");
        }
    }
    let users: Vec<String> = statements(&install, "CREATE USER").filter(|s| s.contains("SLAM_worker")).collect();
    assert_eq!(users, ["CREATE USER SLAM_worker FOR LOGIN ' + QUOTENAME(@worker) + N' WITH DEFAULT_SCHEMA = dbo"]);
    // The user exists only for the login the checks found, or the script stops.
    assert!(install.contains("The database user SLAM_worker exists already, for another login"));
    // A login already mapped to another user here (or owning the database) is named, with
    // the fix, before anything is installed: CREATE USER would fail half-way (15063).
    assert!(install.contains("WHERE sid = @worker_login_sid AND name <> N'SLAM_worker'"));
    assert!(install.contains("and a login can be only one user per database"));
    assert!(install.contains("for SLAM''s worker does not exist: run sql/slam-master.sql first"));

    let uninstall = read("slam-uninstall.sql");
    assert!(uninstall.contains("IF DATABASE_PRINCIPAL_ID(N'SLAM_worker') IS NOT NULL"));
    assert!(uninstall.contains("DROP USER SLAM_worker;"));
    assert!(!uninstall.contains("EXEC (N'DROP LOGIN") && !uninstall.contains("\nDROP LOGIN"), "the login stays");
}
