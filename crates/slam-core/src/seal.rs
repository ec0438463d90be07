//! Sealing secrets at rest: passwords, security tokens and key passphrases are
//! stored only as AEAD ciphertext under a machine master key.
//!
//! - Cipher: ChaCha20-Poly1305 (ring), a random 96-bit nonce per seal (a few
//!   thousand seals over a key's life is far below the collision bound).
//! - Binding: the associated data is the purpose (e.g. `password`) and the
//!   lower-cased username, so a sealed blob copied into another row or column
//!   fails to open.
//! - Master key: 32 random bytes in `DATA_DIR/master.key`, created on first use
//!   under a lock (0600 on Unix). On Windows the bytes are additionally wrapped
//!   with DPAPI for the account running SLAM. A store copied without this file
//!   reveals nothing; a store opened with another machine's key fails with a clear
//!   error instead of garbage.

use crate::fs_private::{self, FileLock, Visibility};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::io;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// First byte of every sealed blob: the format version.
const SEALED_V1: u8 = 1;
/// Magic at the start of `master.key`.
const KEY_FILE_MAGIC: &[u8; 8] = b"SLAMKEY1";
/// Key file scheme byte: raw key bytes follow (written and accepted off Windows only).
#[cfg_attr(windows, allow(dead_code))]
const SCHEME_RAW: u8 = 0;
/// Key file scheme byte: a DPAPI blob follows (written on Windows only).
#[cfg_attr(not(windows), allow(dead_code))]
const SCHEME_DPAPI: u8 = 1;

/// Sealing failures.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The master key file could not be read or created.
    #[error("the master key {} cannot be used", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The master key file is not one SLAM wrote, or DPAPI could not unwrap it (another account or machine).
    #[error("the master key {} is not readable by this account on this machine", path.display())]
    KeyUnreadable {
        /// The file.
        path: PathBuf,
    },
    /// The master key file is gone while the store holds secrets sealed under it.
    #[error("the master key {} is missing, but the store holds secrets sealed under it", path.display())]
    KeyMissing {
        /// The file.
        path: PathBuf,
    },
    /// A sealed value does not open with this master key (copied store, or moved between rows).
    #[error("a stored secret cannot be decrypted with this machine's master key")]
    Unseal,
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// The machine master key, loaded.
pub struct MasterKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl MasterKey {
    /// Loads `DATA_DIR/master.key`, creating it on first use. With `may_create`
    /// false (the store already holds sealed secrets) a missing key is an error:
    /// a new one would make every stored secret unreadable, silently.
    pub fn load_or_create(data_dir: &Path, may_create: bool) -> Result<Self, SealError> {
        let path = data_dir.join("master.key");
        let key_error = |source| SealError::KeyFile { path: path.clone(), source };
        let _lock = FileLock::acquire(&data_dir.join(".master.key.lock"), fs_private::LOCK_WAIT).map_err(key_error)?;
        let rng = SystemRandom::new();
        let bytes = match std::fs::read(&path) {
            Ok(file) => unwrap_key_file(&file).ok_or_else(|| SealError::KeyUnreadable { path: path.clone() })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !may_create => {
                return Err(SealError::KeyMissing { path: path.clone() });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut fresh = Zeroizing::new([0u8; 32]);
                rng.fill(fresh.as_mut()).map_err(|_| SealError::Random)?;
                let file = wrap_key_file(fresh.as_ref()).map_err(key_error)?;
                // Written beside, then renamed: no reader ever sees half a key.
                let staged = data_dir.join(".master.key.new");
                fs_private::write_durably(&staged, &file, Visibility::Private).map_err(key_error)?;
                std::fs::rename(&staged, &path).map_err(key_error)?;
                fs_private::sync_dir(data_dir).map_err(key_error)?;
                tracing::info!(path = %path.display(), "created the master key");
                Zeroizing::new(fresh.to_vec())
            }
            Err(e) => return Err(key_error(e)),
        };
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| SealError::KeyUnreadable { path })?;
        Ok(Self { key: LessSafeKey::new(unbound), rng })
    }

    /// Seals `plaintext` for `purpose` of `username`.
    pub fn seal(&self, purpose: &str, username: &str, plaintext: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut data = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(purpose, username).as_aad(), &mut data)
            .map_err(|_| SealError::Random)?;
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + data.len());
        blob.push(SEALED_V1);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&data);
        Ok(blob)
    }

    /// Opens a blob sealed for `purpose` of `username`.
    pub fn open(&self, purpose: &str, username: &str, blob: &[u8]) -> Result<crate::secret::Secret, SealError> {
        let (version, rest) = blob.split_first().ok_or(SealError::Unseal)?;
        if *version != SEALED_V1 || rest.len() < NONCE_LEN {
            return Err(SealError::Unseal);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Unseal)?;
        let mut data = Zeroizing::new(sealed.to_vec());
        let plain =
            self.key.open_in_place(nonce, aad(purpose, username).as_aad(), &mut data).map_err(|_| SealError::Unseal)?;
        let text = std::str::from_utf8(plain).map_err(|_| SealError::Unseal)?;
        Ok(crate::secret::secret(text))
    }
}

