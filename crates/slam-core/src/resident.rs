//! What the worker keeps between operations: one HTTPS client, whose connection
//! pools (one per Salesforce host) stay warm, and the access token of each stored
//! connection, so that an operation does not log in again while a token works.
//!
//! It also keeps the private keys it has unlocked (`keys::UnlockedKeys`), so that a
//! login with an encrypted key does not pay for PBKDF2 each time.
//!
//! The CLI's `--local` mode has no resident state: each run logs in afresh. A
//! cached token is tied to the stored connection it came from (a fingerprint of the
//! row, sealed secrets included): re-adding a connection, even with the same
//! username, starts from a fresh login. A token Salesforce rejects is dropped and
//! replaced by exactly one new login (see `test_connection`).

use crate::keys::UnlockedKeys;
use crate::salesforce::{HttpSettings, LoginError, SalesforceClient, Session};
use sha2::{Digest, Sha256};
use slam_store::ConnectionRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// State that lives as long as the worker.
pub struct Resident {
    started: Instant,
    client: SalesforceClient,
    sessions: Option<Mutex<HashMap<String, CachedSession>>>,
    unlocked_keys: Option<UnlockedKeys>,
}

struct CachedSession {
    fingerprint: [u8; 32],
    session: Arc<Session>,
}

impl Resident {
    /// Builds the shared HTTPS client from `http`; `cache_tokens` turns the token
    /// cache on (off only to measure what it saves).
    pub fn new(http: HttpSettings, cache_tokens: bool) -> Result<Self, LoginError> {
        Ok(Self {
            started: Instant::now(),
            client: SalesforceClient::new(http)?,
            sessions: cache_tokens.then(|| Mutex::new(HashMap::new())),
            unlocked_keys: UnlockedKeys::new(),
        })
    }

    /// Time since the worker started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether tokens are cached.
    pub fn caches_tokens(&self) -> bool {
        self.sessions.is_some()
    }

    /// How many connections have a cached token.
    pub fn cached_sessions(&self) -> usize {
        self.with_sessions(|map| map.len()).unwrap_or(0)
    }

    /// The private keys unlocked so far (see [`UnlockedKeys`]); `None` only if the
    /// system's random source failed at start-up.
    pub fn unlocked_keys(&self) -> Option<&UnlockedKeys> {
        self.unlocked_keys.as_ref()
    }

    pub(crate) fn client(&self) -> &SalesforceClient {
        &self.client
    }

    /// The cached session of `record`, if it was cached for this very row and this
    /// very keypair certificate (`key_marker`): for the operations that work as a
    /// connection's user. `SLAM_test_connection` never uses it (a test always logs
    /// in), it only refreshes it.
    pub fn session_for(&self, record: &ConnectionRecord, key_marker: &[u8]) -> Option<Arc<Session>> {
        let fingerprint = fingerprint(record, key_marker);
        self.with_sessions(|map| {
            map.get(&cache_key(&record.username)).filter(|c| c.fingerprint == fingerprint).map(|c| c.session.clone())
        })
        .flatten()
    }

    pub(crate) fn remember(&self, record: &ConnectionRecord, key_marker: &[u8], session: Arc<Session>) {
        let fingerprint = fingerprint(record, key_marker);
        self.with_sessions(|map| map.insert(cache_key(&record.username), CachedSession { fingerprint, session }));
    }

    pub(crate) fn forget(&self, username: &str) {
        self.with_sessions(|map| map.remove(&cache_key(username)));
    }

    fn with_sessions<T>(&self, f: impl FnOnce(&mut HashMap<String, CachedSession>) -> T) -> Option<T> {
        let sessions = self.sessions.as_ref()?;
        // A panic while holding this lock leaves only a map of tokens behind, which
        // stays consistent: keep using it rather than failing every later operation.
        let mut map = sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(f(&mut map))
    }
}

/// Salesforce usernames are case-insensitive.
fn cache_key(username: &str) -> String {
    username.trim().to_lowercase()
}

/// Everything a login depends on. The sealed blobs carry a random nonce, so a
/// connection re-added with identical values still gets a new fingerprint.
/// `key_marker` is the JWT keypair's certificate: after `SLAM_setup_jwt @force = 1`
/// (or removing the keypair) a test must prove the new key with a real login, not
/// pass on a token the old key obtained.
fn fingerprint(r: &ConnectionRecord, key_marker: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(r.username.to_lowercase().as_bytes());
    field(r.auth_method.as_bytes());
    field(r.domain.as_bytes());
    field(&r.api_version.to_le_bytes());
    for text in [&r.key_name, &r.consumer_key] {
        field(text.as_deref().unwrap_or("\u{0}").as_bytes());
    }
    for blob in [&r.password_sealed, &r.token_sealed, &r.key_password_sealed] {
        field(blob.as_deref().unwrap_or(b"\x00"));
    }
    field(key_marker);
    field(r.created_at.as_bytes());
    field(r.updated_at.as_bytes());
    hash.finalize().into()
}
