//! The gateway's stop, in phases any part can watch: running; draining (no new connections, open
//! requests may finish); cut (the drain window is over: open streams end with an in-band error, so
//! each is settled before the store closes).

use std::sync::Arc;

use tokio::sync::watch;

/// Where the stop has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Serving.
    Running,
    /// Refusing new connections; open requests finish.
    Draining,
    /// Ending whatever is still open.
    Cut,
}

/// The shared phase; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<Phase>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Running.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(Phase::Running)),
        }
    }

    /// Moves to `phase` (never back).
    pub fn advance(&self, phase: Phase) {
        self.tx.send_if_modified(|p| {
            let later = phase > *p;
            if later {
                *p = phase;
            }
            later
        });
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.tx.borrow()
    }

    /// Resolves once the phase is at least `phase`.
    pub async fn reached(&self, phase: Phase) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the wait cannot fail for want of one.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_move_forward_and_waiters_wake() {
        let s = Shutdown::new();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.reached(Phase::Cut).await }
        });
        s.advance(Phase::Draining);
        assert_eq!(s.phase(), Phase::Draining);
        assert!(!waiter.is_finished());
        s.advance(Phase::Cut);
        waiter.await.unwrap();
        s.advance(Phase::Running);
        assert_eq!(s.phase(), Phase::Cut, "never back");
    }
}
