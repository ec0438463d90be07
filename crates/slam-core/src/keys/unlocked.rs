//! Private keys the worker has already unlocked, so that a login does not pay for
//! PBKDF2 again.
//!
//! Opening an encrypted key costs 600,000 PBKDF2 iterations (~70 ms), which would
//! dominate every JWT login through the worker, `SLAM_test_connection` included
//! (a test always logs in afresh). The worker keeps each unlocked key in memory,
//! wiped when dropped, under a tag that is an HMAC — keyed with a random key made
//! when the worker starts and never stored — of the key file, the certificate file
//! and the passphrase together. So:
//! - a wrong passphrase gives another tag, misses, and is refused by the real
//!   unlock, exactly as without the cache;
//! - a key file replaced on disk (`@force = 1`, a restore) gives another tag and is
//!   unlocked afresh; the old entry is replaced;
//! - `SLAM_remove_jwt` and `SLAM_setup_jwt` forget the name explicitly;
//! - the tag reveals nothing about the passphrase to someone who reads the
//!   worker's memory without the HMAC key, and the passphrase itself is not kept.
//!
//! `slam --local` runs have no cache: each run unlocks once and exits.

use super::material::SigningKey;
use crate::secret::{ExposeSecret, Secret};
use ring::hmac;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The worker's unlocked keys, by key name.
pub struct UnlockedKeys {
    tag_key: hmac::Key,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    tag: hmac::Tag,
    key: Arc<SigningKey>,
}

/// A lookup tag for one (key file, certificate file, passphrase) combination.
pub struct UnlockTag(hmac::Tag);

impl UnlockedKeys {
    /// An empty cache with a fresh random HMAC key; `None` if the system's random
    /// source fails (the worker then runs without the cache).
    pub fn new() -> Option<Self> {
        let tag_key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new()).ok()?;
        Some(Self { tag_key, entries: Mutex::new(HashMap::new()) })
    }

    /// The tag of this combination. Each part is length-prefixed so that no two
    /// different combinations can produce the same input.
    pub fn tag(&self, key_pem: &[u8], certificate_pem: &[u8], passphrase: Option<&Secret>) -> UnlockTag {
        let mut context = hmac::Context::with_key(&self.tag_key);
        let mut part = |bytes: &[u8]| {
            context.update(&(bytes.len() as u64).to_le_bytes());
            context.update(bytes);
        };
        part(key_pem);
        part(certificate_pem);
        match passphrase {
            Some(p) => {
                part(b"passphrase");
                part(p.expose_secret().as_bytes());
            }
            None => part(b"no passphrase"),
        }
        UnlockTag(context.sign())
    }

    /// The key unlocked earlier for exactly this tag.
    pub fn get(&self, name: &str, tag: &UnlockTag) -> Option<Arc<SigningKey>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(&cache_name(name))?;
        same_tag(entry.tag.as_ref(), tag.0.as_ref()).then(|| entry.key.clone())
    }

    /// Remembers `key`, unlocked for `tag`, replacing what `name` had.
    pub fn insert(&self, name: &str, tag: UnlockTag, key: Arc<SigningKey>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert(cache_name(name), Entry { tag: tag.0, key });
    }

    /// Forgets `name` (its files were removed or replaced).
    pub fn forget(&self, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(&cache_name(name));
    }

    /// How many keys are held unlocked.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no key is held unlocked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Compares two tags without stopping at the first differing byte, as MACs are
/// compared.
fn same_tag(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Key names are file names, case-insensitive on Windows.
fn cache_name(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::secret;
    use zeroize::Zeroizing;

    fn key(byte: u8) -> Arc<SigningKey> {
        Arc::new(SigningKey { pkcs1_der: Zeroizing::new(vec![byte; 4]), was_encrypted: true })
    }

    #[test]
    fn only_the_same_files_and_passphrase_find_the_key() {
        let cache = UnlockedKeys::new().unwrap();
        let pass = secret("right passphrase");
        cache.insert("Acme", cache.tag(b"pem", b"crt", Some(&pass)), key(1));
        assert_eq!(cache.get("acme", &cache.tag(b"pem", b"crt", Some(&pass))).unwrap().pkcs1_der[0], 1);
        assert!(cache.get("acme", &cache.tag(b"pem", b"crt", Some(&secret("wrong passphrase")))).is_none());
        assert!(cache.get("acme", &cache.tag(b"pem", b"crt", None)).is_none());
        assert!(cache.get("acme", &cache.tag(b"new pem", b"crt", Some(&pass))).is_none(), "key file replaced");
        assert!(cache.get("acme", &cache.tag(b"pem", b"new crt", Some(&pass))).is_none(), "certificate replaced");
        // Length prefixes: moving bytes between the parts changes the tag.
        assert!(cache.get("acme", &cache.tag(b"pemc", b"rt", Some(&pass))).is_none());
        assert!(cache.get("other", &cache.tag(b"pem", b"crt", Some(&pass))).is_none());
        cache.forget("ACME");
        assert!(cache.is_empty());
    }

    #[test]
    fn two_workers_tag_differently() {
        let (a, b) = (UnlockedKeys::new().unwrap(), UnlockedKeys::new().unwrap());
        let pass = secret("p");
        assert_ne!(a.tag(b"k", b"c", Some(&pass)).0.as_ref(), b.tag(b"k", b"c", Some(&pass)).0.as_ref());
    }
}
