//! The background task that keeps the store tidy: every 30 seconds it deletes expired `kv` rows
//! and stream slots, releases expired spend reservations; every hour it enforces the retention
//! windows (spend, the admin and agent-access trails, AWS call recordings, call approvals and
//! call counts).

use std::time::Duration;

use tokio::sync::watch;

use super::Store;
use crate::clock::SharedClock;

const EVERY: Duration = Duration::from_secs(30);
const BATCH: i64 = 10_000;
const MAX_BATCHES: usize = 50;
/// Ticks between retention sweeps (one hour; the first tick sweeps at start).
const RETENTION_EVERY: u32 = 120;

/// The retention windows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    /// From `admin`: (spend months, audit days, identity days); none without the section.
    pub admin: Option<(u32, u32, u32)>,
    /// Days the agent-access trail and decided write requests are kept; none without
    /// `aws_access`.
    pub aws_days: Option<u32>,
    /// From `aws_access.proxy`: (days recordings and decided call approvals are kept, the
    /// rate-limit window in seconds); none without the section.
    pub aws_proxy: Option<(u32, u32)>,
}

/// Runs the sweeper until `stop` turns true.
pub fn spawn_sweeper(
    store: Store,
    clock: SharedClock,
    retention: Retention,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u32 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if ticks.is_multiple_of(RETENTION_EVERY) {
                let removed = retain(&store, &clock, &retention).await;
                // Always written (at info, the default level): the hourly line that tells an
                // operator's alarm a gateway is alive even when nobody uses it.
                tracing::info!("hourly housekeeping: {removed} rows past retention removed");
            }
            ticks = ticks.wrapping_add(1);
            if let Err(e) = store.expire_reservations(clock.now()).await {
                tracing::debug!("reservation expiry skipped: {e}");
            }
            if let Err(e) = store.sweep_stream_slots(clock.now(), BATCH).await {
                tracing::debug!("stream slot sweep skipped: {e}");
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

/// One retention pass over every trail that has a window; how many rows went. A failure is
/// logged and the rest still runs.
async fn retain(store: &Store, clock: &SharedClock, retention: &Retention) -> u64 {
    let mut removed = 0;
    if let Some((months, audit, identity)) = retention.admin {
        match store.retention(clock.now(), months, audit, identity).await {
            Ok(n) => removed += n,
            Err(e) => tracing::warn!("retention sweep failed: {e}"),
        }
    }
    if let Some(days) = retention.aws_days {
        match store.aws_retention(clock.now(), days).await {
            Ok(n) => removed += n,
            Err(e) => tracing::warn!("agent access retention failed: {e}"),
        }
    }
    if let Some((days, window)) = retention.aws_proxy {
        match store.aws_proxy_retention(clock.now(), days, window).await {
            Ok(n) => removed += n,
            Err(e) => tracing::warn!("AWS call recording retention failed: {e}"),
        }
    }
    removed
}
