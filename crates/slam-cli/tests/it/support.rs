//! Running the `slam` binary against a scratch data directory.

use slam_testkit::{App, FakeSalesforce, Org, User};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A scratch SLAM data directory, deleted on drop.
pub(crate) struct Slam {
    pub dir: tempfile::TempDir,
}

/// What one run of `slam` did.
#[derive(Debug)]
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub(crate) fn ok(self) -> Self {
        assert_eq!(self.code, 0, "slam failed:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Asserts failure with this SLAM error number, shown to the user.
    pub(crate) fn fails_with(self, number: u32) -> Self {
        assert_eq!(self.code, 1, "expected failure {number}:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(
            self.stderr.contains(&format!("SLAM error {number} ")),
            "expected SLAM error {number} in:\n{}",
            self.stderr
        );
        self
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }

    /// The single row of a one-row `--format json` result.
    pub(crate) fn row(&self) -> serde_json::Value {
        let json = self.json();
        let rows = json.as_array().expect("an array of rows");
        assert_eq!(rows.len(), 1, "{json}");
        rows[0].clone()
    }

    /// The warnings printed (without their `warning: ` prefix).
    pub(crate) fn warnings(&self) -> Vec<&str> {
        self.stderr.lines().filter_map(|l| l.strip_prefix("warning: ")).collect()
    }

    /// Everything a user saw.
    pub(crate) fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Slam {
    pub(crate) fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    pub(crate) fn key_file(&self, name: &str) -> PathBuf {
        self.keys_dir().join(format!("{name}.pem"))
    }

    pub(crate) fn cert_file(&self, name: &str) -> PathBuf {
        self.keys_dir().join(format!("{name}.crt"))
    }

    /// A `slam` command with this data directory and a clean environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        command_in(self.data_dir(), args)
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run(self.command(args))
    }

    /// Runs with `stdin` fed to the process.
    pub(crate) fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = spawn(&mut cmd);
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        finished(child.wait_with_output().unwrap())
    }

    /// Files in the keys directory (including hidden ones), sorted.
    pub(crate) fn key_dir_listing(&self) -> Vec<String> {
        match std::fs::read_dir(self.keys_dir()) {
            Err(_) => Vec::new(),
            Ok(entries) => {
                let mut names: Vec<String> =
                    entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
                names.sort();
                names
            }
        }
    }
}

pub(crate) fn command_in(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slam"));
    cmd.arg("--local").arg("--data-dir").arg(data_dir).args(args);
    cmd.env_remove("SLAM_DATA_DIR").env_remove("SLAM_KEY_PASSWORD").env("SLAM_LOG", "trace");
    cmd.stdin(Stdio::null());
    cmd
}

pub(crate) fn run(mut cmd: Command) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    finished(spawn(&mut cmd).wait_with_output().unwrap())
}

/// Starts `cmd`. Under Wine, CreateProcess has once (in a CI rehearsal, with two tests
/// starting processes at the same moment) failed with ERROR_INTERNAL_ERROR (1359) before
/// the program ran; Windows documents no such failure of CreateProcess. That error alone
/// is retried, twice, so a wineserver hiccup does not fail a test that asserts nothing
/// about starting processes; any other error, or a third 1359, fails the test.
pub(crate) fn spawn(cmd: &mut Command) -> Child {
    const WINE_TRANSIENT_CREATE_PROCESS_FAILURE: i32 = 1359;
    let mut retries_left = 2;
    loop {
        match cmd.spawn() {
            Ok(child) => return child,
            Err(e)
                if cfg!(windows)
                    && e.raw_os_error() == Some(WINE_TRANSIENT_CREATE_PROCESS_FAILURE)
                    && retries_left > 0 =>
            {
                retries_left -= 1;
                eprintln!("starting {cmd:?} failed with {e}; retrying (a known Wine hiccup)");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => panic!("cannot start {cmd:?}: {e}"),
        }
    }
}

fn finished(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Decrypts a PKCS#8 key file and returns its public key (SPKI DER).
pub(crate) fn private_key_public_der(pem: &str, passphrase: Option<&str>) -> Vec<u8> {
    use pkcs8::{DecodePrivateKey, EncodePublicKey};
    let key = match passphrase {
        Some(p) => rsa::RsaPrivateKey::from_pkcs8_encrypted_pem(pem, p.as_bytes()).unwrap(),
        None => rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap(),
    };
    key.to_public_key().to_public_key_der().unwrap().as_bytes().to_vec()
}

/// The public key (SPKI DER) a PEM certificate certifies.
pub(crate) fn certificate_public_der(pem: &str) -> Vec<u8> {
    use x509_cert::der::{DecodePem, Encode};
    let cert = x509_cert::Certificate::from_pem(pem.as_bytes()).unwrap();
    cert.tbs_certificate.subject_public_key_info.to_der().unwrap()
}

pub(crate) const KEY_PASS: &str = "key passphrase: long & <unique>";
pub(crate) const USER: &str = "etl@acme.com";

/// A fake Salesforce with a production org `acme`, a sandbox `acme--partial`, a
/// user in each, and a SLAM data dir holding keypair `acme-prod` registered in an
/// External Client App of the production org.
pub(crate) struct World {
    pub(crate) slam: Slam,
    pub(crate) fake: FakeSalesforce,
    pub(crate) ca_file: std::path::PathBuf,
    pub(crate) prod: Org,
    pub(crate) sandbox: Org,
    pub(crate) consumer_key: String,
}

impl World {
    pub(crate) fn new() -> Self {
        let slam = Slam::new();
        let fake = FakeSalesforce::start();
        let ca_file = fake.write_ca_file(slam.data_dir());
        let prod = Org::production("acme");
        let sandbox = Org::sandbox("acme--partial");
        fake.add_org(prod.clone());
        fake.add_org(sandbox.clone());
        fake.add_user(User::new(USER, &prod));
        fake.add_user(User::new("etl@acme.com.partial", &sandbox));
        install_shared_keypair(&slam);
        let cert = std::fs::read_to_string(slam.cert_file("acme-prod")).unwrap();
        let consumer_key = App::random_consumer_key();
        fake.add_app(App::new(consumer_key.clone(), &prod, cert).pre_authorize(USER));
        World { slam, fake, ca_file, prod, sandbox, consumer_key }
    }
}

/// Keypair `acme-prod` (passphrase [`KEY_PASS`]), made once per test binary by the
/// real `slam setup-jwt` and copied into each World's data directory: 600,000 PBKDF2
/// iterations once, not once per test. Tests about `setup-jwt` itself run it for real.
fn install_shared_keypair(slam: &Slam) {
    static PAIR: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    let (pem, crt) = PAIR.get_or_init(|| {
        let maker = Slam::new();
        maker.run_with_stdin(&["setup-jwt", "--key-name", "acme-prod", "--password-stdin"], KEY_PASS).ok();
        (std::fs::read(maker.key_file("acme-prod")).unwrap(), std::fs::read(maker.cert_file("acme-prod")).unwrap())
    });
    // SLAM creates the keys directory with its private permissions.
    slam.run(&["list-keys"]).ok();
    std::fs::write(slam.key_file("acme-prod"), pem).unwrap();
    std::fs::write(slam.cert_file("acme-prod"), crt).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(slam.key_file("acme-prod"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}
