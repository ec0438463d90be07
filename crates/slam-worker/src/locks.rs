//! Serialises operations on the same keypair or the same Salesforce username,
//! while operations on different ones run in parallel.
//!
//! The file locks in `slam-core` already keep the data consistent; these locks are
//! about what the DBA sees. Two `SLAM_setup_jwt @key_name = 'acme'` calls queue
//! instead of one failing on a busy lock, and a `test_connection` waiting behind an
//! `add_connection` for the same user tests the connection just added, reusing its
//! token rather than logging in twice.

use slam_protocol::{Request, catalogue};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::OwnedMutexGuard;

/// What a request must hold while it runs: one lock per argument the catalogue
/// marks as naming a keypair (`key:NAME`) or a Salesforce username (`user:NAME`),
/// lower-cased (Salesforce usernames are case-insensitive, and so are file names on
/// Windows), sorted so that two requests needing the same pair take them in the
/// same order. An unknown operation holds nothing (dispatch refuses it).
pub fn lock_names(request: &Request) -> Vec<String> {
    let Some(operation) = catalogue::operation(&request.operation) else { return Vec::new() };
    let mut names: Vec<String> = operation
        .params
        .iter()
        .filter_map(|param| {
            let prefix = param.lock?.prefix();
            let value = request.args.get(param.name)?.as_str()?.trim();
            (!value.is_empty()).then(|| format!("{prefix}{}", value.to_lowercase()))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A set of named async locks, created on first use and dropped when unused.
#[derive(Default)]
pub struct NamedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The locks a request holds; released on drop.
pub struct Held {
    _guards: Vec<OwnedMutexGuard<()>>,
}

impl NamedLocks {
    /// Waits for every lock in `names` (which must be sorted, as [`lock_names`]
    /// returns them) and holds them until the result is dropped.
    pub async fn acquire(&self, names: &[String]) -> Held {
        let locks: Vec<_> = {
            // The map only ever gains or loses entries; a panic elsewhere cannot
            // leave it inconsistent, so a poisoned lock is still usable.
            let mut map = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget locks nobody holds or waits for, so the map stays small.
            map.retain(|_, lock| Arc::strong_count(lock) > 1);
            names.iter().map(|n| map.entry(n.clone()).or_default().clone()).collect()
        };
        let mut guards = Vec::with_capacity(locks.len());
        for lock in locks {
            guards.push(lock.lock_owned().await);
        }
        Held { _guards: guards }
    }

    /// Locks currently known (held or waited for), for tests.
    pub fn len(&self) -> usize {
        let mut map = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, lock| Arc::strong_count(lock) > 1);
        map.len()
    }

    /// Whether no lock is held or waited for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slam_protocol::PROTOCOL_VERSION;
    use std::time::Duration;

    fn request(args: serde_json::Value) -> Request {
        Request {
            version: PROTOCOL_VERSION,
            id: "1".into(),
            operation: "add_connection".into(),
            args: serde_json::from_value(args).unwrap(),
            caller: Default::default(),
        }
    }

    #[test]
    fn names_come_from_key_name_and_username_case_insensitively() {
        let r = request(serde_json::json!({"username": "Admin@Acme.com", "key_name": "Acme-Prod", "password": "x"}));
        assert_eq!(lock_names(&r), vec!["key:acme-prod", "user:admin@acme.com"]);
        assert!(lock_names(&request(serde_json::json!({"username": null, "key_name": " "}))).is_empty());
        let mut ping = request(serde_json::json!({"username": "Admin@Acme.com"}));
        ping.operation = "ping".into();
        assert!(lock_names(&ping).is_empty(), "only parameters of the operation name locks");
    }

    #[tokio::test]
    async fn the_same_name_waits_and_different_names_do_not() {
        let locks = Arc::new(NamedLocks::default());
        let first = locks.acquire(&["user:a".into()]).await;
        // A different name is free at once.
        let other = tokio::time::timeout(Duration::from_secs(1), locks.acquire(&["user:b".into()])).await;
        assert!(other.is_ok());
        // The same name waits until the first is released.
        let waiter = tokio::spawn({
            let locks = locks.clone();
            async move { locks.acquire(&["key:k".into(), "user:a".into()]).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished());
        drop(first);
        let held = tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
        drop(held);
        drop(other);
        assert!(locks.is_empty(), "unused locks are forgotten");
    }
}
