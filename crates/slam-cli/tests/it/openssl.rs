//! Cross-checks with the `openssl` command line: what we write is what a DBA (and
//! Salesforce) will read with standard tools, and what we print matches it.

use crate::support::Slam;
use std::path::Path;
use std::process::Command;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PASS: &str = "correct horse & <battery> \"staple\" ü";

/// Runs `openssl` with `args`, passing the passphrase through the environment
/// (never the command line). Returns (success, stdout + stderr).
fn openssl(args: &[&str], passphrase: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    if let Some(p) = passphrase {
        cmd.env("SLAM_TEST_PASS", p);
    }
    let out = cmd.output().expect("the openssl command must be installed (apt-get install openssl)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn made_with_passphrase(slam: &Slam, name: &str, days: &str) -> serde_json::Value {
    slam.run_with_stdin(
        &["--format", "json", "setup-jwt", "--key-name", name, "--password-stdin", "--cert-days", days],
        PASS,
    )
    .ok()
    .row()
}

#[test]
fn openssl_decrypts_the_key_with_the_passphrase_only() {
    let slam = Slam::new();
    made_with_passphrase(&slam, "acme", "365");
    let key = slam.key_file("acme");
    let (ok, text) =
        openssl(&["pkey", "-in", path(&key), "-passin", "env:SLAM_TEST_PASS", "-noout", "-text"], Some(PASS));
    assert!(ok, "{text}");
    assert!(text.contains("Private-Key: (2048 bit"), "{text}");
    let (ok, _) = openssl(&["pkey", "-in", path(&key), "-passin", "pass:wrong passphrase", "-noout"], None);
    assert!(!ok, "a wrong passphrase must not open the key");

    // The protection is PBES2 with PBKDF2-HMAC-SHA256 at our iteration count, and AES-256.
    let (ok, asn1) = openssl(&["asn1parse", "-in", path(&key)], None);
    assert!(ok, "{asn1}");
    assert!(asn1.contains(":PBES2") && asn1.contains(":PBKDF2") && asn1.contains(":hmacWithSHA256"), "{asn1}");
    assert!(asn1.contains(":aes-256-cbc"), "{asn1}");
    // asn1parse prints INTEGERs as whole bytes of hex: 600000 is `0927C0`.
    let mut iterations = format!("{:X}", slam_core::keys::PBKDF2_ITERATIONS);
    if iterations.len() % 2 == 1 {
        iterations.insert(0, '0');
    }
    assert!(asn1.contains(&format!("INTEGER           :{iterations}")), "{asn1}");
}

#[test]
fn openssl_agrees_with_what_we_printed() {
    let slam = Slam::new();
    let row = made_with_passphrase(&slam, "acme-prod", "10");
    let crt = slam.cert_file("acme-prod");

    let (_, subject) = openssl(&["x509", "-in", path(&crt), "-noout", "-subject"], None);
    assert_eq!(subject.trim(), "subject=CN = acme-prod");

    let (_, enddate) = openssl(&["x509", "-in", path(&crt), "-noout", "-enddate"], None);
    let printed = OffsetDateTime::parse(row["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let as_openssl = printed
        .format(time::macros::format_description!(
            "notAfter=[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
        ))
        .unwrap();
    assert_eq!(enddate.trim(), as_openssl);

    // Valid for 9 more days, not for 11.
    let (ok, _) = openssl(&["x509", "-in", path(&crt), "-noout", "-checkend", &(9 * 86400).to_string()], None);
    assert!(ok, "certificate must still be valid in 9 days");
    let (ok, _) = openssl(&["x509", "-in", path(&crt), "-noout", "-checkend", &(11 * 86400).to_string()], None);
    assert!(!ok, "certificate must have expired in 11 days");

    for (digest, column) in [("-sha1", "sha1_fingerprint"), ("-sha256", "sha256_fingerprint")] {
        let (_, fp) = openssl(&["x509", "-in", path(&crt), "-noout", "-fingerprint", digest], None);
        let theirs = fp.trim().split_once('=').unwrap().1;
        assert_eq!(theirs, row[column].as_str().unwrap(), "{digest}");
    }

    let (_, text) = openssl(&["x509", "-in", path(&crt), "-noout", "-text"], None);
    assert!(text.contains("Signature Algorithm: sha256WithRSAEncryption"), "{text}");
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
}

#[test]
fn certificate_public_key_matches_private_key_and_verifies() {
    let slam = Slam::new();
    made_with_passphrase(&slam, "pair", "365");
    let (crt, key) = (slam.cert_file("pair"), slam.key_file("pair"));
    let (ok, from_cert) = openssl(&["x509", "-in", path(&crt), "-noout", "-pubkey"], None);
    assert!(ok, "{from_cert}");
    let (ok, from_key) = openssl(&["pkey", "-in", path(&key), "-passin", "env:SLAM_TEST_PASS", "-pubout"], Some(PASS));
    assert!(ok, "{from_key}");
    assert_eq!(from_cert, from_key);
    assert!(from_cert.starts_with("-----BEGIN PUBLIC KEY-----"));

    let (ok, verify) = openssl(&["verify", "-CAfile", path(&crt), path(&crt)], None);
    assert!(ok && verify.contains(": OK"), "{verify}");
}

#[test]
fn openssl_reads_an_unencrypted_key_without_a_passphrase() {
    let slam = Slam::new();
    slam.run(&["setup-jwt", "--key-name", "plain"]).ok();
    let (ok, text) =
        openssl(&["pkey", "-in", path(&slam.key_file("plain")), "-passin", "pass:", "-noout", "-check"], None);
    assert!(ok, "{text}");
}
