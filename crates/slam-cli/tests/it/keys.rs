//! `slam setup-jwt`, `remove-jwt` and `list-keys`: every rule of the spec and every
//! bad input, through the real binary.

use crate::support::{Slam, certificate_public_der, private_key_public_der};
use std::fs;

/// XML/shell specials and non-ASCII: must survive the trip into the KDF intact.
const PASS: &str = "Tr0ub4dor & <3> \"quotes\" 'ünïcödé'";

fn setup(slam: &Slam, name: &str, extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["--format", "json", "setup-jwt", "--key-name", name];
    args.extend_from_slice(extra);
    slam.run(&args)
}

#[test]
fn setup_writes_an_encrypted_key_and_its_matching_certificate() {
    let slam = Slam::new();
    let run = slam
        .run_with_stdin(
            &["--format", "json", "setup-jwt", "--key-name", "acme-prod", "--password-stdin"],
            &format!("{PASS}\n"),
        )
        .ok();
    let row = run.row();
    assert_eq!(row["key_name"], "acme-prod");
    assert_eq!(row["has_passphrase"], true);
    assert_eq!(row["cert_days"], 365);
    assert_eq!(row["private_key_path"], slam.key_file("acme-prod").display().to_string());
    assert_eq!(row["certificate_path"], slam.cert_file("acme-prod").display().to_string());
    assert!(run.stderr.contains("upload"), "the next step is shown: {}", run.stderr);
    assert!(run.stderr.contains("certificate valid until"));
    assert!(run.warnings().is_empty(), "a good passphrase gets no warning: {:?}", run.warnings());

    let pem = fs::read_to_string(slam.key_file("acme-prod")).unwrap();
    let crt = fs::read_to_string(slam.cert_file("acme-prod")).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_eq!(private_key_public_der(&pem, Some(PASS)), certificate_public_der(&crt));
    // Nothing but the pair (and the hidden per-name lock file) is left behind.
    assert_eq!(slam.key_dir_listing(), [".acme-prod.lock", "acme-prod.crt", "acme-prod.pem"]);
}

