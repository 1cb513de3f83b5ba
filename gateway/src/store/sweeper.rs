//! The background task that deletes expired `kv` rows every 30 seconds.

use std::time::Duration;

use tokio::sync::watch;

use super::Store;
use crate::clock::SharedClock;

const EVERY: Duration = Duration::from_secs(30);
const BATCH: i64 = 10_000;
const MAX_BATCHES: usize = 50;

/// Runs the sweeper until `stop` turns true.
pub fn spawn_sweeper(
    store: Store,
    clock: SharedClock,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = store.expire_reservations(clock.now()).await {
                tracing::debug!("reservation expiry skipped: {e}");
            }
            for _ in 0..MAX_BATCHES {
                match store.kv_sweep(clock.now(), BATCH).await {
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::debug!("kv sweep skipped: {e}");
                        break;
                    }
                }
            }
        }
    })
}
