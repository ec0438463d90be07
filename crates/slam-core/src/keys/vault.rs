//! The files of the key vault, and the rules for writing them.
//!
//! Writing a keypair replaces two files, which no file system can do atomically.
//! Under a per-name lock we therefore stage both files (`.{name}.pem.new`,
//! `.{name}.crt.new`, flushed to disk), then drop a commit marker, then rename them
//! into place and delete the marker. Whoever next takes the lock finishes the
//! renames if the marker exists (roll forward) or deletes the staged files if it
//! does not (roll back). Readers hold the same lock, so nobody ever sees a new key
//! with an old certificate, or a partial file.

use super::material::{self, CertificateInfo};
use super::unlocked::UnlockedKeys;
use super::{CERT_DAYS_RANGE, KeyError, KeyName};
use crate::clock::Clock;
use crate::data_dir::{DataDir, DataDirError};
use crate::fs_private::{self, FileLock, Visibility};
use crate::secret::{ExposeSecret, Secret};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// How far back the certificate's validity starts, so a Salesforce server whose
/// clock is slightly behind ours still accepts a brand-new certificate.
const NOT_BEFORE_BACKDATE: Duration = Duration::minutes(1);

/// What `setup` is asked to do.
pub struct SetupParams {
    /// The keypair's name.
    pub name: KeyName,
    /// Passphrase for the private key; `None` writes it unencrypted.
    pub passphrase: Option<Secret>,
    /// Certificate lifetime in days.
    pub cert_days: i64,
    /// Replace a keypair whose certificate is still valid.
    pub force: bool,
}

/// What an existing keypair was, when `setup` replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// Its certificate had expired (no `force` needed).
    Expired {
        /// When it expired.
        not_after: OffsetDateTime,
    },
    /// Its certificate was still valid; replaced because of `force`.
    StillValid {
        /// When it would have expired.
        not_after: OffsetDateTime,
    },
    /// Only a private key, or an unreadable certificate, was there; replaced because of `force`.
    Incomplete,
}

/// The result of a successful `setup`.
#[derive(Debug, Clone)]
pub struct SetupOutcome {
    /// The keypair's name.
    pub name: KeyName,
    /// Absolute path of the private key file.
    pub private_key_path: PathBuf,
    /// Absolute path of the certificate file.
    pub certificate_path: PathBuf,
    /// Whether the private key is passphrase-protected.
    pub encrypted: bool,
    /// The new certificate.
    pub certificate: CertificateInfo,
    /// What was there before, if anything.
    pub replaced: Option<Replaced>,
}

/// The result of a successful `remove`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoveOutcome {
    /// The private key file existed and was deleted.
    pub removed_private_key: bool,
    /// The certificate file existed and was deleted.
    pub removed_certificate: bool,
}

/// The state of a keypair's private key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateKeyState {
    /// No `.pem` file.
    Missing,
    /// A passphrase-protected key.
    Encrypted,
    /// An unprotected key.
    Unencrypted,
    /// A file that is not a PEM private key.
    Unreadable,
}

/// The state of a keypair's certificate file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateState {
    /// No `.crt` file.
    Missing,
    /// A file that is not a PEM certificate.
    Unreadable,
    /// A readable certificate.
    Present(CertificateInfo),
}

/// One keypair as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The file stem.
    pub name: String,
    /// The `.pem` file.
    pub private_key: PrivateKeyState,
    /// The `.crt` file.
    pub certificate: CertificateState,
}

impl SetupParams {
    /// Checks the parameters that need no file access.
    pub fn validate(&self) -> Result<(), KeyError> {
        if !CERT_DAYS_RANGE.contains(&self.cert_days) {
            return Err(KeyError::CertDays(self.cert_days));
        }
        if self.passphrase.as_ref().is_some_and(|p| p.expose_secret().is_empty()) {
            return Err(KeyError::EmptyPassphrase);
        }
        Ok(())
    }
}

/// A name locked for writing, with the decision about what it replaces.
pub struct Reservation<'v> {
    vault: &'v KeyVault,
    name: KeyName,
    replaced: Option<Replaced>,
    _lock: FileLock,
}