struct AadBytes(Vec<u8>);

impl AadBytes {
    fn as_aad(&self) -> Aad<&[u8]> {
        Aad::from(self.0.as_slice())
    }
}

fn aad(purpose: &str, username: &str) -> AadBytes {
    AadBytes(format!("slam-seal-v1\0{purpose}\0{}", username.to_lowercase()).into_bytes())
}

fn wrap_key_file(key: &[u8]) -> io::Result<Vec<u8>> {
    let mut file = KEY_FILE_MAGIC.to_vec();
    #[cfg(windows)]
    {
        file.push(SCHEME_DPAPI);
        file.extend_from_slice(&slam_windows::dpapi_protect(key)?);
    }
    #[cfg(not(windows))]
    {
        file.push(SCHEME_RAW);
        file.extend_from_slice(key);
    }
    Ok(file)
}

fn unwrap_key_file(file: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let rest = file.strip_prefix(KEY_FILE_MAGIC.as_slice())?;
    let (scheme, body) = rest.split_first()?;
    let key = match *scheme {
        // On Windows SLAM only ever writes DPAPI-wrapped keys: a raw key there was
        // planted by someone else, who would then know every sealed secret.
        #[cfg(not(windows))]
        SCHEME_RAW => Zeroizing::new(body.to_vec()),
        #[cfg(windows)]
        SCHEME_DPAPI => Zeroizing::new(slam_windows::dpapi_unprotect(body).ok()?),
        _ => return None,
    };
    (key.len() == 32).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ExposeSecret;

    #[test]
    fn sealed_values_open_only_for_their_row_and_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::load_or_create(dir.path(), true).unwrap();
        let blob = key.seal("password", "A@acme.com", "hunter2 & <more>").unwrap();
        assert!(!blob.windows(7).any(|w| w == b"hunter2"), "ciphertext must not contain the plaintext");
        assert_eq!(key.open("password", "a@ACME.com", &blob).unwrap().expose_secret(), "hunter2 & <more>");
        assert!(matches!(key.open("password", "b@acme.com", &blob), Err(SealError::Unseal)), "bound to the user");
        assert!(matches!(key.open("token", "a@acme.com", &blob), Err(SealError::Unseal)), "bound to the column");
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(key.open("password", "a@acme.com", &tampered), Err(SealError::Unseal)));
        assert_ne!(blob, key.seal("password", "a@acme.com", "hunter2 & <more>").unwrap(), "fresh nonce each time");
    }

    #[test]
    fn the_key_persists_and_another_machines_key_cannot_open() {
        let dir = tempfile::tempdir().unwrap();
        let blob = MasterKey::load_or_create(dir.path(), true).unwrap().seal("token", "u", "TOKEN").unwrap();
        let again = MasterKey::load_or_create(dir.path(), true).unwrap();
        assert_eq!(again.open("token", "u", &blob).unwrap().expose_secret(), "TOKEN");
        let elsewhere = tempfile::tempdir().unwrap();
        let other = MasterKey::load_or_create(elsewhere.path(), true).unwrap();
        assert!(matches!(other.open("token", "u", &blob), Err(SealError::Unseal)));
        std::fs::write(dir.path().join("master.key"), b"garbage").unwrap();
        assert!(matches!(MasterKey::load_or_create(dir.path(), true), Err(SealError::KeyUnreadable { .. })));
    }

    #[cfg(windows)]
    #[test]
    fn windows_refuses_a_raw_master_key_someone_planted() {
        let dir = tempfile::tempdir().unwrap();
        let mut planted = KEY_FILE_MAGIC.to_vec();
        planted.push(SCHEME_RAW);
        planted.extend_from_slice(&[7u8; 32]);
        std::fs::write(dir.path().join("master.key"), planted).unwrap();
        assert!(matches!(MasterKey::load_or_create(dir.path(), true), Err(SealError::KeyUnreadable { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        MasterKey::load_or_create(dir.path(), true).unwrap();
        let mode = std::fs::metadata(dir.path().join("master.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
