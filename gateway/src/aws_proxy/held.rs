//! A call held for a person's approval, and the calls of this replica waiting on a decision
//! ([`super::hold`] asks, waits and decides).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use tokio::sync::watch;

/// A call that needs a person's approval.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldCall {
    /// Hex SHA-256 over user, project, region, action, method, path, query and body hash (see
    /// [`fingerprint`]): names the exact call.
    pub fingerprint: String,
    /// The project.
    pub project: String,
    /// The developer's subject.
    pub user_sub: String,
    /// The developer's email, when the IdP gave one.
    pub user_email: Option<String>,
    /// The AWS service (signing name).
    pub service: String,
    /// The region.
    pub region: String,
    /// The operation, when named (`PutObject`).
    pub operation: Option<String>,
    /// The IAM action, when named (`s3:PutObject`).
    pub action: Option<String>,
    /// The call's parameters, already masked: safe to show and store.
    pub params: Value,
    /// Why it needs approval, in words (`a write`, `matches s3:DeleteObjects`).
    pub reasons: Vec<String>,
}

/// The calls of this replica waiting for a decision, by request id: a decision taken here wakes
/// them at once. One entry per request with waiters, removed with its last waiter.
#[derive(Debug, Default)]
pub struct Waiters(Mutex<HashMap<String, watch::Sender<()>>>);

/// One waiter's registration; dropping it unregisters.
pub(super) struct Waiting<'a> {
    waiters: &'a Waiters,
    id: String,
    rx: Option<watch::Receiver<()>>,
}

impl Waiters {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<()>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a waiter on request `id`: a [`Waiters::wake`] after this resolves its wait.
    pub(super) fn watch(&self, id: &str) -> Waiting<'_> {
        let rx = self
            .map()
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        Waiting {
            waiters: self,
            id: id.to_owned(),
            rx: Some(rx),
        }
    }

    /// Wakes every call of this replica waiting on request `id`.
    pub fn wake(&self, id: &str) {
        if let Some(tx) = self.map().get(id) {
            tx.send_replace(());
        }
    }

    /// How many requests have waiters now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no call waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.rx.take();
        let mut map = self.waiters.map();
        if map.get(&self.id).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&self.id);
        }
    }
}

impl Waiting<'_> {
    /// Until the next wake (never, if the registry is gone).
    pub(super) async fn woken(&mut self) {
        if let Some(rx) = self.rx.as_mut() {
            if rx.changed().await.is_ok() {
                return;
            }
        }
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_the_waiters_registered_before_it_and_the_entry_goes_with_them() {
        let w = Waiters::default();
        w.wake("cap_nobody");
        assert!(w.is_empty(), "a wake with no waiter registers nothing");
        let mut one = w.watch("cap_1");
        let mut two = w.watch("cap_1");
        let other = w.watch("cap_2");
        assert_eq!(w.len(), 2);
        w.wake("cap_1");
        // Both resolve now; neither waits on time.
        one.woken().await;
        two.woken().await;
        drop(one);
        assert_eq!(w.len(), 2, "cap_1 still has a waiter");
        drop(two);
        drop(other);
        assert!(w.is_empty());
    }
}