impl Reservation<'_> {
    /// What writing will replace, if anything.
    pub fn replaced(&self) -> Option<Replaced> {
        self.replaced
    }

    /// Generates the keypair (the slow part: RSA key generation and the KDF) and
    /// writes it, then releases the lock.
    pub fn write(self, params: &SetupParams, clock: &dyn Clock) -> Result<SetupOutcome, KeyError> {
        params.validate()?;
        let now = clock.now();
        let generated = material::generate(
            &self.name,
            params.passphrase.as_ref(),
            now - NOT_BEFORE_BACKDATE,
            now + Duration::days(params.cert_days),
        )?;
        self.vault.write_pair(&self.name, &generated)?;
        tracing::info!(key_name = %self.name, encrypted = params.passphrase.is_some(), "keypair written");
        Ok(SetupOutcome {
            private_key_path: self.vault.private_key_path(&self.name),
            certificate_path: self.vault.certificate_path(&self.name),
            name: self.name,
            encrypted: params.passphrase.is_some(),
            certificate: generated.certificate,
            replaced: self.replaced,
        })
    }
}

/// `DATA_DIR/keys`, opened and made private.
#[derive(Debug, Clone)]
pub struct KeyVault {
    dir: PathBuf,
}

impl KeyVault {
    /// Opens the vault of `data_dir`, creating `keys/` (owner-only) if needed.
    pub fn open(data_dir: &DataDir) -> Result<Self, KeyError> {
        let dir = data_dir.keys_dir();
        fs_private::ensure_private_dir(&dir).map_err(|source| DataDirError::Unusable { path: dir.clone(), source })?;
        Ok(Self { dir })
    }

    /// The keys directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `{dir}/{name}.pem`.
    pub fn private_key_path(&self, name: &KeyName) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    /// `{dir}/{name}.crt`.
    pub fn certificate_path(&self, name: &KeyName) -> PathBuf {
        self.dir.join(format!("{name}.crt"))
    }

    fn staged(&self, name: &KeyName, suffix: &str) -> PathBuf {
        self.dir.join(format!(".{name}.{suffix}"))
    }

    /// Takes the name's lock and completes or discards any interrupted write.
    fn lock(&self, name: &KeyName) -> Result<FileLock, KeyError> {
        let path = self.staged(name, "lock");
        let lock = FileLock::acquire(&path, fs_private::LOCK_WAIT).map_err(io_error("locking", &path))?;
        self.recover(name)?;
        Ok(lock)
    }

    fn recover(&self, name: &KeyName) -> Result<(), KeyError> {
        if self.staged(name, "commit").exists() {
            tracing::warn!(key_name = %name, "completing an interrupted keypair write");
            self.complete_commit(name)
        } else {
            for staged in [self.staged(name, "pem.new"), self.staged(name, "crt.new")] {
                if fs_private::remove_if_exists(&staged).map_err(io_error("removing", &staged))? {
                    tracing::warn!(key_name = %name, "discarded a partial keypair write");
                }
            }
            Ok(())
        }
    }

    /// Renames whatever staged files remain into place, then drops the marker.
    fn complete_commit(&self, name: &KeyName) -> Result<(), KeyError> {
        let pairs = [
            (self.staged(name, "pem.new"), self.private_key_path(name)),
            (self.staged(name, "crt.new"), self.certificate_path(name)),
        ];
        for (staged, target) in &pairs {
            if staged.exists() {
                fs::rename(staged, target).map_err(io_error("renaming", staged))?;
            }
        }
        fs_private::sync_dir(&self.dir).map_err(io_error("syncing", &self.dir))?;
        let marker = self.staged(name, "commit");
        fs_private::remove_if_exists(&marker).map_err(io_error("removing", &marker))?;
        Ok(())
    }

    /// Generates and stores a keypair in one call: [`SetupParams::validate`], then
    /// [`reserve`](Self::reserve), then [`Reservation::write`].
    pub fn setup(&self, params: &SetupParams, clock: &dyn Clock) -> Result<SetupOutcome, KeyError> {
        params.validate()?;
        self.reserve(&params.name, params.force, clock.now())?.write(params, clock)
    }