#[test]
fn setup_without_a_password_warns_that_the_key_is_unencrypted() {
    let slam = Slam::new();
    let run = setup(&slam, "plain", &[]).ok();
    assert_eq!(run.row()["has_passphrase"], false);
    assert!(run.warnings().iter().any(|w| w.contains("stored unencrypted")), "{}", run.stderr);
    let pem = fs::read_to_string(slam.key_file("plain")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn key_name_defaults_to_the_host_name() {
    let slam = Slam::new();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let run = slam.run(&["--format", "json", "setup-jwt"]).ok();
    assert_eq!(run.row()["key_name"], host.as_str());
    assert!(run.warnings().iter().any(|w| w.contains("host name")), "{}", run.stderr);
    assert!(slam.key_file(&host).exists() && slam.cert_file(&host).exists());
}

#[test]
fn a_valid_keypair_is_kept_with_a_warning_and_its_row_returned() {
    // The spec: warn when a valid certificate exists; @force = 1 regenerates. A
    // deployment script that runs SLAM_setup_jwt again must succeed and change nothing.
    let slam = Slam::new();
    let first = slam
        .run_with_stdin(&["--format", "json", "setup-jwt", "--key-name", "acme", "--password-stdin"], PASS)
        .ok()
        .row();
    assert_eq!(first["status"], "created");
    let before = (fs::read(slam.key_file("acme")).unwrap(), fs::read(slam.cert_file("acme")).unwrap());

    let again = slam.run_with_stdin(&["--format", "json", "setup-jwt", "--key-name", "acme", "--password-stdin"], PASS);
    let again = again.ok();
    let expires = first["expires_at"].as_str().unwrap().replace('T', " ").replace('Z', " UTC");
    let warning = again.warnings().join("\n");
    assert!(warning.contains("already exists") && warning.contains(&expires), "names the expiry: {warning}");
    assert!(warning.contains("@force = 1"), "{warning}");
    assert!(!again.stderr.contains("Generating"), "nothing generated: {}", again.stderr);
    assert!(!warning.contains("does not open"), "the same passphrase opens it: {warning}");
    let kept = again.row();
    assert_eq!(kept["status"], "kept");
    for column in ["key_name", "sha256_fingerprint", "expires_at", "not_before", "cert_days", "has_passphrase"] {
        assert_eq!(kept[column], first[column], "{column}");
    }
    let after = (fs::read(slam.key_file("acme")).unwrap(), fs::read(slam.cert_file("acme")).unwrap());
    assert_eq!(before, after);
    assert_eq!(kept["certificate_pem"], String::from_utf8(after.1).unwrap());

    // Another passphrase is not applied, and the DBA is told so.
    let other = slam.run_with_stdin(&["setup-jwt", "--key-name", "acme", "--password-stdin"], "another passphrase!");
    let other = other.ok();
    assert!(other.warnings().iter().any(|w| w.contains("does not open the existing private key")), "{}", other.stderr);
    assert!(!other.all_output().contains("another passphrase!"));
}

#[test]
fn the_certificate_comes_back_as_text_and_the_private_key_never_does() {
    let slam = Slam::new();
    let created = setup(&slam, "acme", &[]).ok();
    let crt = fs::read_to_string(slam.cert_file("acme")).unwrap();
    assert_eq!(created.row()["certificate_pem"], crt.as_str(), "ready to paste into a .crt file");
    let listed = slam.run(&["--format", "json", "list-keys"]).ok();
    assert_eq!(listed.row()["certificate_pem"], crt.as_str());
    for run in [&created, &listed] {
        assert!(run.all_output().contains("BEGIN CERTIFICATE"));
        assert!(!run.all_output().contains("PRIVATE KEY"), "{}", run.all_output());
    }
    // The certificate the DBA copies is the one openssl reads from the file (Linux:
    // there is no openssl command under Wine).
    if cfg!(windows) {
        return;
    }
    let path = slam.dir.path().join("copied.crt");
    fs::write(&path, created.row()["certificate_pem"].as_str().unwrap()).unwrap();
    let subject =
        std::process::Command::new("openssl").args(["x509", "-noout", "-subject", "-in"]).arg(&path).output().unwrap();
    assert!(String::from_utf8_lossy(&subject.stdout).contains("acme"), "{subject:?}");
}

#[test]
fn force_replaces_a_valid_keypair_and_warns_about_salesforce() {
    let slam = Slam::new();
    let first = setup(&slam, "acme", &[]).ok().row();
    let forced = setup(&slam, "acme", &["--force"]).ok();
    assert_ne!(forced.row()["sha256_fingerprint"], first["sha256_fingerprint"]);
    assert!(
        forced.warnings().iter().any(|w| w.contains("fail until the new certificate is uploaded")),
        "{}",
        forced.stderr
    );
    let pem = fs::read_to_string(slam.key_file("acme")).unwrap();
    let crt = fs::read_to_string(slam.cert_file("acme")).unwrap();
    assert_eq!(private_key_public_der(&pem, None), certificate_public_der(&crt));
}

#[test]
fn an_expired_keypair_is_replaced_without_force() {
    use slam_core::keys::{KeyName, generate};
    use time::{Duration, OffsetDateTime};
    let slam = Slam::new();
    setup(&slam, "old", &[]).ok();
    // Overwrite it with a pair whose certificate expired yesterday.
    let now = OffsetDateTime::now_utc();
    let old =
        generate(&KeyName::parse("old").unwrap(), None, now - Duration::days(400), now - Duration::days(1)).unwrap();
    fs::write(slam.key_file("old"), old.private_key_pem.as_bytes()).unwrap();
    fs::write(slam.cert_file("old"), &old.certificate_pem).unwrap();

    let listed = slam.run(&["--format", "json", "list-keys"]).ok();
    assert_eq!(listed.row()["status"], "expired");
    assert!(listed.warnings().iter().any(|w| w.contains("expired")));

    let renewed = setup(&slam, "old", &[]).ok();
    assert!(renewed.stderr.contains("whose certificate expired on"), "{}", renewed.stderr);
    assert_ne!(renewed.row()["sha256_fingerprint"], old.certificate.sha256_fingerprint.as_str());
    assert_eq!(slam.run(&["--format", "json", "list-keys"]).ok().row()["status"], "valid");
}

#[test]
fn remove_deletes_both_files_and_says_access_is_not_revoked() {
    let slam = Slam::new();
    setup(&slam, "gone", &[]).ok();
    setup(&slam, "kept", &[]).ok();
    let run = slam.run(&["remove-jwt", "--key-name", "gone"]).ok();
    assert!(!slam.key_file("gone").exists() && !slam.cert_file("gone").exists());
    assert!(slam.key_file("kept").exists());
    assert!(run.stderr.contains(&slam.key_file("gone").display().to_string()), "{}", run.stderr);
    let warning = run.warnings().join("\n");
    assert!(warning.contains("does not revoke") && warning.contains("deactivate the app"), "{warning}");

    let again = slam.run(&["remove-jwt", "--key-name", "gone"]).fails_with(50105);
    assert!(again.stderr.contains("existing keypairs: kept"), "{}", again.stderr);
}

#[test]
fn remove_jwt_requires_a_key_name() {
    let slam = Slam::new();
    let run = slam.run(&["remove-jwt"]);
    assert_eq!(run.code, 2, "usage error: {}", run.stderr);
    assert!(run.stderr.contains("--key-name"));
}

#[test]
fn bad_key_names_are_refused_and_leave_nothing_behind() {
    let slam = Slam::new();
    let long = "x".repeat(65);
    for name in [
        "../escape",
        "a/b",
        r"a\b",
        "..",
        ".hidden",
        "CON",
        "nul",
        "com1",
        "LPT9.txt",
        "tab\there",
        "",
        " ",
        "c:x",
        "a*",
        long.as_str(),
        "dot.",
    ] {
        // Every parameter's length is checked against the catalogue before the
        // operation runs (50002); the vault refuses the other bad names (50101).
        let expected = if name == long { 50002 } else { 50101 };
        let run = setup(&slam, name, &[]).fails_with(expected);
        assert!(run.stderr.contains("hint:"), "{name:?}: {}", run.stderr);
        assert_eq!(slam.key_dir_listing(), Vec::<String>::new(), "{name:?} left files behind");
        slam.run(&["remove-jwt", "--key-name", name]).fails_with(expected);
    }
    assert!(!slam.dir.path().join("escape.pem").exists());
}

#[test]
fn cert_days_outside_1_to_3650_are_refused() {
    let slam = Slam::new();
    for days in ["0", "-1", "3651", "100000"] {
        let run = setup(&slam, "acme", &["--cert-days", days]).fails_with(50102);
        assert!(run.stderr.contains("between 1 and 3650"), "{}", run.stderr);
    }
    assert_eq!(slam.key_dir_listing(), Vec::<String>::new());
    assert_eq!(setup(&slam, "acme", &["--cert-days", "3650"]).ok().row()["cert_days"], 3650);
    assert_eq!(setup(&slam, "one", &["--cert-days", "1"]).ok().row()["cert_days"], 1);
}

#[test]
fn an_empty_password_is_refused() {
    let slam = Slam::new();
    slam.run_with_stdin(&["setup-jwt", "--key-name", "acme", "--password-stdin"], "\n").fails_with(50103);
    assert_eq!(slam.key_dir_listing(), Vec::<String>::new());
}

#[test]
fn a_missing_data_dir_is_reported_and_not_created() {
    let slam = Slam::new();
    let missing = slam.data_dir().join("not-there");
    let run = crate::support::run(crate::support::command_in(&missing, &["setup-jwt", "--key-name", "acme"]));
    let run = run.fails_with(50003);
    assert!(run.stderr.contains("not-there") && run.stderr.contains("SLAM_DATA_DIR"), "{}", run.stderr);
    assert!(!missing.exists());
    crate::support::run(crate::support::command_in(&missing, &["list-keys"])).fails_with(50003);
}

#[test]
fn an_unusable_data_dir_is_reported() {
    let slam = Slam::new();
    // A file where the data directory should be.
    let file = slam.data_dir().join("file");
    fs::write(&file, b"x").unwrap();
    crate::support::run(crate::support::command_in(&file, &["setup-jwt", "--key-name", "acme"])).fails_with(50004);
    // A file where the keys directory should be: the data directory cannot be written as needed.
    fs::write(slam.keys_dir(), b"x").unwrap();
    let run = setup(&slam, "acme", &[]).fails_with(50004);
    assert!(run.stderr.contains("keys"), "{}", run.stderr);
}

#[test]
fn concurrent_setups_of_one_name_create_exactly_one_pair() {
    let slam = Slam::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = slam.command(&["--format", "json", "setup-jwt", "--key-name", "race"]);
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            crate::support::spawn(&mut cmd)
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    assert!(outputs.iter().all(|o| o.status.success()), "a re-run keeps the keypair and succeeds");
    let mut statuses: Vec<String> = outputs
        .iter()
        .map(|o| {
            let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            rows[0]["status"].as_str().unwrap().to_string()
        })
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["created", "kept", "kept", "kept"], "exactly one setup creates the pair");
    let pem = fs::read_to_string(slam.key_file("race")).unwrap();
    let crt = fs::read_to_string(slam.cert_file("race")).unwrap();
    assert_eq!(private_key_public_der(&pem, None), certificate_public_der(&crt), "the pair must match");
    assert_eq!(slam.key_dir_listing(), [".race.lock", "race.crt", "race.pem"]);
}

#[test]
fn list_keys_reports_every_keypair_with_its_certificate() {
    let slam = Slam::new();
    let empty = slam.run(&["--format", "json", "list-keys"]).ok();
    assert_eq!(empty.json(), serde_json::json!([]));
    assert!(empty.stderr.contains("No keypairs"));

    let a =
        slam.run_with_stdin(&["--format", "json", "setup-jwt", "--key-name", "a", "--password-stdin"], PASS).ok().row();
    let b = setup(&slam, "b", &["--cert-days", "10"]).ok().row();
    let listed = slam.run(&["--format", "json", "list-keys"]).ok().json();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, made) in rows.iter().zip([&a, &b]) {
        for field in
            ["key_name", "expires_at", "sha1_fingerprint", "sha256_fingerprint", "private_key_path", "certificate_path"]
        {
            assert_eq!(row[field], made[field], "{field}");
        }
    }
    assert_eq!(rows[0]["has_passphrase"], true);
    assert_eq!(rows[1]["has_passphrase"], false);
    assert_eq!(rows[0]["status"], "valid");
    assert_eq!(rows[1]["status"], "expires soon");
    assert!((9..=10).contains(&rows[1]["days_left"].as_i64().unwrap()));

    // A half-removed pair is shown as such, not hidden.
    fs::remove_file(slam.key_file("b")).unwrap();
    let table = slam.run(&["list-keys"]).ok();
    assert!(table.stdout.contains("private key missing"), "{}", table.stdout);
    assert!(table.stdout.lines().next().unwrap().starts_with("key_name"), "{}", table.stdout);
}

#[test]
fn passphrase_sources_and_the_command_line_warning() {
    let slam = Slam::new();
    let cli = setup(&slam, "from-cli", &["--password", PASS]).ok();
    assert!(cli.warnings().iter().any(|w| w.contains("visible to other users")), "{}", cli.stderr);

    let mut cmd = slam.command(&["--format", "json", "setup-jwt", "--key-name", "from-env"]);
    cmd.env("SLAM_KEY_PASSWORD", PASS);
    let env = crate::support::run(cmd).ok();
    assert_eq!(env.row()["has_passphrase"], true);
    assert!(!env.stderr.contains("visible to other users"), "{}", env.stderr);

    for name in ["from-cli", "from-env"] {
        let pem = fs::read_to_string(slam.key_file(name)).unwrap();
        let crt = fs::read_to_string(slam.cert_file(name)).unwrap();
        assert_eq!(private_key_public_der(&pem, Some(PASS)), certificate_public_der(&crt), "{name}");
    }
    let both = slam.run(&["setup-jwt", "--key-name", "x", "--password", "a", "--password-stdin"]);
    assert_eq!(both.code, 2, "--password and --password-stdin conflict: {}", both.stderr);
}

#[test]
fn no_passphrase_ever_appears_in_output_or_logs() {
    // Every command runs with SLAM_LOG=trace (see support), so logs are included.
    let slam = Slam::new();
    let mut seen = String::new();
    seen += &setup(&slam, "s", &["--password", PASS]).ok().all_output();
    seen += &setup(&slam, "s", &["--password", PASS]).ok().all_output();
    seen += &setup(&slam, "s", &["--password", "Tr0ub4dor&3 other"]).ok().all_output();
    seen += &setup(&slam, "s", &["--password", PASS, "--force"]).ok().all_output();
    seen += &setup(&slam, "s", &["--password", PASS, "--cert-days", "0"]).fails_with(50102).all_output();
    seen += &slam.run(&["list-keys"]).ok().all_output();
    seen += &slam.run(&["--format", "json", "list-keys"]).ok().all_output();
    seen += &slam.run(&["remove-jwt", "--key-name", "s"]).ok().all_output();
    assert!(seen.contains("TRACE") || seen.contains("INFO"), "logging was on: {seen}");
    for fragment in [PASS, "Tr0ub4dor", "ünïcödé"] {
        assert!(!seen.contains(fragment), "secret fragment {fragment:?} leaked:\n{seen}");
    }
}

#[cfg(unix)]
#[test]
fn private_key_and_keys_directory_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let slam = Slam::new();
    setup(&slam, "acme", &[]).ok();
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&slam.keys_dir()), 0o700);
    assert_eq!(mode(&slam.key_file("acme")), 0o600);
    assert_eq!(mode(&slam.cert_file("acme")), 0o644);
}

#[cfg(windows)]
#[test]
fn keys_directory_and_key_files_are_closed_to_other_users() {
    let slam = Slam::new();
    setup(&slam, "acme", &[]).ok();
    if slam_windows::running_under_wine() {
        eprintln!("Wine accepts but does not apply file DACLs: the applied ACL is checked on Windows only");
        return;
    }
    for path in [slam.keys_dir(), slam.key_file("acme")] {
        let sddl = slam_windows::describe_dacl(&path).unwrap();
        assert!(sddl.contains(";;;SY)") && sddl.contains(";;;BA)"), "{}: {sddl}", path.display());
        for broad in [";;;BU)", ";;;WD)", ";;;AU)"] {
            assert!(!sddl.contains(broad), "{}: {broad} may not have access: {sddl}", path.display());
        }
    }
    assert!(slam_windows::describe_dacl(&slam.keys_dir()).unwrap().starts_with("D:P"));
}