    /// Locks `name` and applies the spec's rules to what is there: a keypair whose
    /// certificate is still valid is only replaced with `force`; an expired one is
    /// replaced without. The lock is held until the [`Reservation`] is dropped, so
    /// of two concurrent setups of one name only one can pass this check.
    pub fn reserve(&self, name: &KeyName, force: bool, now: OffsetDateTime) -> Result<Reservation<'_>, KeyError> {
        let lock = self.lock(name)?;
        let replaced = self.check_replaceable(name, force, now)?;
        Ok(Reservation { vault: self, name: name.clone(), replaced, _lock: lock })
    }

    /// Decides whether the files currently under `name` may be replaced.
    fn check_replaceable(
        &self,
        name: &KeyName,
        force: bool,
        now: OffsetDateTime,
    ) -> Result<Option<Replaced>, KeyError> {
        let cert_path = self.certificate_path(name);
        let existing_cert = match fs::read(&cert_path) {
            Ok(bytes) => Some(material::inspect_certificate(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(KeyError::Io { action: "reading", path: cert_path, source });
            }
        };
        let key_exists = self.private_key_path(name).exists();
        match existing_cert {
            Some(Ok(info)) if info.is_expired(now) => Ok(Some(Replaced::Expired { not_after: info.not_after })),
            Some(Ok(info)) if force => Ok(Some(Replaced::StillValid { not_after: info.not_after })),
            Some(Ok(info)) => Err(KeyError::Exists { name: name.clone(), not_after: info.not_after }),
            Some(Err(_)) if force => Ok(Some(Replaced::Incomplete)),
            Some(Err(source)) => Err(KeyError::UnreadableCertificate { path: cert_path, source }),
            None if key_exists && force => Ok(Some(Replaced::Incomplete)),
            None if key_exists => Err(KeyError::OrphanPrivateKey { name: name.clone() }),
            None => Ok(None),
        }
    }

    fn write_pair(&self, name: &KeyName, generated: &material::GeneratedKeypair) -> Result<(), KeyError> {
        let staged_key = self.staged(name, "pem.new");
        let staged_cert = self.staged(name, "crt.new");
        let marker = self.staged(name, "commit");
        let stage = || -> Result<(), KeyError> {
            fs_private::write_durably(&staged_key, generated.private_key_pem.as_bytes(), Visibility::Private)
                .map_err(io_error("writing", &staged_key))?;
            fs_private::write_durably(&staged_cert, generated.certificate_pem.as_bytes(), Visibility::Public)
                .map_err(io_error("writing", &staged_cert))?;
            fs_private::sync_dir(&self.dir).map_err(io_error("syncing", &self.dir))?;
            fs_private::write_durably(&marker, b"", Visibility::Private).map_err(io_error("writing", &marker))?;
            fs_private::sync_dir(&self.dir).map_err(io_error("syncing", &self.dir))
        };
        if let Err(e) = stage() {
            // Nothing is committed yet: leave the old pair exactly as it was.
            let _ = fs_private::remove_if_exists(&marker);
            let _ = fs_private::remove_if_exists(&staged_key);
            let _ = fs_private::remove_if_exists(&staged_cert);
            return Err(e);
        }
        // Committed: from here an interruption is completed by the next `lock`. A
        // rename can fail transiently on Windows (a reader holding the old file), so
        // try a few times before reporting.
        let mut attempt = 0;
        loop {
            match self.complete_commit(name) {
                Ok(()) => return Ok(()),
                Err(_) if attempt < 3 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes both files of a keypair. Either file alone is removed too (a
    /// half-deleted pair must be removable).
    pub fn remove(&self, name: &KeyName) -> Result<RemoveOutcome, KeyError> {
        let lock = self.lock(name)?;
        let key_path = self.private_key_path(name);
        let cert_path = self.certificate_path(name);
        if !key_path.exists() && !cert_path.exists() {
            drop(lock);
            return Err(KeyError::NotFound { name: name.clone(), dir: self.dir.clone(), known: self.names()? });
        }
        // The private key first: it is the secret, and a lone certificate is harmless.
        let removed_private_key = fs_private::remove_if_exists(&key_path).map_err(io_error("deleting", &key_path))?;
        let removed_certificate = fs_private::remove_if_exists(&cert_path).map_err(io_error("deleting", &cert_path))?;
        fs_private::sync_dir(&self.dir).map_err(io_error("syncing", &self.dir))?;
        tracing::info!(key_name = %name, "keypair removed");
        Ok(RemoveOutcome { removed_private_key, removed_certificate })
    }

    /// The names of the keypairs present (stems of `.pem` and `.crt` files), sorted.
    /// Takes no lock: for listings and messages, not for decisions.
    pub fn names(&self) -> Result<Vec<String>, KeyError> {
        let mut names = std::collections::BTreeSet::new();
        let entries = fs::read_dir(&self.dir).map_err(io_error("listing", &self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error("listing", &self.dir))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else { continue };
            if file_name.starts_with('.') {
                continue;
            }
            if let Some(stem) = file_name.strip_suffix(".pem").or_else(|| file_name.strip_suffix(".crt")) {
                names.insert(stem.to_string());
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Every keypair in the vault, sorted by name.
    pub fn list(&self) -> Result<Vec<KeyEntry>, KeyError> {
        let names = self.names()?;
        let mut result = Vec::with_capacity(names.len());
        for raw in names {
            // Files a person dropped in by hand may not be valid names; show them
            // anyway (read without the lock, which needs a valid name).
            match KeyName::parse(&raw) {
                Ok(name) => {
                    let _lock = self.lock(&name)?;
                    result.push(self.read_entry(&raw));
                }
                Err(_) => result.push(self.read_entry(&raw)),
            }
        }
        Ok(result)
    }

    /// Loads `name` for signing: both files must exist, the certificate must be
    /// valid at `now`, the passphrase must open the key, and the key must be the
    /// certificate's. Checked here because Salesforce does not check certificate
    /// expiry itself, and its answer to a wrong key ("invalid assertion") names
    /// none of these causes. With `unlocked` (the worker's cache), a key already
    /// unlocked from these very files with this very passphrase is reused; every
    /// other check still runs on the files as they are now.
    pub fn load_signing_key(
        &self,
        name: &KeyName,
        passphrase: Option<&Secret>,
        now: OffsetDateTime,
        unlocked: Option<&UnlockedKeys>,
    ) -> Result<(Arc<material::SigningKey>, CertificateInfo), KeyError> {
        let _lock = self.lock(name)?;
        let key_path = self.private_key_path(name);
        let cert_path = self.certificate_path(name);
        let not_found = || KeyError::NotFound {
            name: name.clone(),
            dir: self.dir.clone(),
            known: self.names().unwrap_or_default(),
        };
        let key_pem = match fs::read_to_string(&key_path) {
            Ok(pem) => zeroize::Zeroizing::new(pem),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(cache) = unlocked {
                    cache.forget(name.as_str());
                }
                return Err(not_found());
            }
            Err(source) => return Err(KeyError::Io { action: "reading", path: key_path, source }),
        };
        let cert_pem = match fs::read(&cert_path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
            Err(source) => return Err(KeyError::Io { action: "reading", path: cert_path, source }),
        };
        let info = material::inspect_certificate(&cert_pem)
            .map_err(|source| KeyError::UnreadableCertificate { path: cert_path.clone(), source })?;
        if info.is_expired(now) {
            return Err(KeyError::CertificateExpired { name: name.clone(), not_after: info.not_after });
        }
        let tag = unlocked.map(|cache| cache.tag(key_pem.as_bytes(), &cert_pem, passphrase));
        if let Some(key) = unlocked.zip(tag.as_ref()).and_then(|(cache, tag)| cache.get(name.as_str(), tag)) {
            return Ok((key, info));
        }
        let key = Arc::new(
            material::unlock_private_key(&key_pem, passphrase, &cert_pem)
                .map_err(|source| KeyError::Unlock { name: name.clone(), source })?,
        );
        if let (Some(cache), Some(tag)) = (unlocked, tag) {
            cache.insert(name.as_str(), tag, key.clone());
        }
        Ok((key, info))
    }

    /// One keypair's state, or `None` if neither file exists.
    pub fn inspect(&self, name: &KeyName) -> Result<Option<KeyEntry>, KeyError> {
        let _lock = self.lock(name)?;
        let entry = self.read_entry(name.as_str());
        let absent = entry.private_key == PrivateKeyState::Missing && entry.certificate == CertificateState::Missing;
        Ok(if absent { None } else { Some(entry) })
    }

    fn read_entry(&self, name: &str) -> KeyEntry {
        let private_key = match fs::read_to_string(self.dir.join(format!("{name}.pem"))) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => PrivateKeyState::Missing,
            Err(_) => PrivateKeyState::Unreadable,
            Ok(pem) => match material::private_key_is_encrypted(&pem) {
                Some(true) => PrivateKeyState::Encrypted,
                Some(false) => PrivateKeyState::Unencrypted,
                None => PrivateKeyState::Unreadable,
            },
        };
        let certificate = match fs::read(self.dir.join(format!("{name}.crt"))) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => CertificateState::Missing,
            Err(_) => CertificateState::Unreadable,
            Ok(bytes) => match material::inspect_certificate(&bytes) {
                Ok(info) => CertificateState::Present(info),
                Err(_) => CertificateState::Unreadable,
            },
        };
        KeyEntry { name: name.to_string(), private_key, certificate }
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> KeyError + 'a {
    move |source| KeyError::Io { action, path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::secret::secret;

    fn vault() -> (tempfile::TempDir, KeyVault) {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::open(tmp.path()).unwrap();
        let vault = KeyVault::open(&data).unwrap();
        (tmp, vault)
    }

    fn params(name: &str, days: i64, force: bool) -> SetupParams {
        SetupParams { name: KeyName::parse(name).unwrap(), passphrase: None, cert_days: days, force }
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }

    #[test]
    fn valid_certificate_blocks_setup_until_it_expires() {
        let (_tmp, vault) = vault();
        let clock = FixedClock::at(t0());
        let first = vault.setup(&params("acme", 2, false), &clock).unwrap();
        assert_eq!(first.replaced, None);

        let again = vault.setup(&params("acme", 2, false), &clock).unwrap_err();
        assert!(matches!(again, KeyError::Exists { not_after, .. } if not_after == first.certificate.not_after));

        clock.advance(Duration::days(2) + Duration::seconds(1));
        let renewed = vault.setup(&params("acme", 2, false), &clock).unwrap();
        assert_eq!(renewed.replaced, Some(Replaced::Expired { not_after: first.certificate.not_after }));
        assert_ne!(renewed.certificate.sha256_fingerprint, first.certificate.sha256_fingerprint);
    }

    #[test]
    fn force_replaces_a_valid_keypair() {
        let (_tmp, vault) = vault();
        let clock = FixedClock::at(t0());
        let first = vault.setup(&params("acme", 30, false), &clock).unwrap();
        let forced = vault.setup(&params("acme", 30, true), &clock).unwrap();
        assert_eq!(forced.replaced, Some(Replaced::StillValid { not_after: first.certificate.not_after }));
    }

    #[test]
    fn orphan_key_or_unreadable_certificate_needs_force() {
        let (_tmp, vault) = vault();
        let clock = FixedClock::at(t0());
        let name = KeyName::parse("acme").unwrap();
        fs::write(vault.private_key_path(&name), "-----BEGIN PRIVATE KEY-----\n").unwrap();
        assert!(matches!(vault.setup(&params("acme", 1, false), &clock), Err(KeyError::OrphanPrivateKey { .. })));
        fs::write(vault.certificate_path(&name), "junk").unwrap();
        assert!(matches!(vault.setup(&params("acme", 1, false), &clock), Err(KeyError::UnreadableCertificate { .. })));
        let forced = vault.setup(&params("acme", 1, true), &clock).unwrap();
        assert_eq!(forced.replaced, Some(Replaced::Incomplete));
    }

    #[test]
    fn bad_parameters_touch_nothing() {
        let (_tmp, vault) = vault();
        let clock = FixedClock::at(t0());
        for days in [0, -1, 3651] {
            assert!(
                matches!(vault.setup(&params("acme", days, false), &clock), Err(KeyError::CertDays(d)) if d == days)
            );
        }
        let mut empty_pass = params("acme", 1, false);
        empty_pass.passphrase = Some(secret(""));
        assert!(matches!(vault.setup(&empty_pass, &clock), Err(KeyError::EmptyPassphrase)));
        assert_eq!(fs::read_dir(vault.dir()).unwrap().count(), 0, "no file may be left behind");
    }

    /// Lays out the files an interrupted write leaves, as a crash would.
    fn interrupted_write(vault: &KeyVault, name: &KeyName, committed: bool) -> (String, String) {
        let clock = FixedClock::at(t0());
        let kp = material::generate(name, None, clock.now(), clock.now() + Duration::days(9)).unwrap();
        fs::write(vault.staged(name, "pem.new"), kp.private_key_pem.as_bytes()).unwrap();
        fs::write(vault.staged(name, "crt.new"), &kp.certificate_pem).unwrap();
        if committed {
            fs::write(vault.staged(name, "commit"), b"").unwrap();
        }
        (kp.private_key_pem.to_string(), kp.certificate_pem)
    }

    #[test]
    fn uncommitted_staging_is_rolled_back() {
        let (_tmp, vault) = vault();
        let clock = FixedClock::at(t0());
        let name = KeyName::parse("acme").unwrap();
        vault.setup(&params("acme", 5, false), &clock).unwrap();
        let before_key = fs::read_to_string(vault.private_key_path(&name)).unwrap();
        let before_cert = fs::read_to_string(vault.certificate_path(&name)).unwrap();

        interrupted_write(&vault, &name, false);
        let entries = vault.list().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(fs::read_to_string(vault.private_key_path(&name)).unwrap(), before_key);
        assert_eq!(fs::read_to_string(vault.certificate_path(&name)).unwrap(), before_cert);
        assert!(!vault.staged(&name, "pem.new").exists() && !vault.staged(&name, "crt.new").exists());
    }

    #[test]
    fn committed_staging_is_rolled_forward_even_half_renamed() {
        let (_tmp, vault) = vault();
        let clock = FixedClock::at(t0());
        let name = KeyName::parse("acme").unwrap();
        vault.setup(&params("acme", 5, false), &clock).unwrap();

        let (new_key, new_cert) = interrupted_write(&vault, &name, true);
        // The crash happened after the first rename.
        fs::rename(vault.staged(&name, "pem.new"), vault.private_key_path(&name)).unwrap();
        let entry = vault.inspect(&name).unwrap().unwrap();
        assert_eq!(fs::read_to_string(vault.private_key_path(&name)).unwrap(), new_key);
        assert_eq!(fs::read_to_string(vault.certificate_path(&name)).unwrap(), new_cert);
        assert!(matches!(entry.certificate, CertificateState::Present(ref c) if c.days_left(clock.now()) == 9));
        assert!(!vault.staged(&name, "commit").exists());
    }

    #[test]
    fn remove_deletes_both_and_reports_unknown_names_with_the_known_ones() {
        let (_tmp, vault) = vault();
        let clock = FixedClock::at(t0());
        vault.setup(&params("one", 5, false), &clock).unwrap();
        vault.setup(&params("two", 5, false), &clock).unwrap();
        let one = KeyName::parse("one").unwrap();
        assert_eq!(vault.remove(&one).unwrap(), RemoveOutcome { removed_private_key: true, removed_certificate: true });
        assert!(!vault.private_key_path(&one).exists() && !vault.certificate_path(&one).exists());
        match vault.remove(&one) {
            Err(KeyError::NotFound { known, .. }) => assert_eq!(known, ["two"]),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (_tmp, vault) = vault();
        let mut p = params("acme", 5, false);
        p.passphrase = Some(secret("a passphrase"));
        let out = vault.setup(&p, &FixedClock::at(t0())).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(vault.dir()), 0o700);
        assert_eq!(mode(&out.private_key_path), 0o600);
        assert_eq!(mode(&out.certificate_path), 0o644);
    }
}
