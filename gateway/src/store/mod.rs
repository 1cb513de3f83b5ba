//! PostgreSQL, the gateway's only shared state. Every SQL statement lives under this module; the
//! rest of the gateway calls typed methods.

pub mod aws_access;
pub mod aws_proxy;
mod connect;
mod kv;
mod lane;
pub mod leases;
pub mod readiness;
pub mod slots;
pub mod spend;
mod sweeper;

pub use connect::{connect_options, ConnectError};
pub use sweeper::{spawn_sweeper, Retention};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The moment `days` days before `now`, or `None` when that lies before any time the gateway can
/// hold (a retention of millennia keeps everything rather than failing the sweep).
pub(crate) fn days_before(now: time::OffsetDateTime, days: i64) -> Option<time::OffsetDateTime> {
    now.checked_sub(time::Duration::days(days))
}

/// Advisory lock key held while migrations run, so replicas booting together take turns.
const MIGRATION_LOCK: i64 = 0x636c_6177_6467_7731; // "clawdgw1"

/// Errors talking to the store. Callers see the kind, never SQL text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer or refused the statement.
    #[error("store unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A handle on the store: a connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    /// Connections for the lease grow, outside the pool (see `lane`).
    lane: Arc<lane::Lane>,
    /// Lease grows waiting for the lane.
    grows: Arc<leases::Waiting>,
    probe: Arc<Mutex<Option<(Instant, bool)>>>,
}

/// A pooled connection idle this long is pinged before it is lent.
const PING_IDLE: Duration = Duration::from_secs(1);

/// How long a reachability probe's answer is reused.
const PROBE_TTL: Duration = Duration::from_secs(1);

impl Store {
    /// A pool for `options`; no connection is opened until one is needed. Of `max_connections`,
    /// a quarter (one to eight) is kept for the lease grow, the rest pooled.
    pub fn lazy(options: PgConnectOptions, max_connections: u32, timeout: Duration) -> Self {
        let share = lane::share(max_connections);
        let lane = lane::Lane::new(
            options.clone(),
            share,
            timeout,
            &[leases::GROW_SQL, leases::GROW_MANY_SQL],
        );
        let pooled = max_connections.saturating_sub(share).max(1);
        let pool = PgPoolOptions::new()
            .max_connections(pooled)
            .min_connections(0)
            .acquire_timeout(timeout)
            .idle_timeout(Duration::from_secs(300))
            // A connection back in use within a second is not pinged first: under load that
            // would be a round trip before every statement. One idle longer is (a restarted
            // database is found by the ping, not by a request).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        Self {
            pool,
            lane: Arc::new(lane),
            grows: Arc::default(),
            probe: Arc::new(Mutex::new(None)),
        }
    }

    /// Opens the first connection, trying `attempts` times `pause` apart: a database that is still
    /// starting gets a moment before the gateway gives up.
    pub async fn connect(
        options: PgConnectOptions,
        max_connections: u32,
        timeout: Duration,
        attempts: u32,
        pause: Duration,
    ) -> Result<Self, StoreError> {
        let store = Self::lazy(options, max_connections, timeout);
        let mut attempt = 1;
        loop {
            match store.ping().await {
                Ok(()) => return Ok(store),
                Err(e) if attempt >= attempts => return Err(e),
                Err(e) => {
                    tracing::warn!(
                        "could not connect to Postgres at boot, attempt {attempt} of {attempts}: {e}"
                    );
                    attempt += 1;
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Whether the database accepts a new connection within `within`, tried outside the pool (so
    /// a saturated pool does not look like an outage); the answer is reused for a second.
    pub async fn reachable(&self, within: Duration) -> bool {
        if let Ok(p) = self.probe.lock() {
            if let Some((at, up)) = *p {
                if at.elapsed() < PROBE_TTL {
                    return up;
                }
            }
        }
        let options = self.pool.connect_options();
        let up = match tokio::time::timeout(within, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                true
            }
            _ => false,
        };
        if let Ok(mut p) = self.probe.lock() {
            *p = Some((Instant::now(), up));
        }
        up
    }

    /// Applies pending migrations. Replicas serialize on an advisory lock held on one connection,
    /// so two gateways booting on an empty database both come up. Waiting for the lock and the
    /// migrations themselves are exempt from the statement timeout (a migration may rewrite a
    /// large table); the connection gets its configured timeout back before it returns to the
    /// pool.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SET statement_timeout = 0")
            .execute(&mut *conn)
            .await?;
        let locked = sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
        let result = match locked {
            Ok(_) => {
                let migrated = sqlx::migrate!("./migrations").run(&mut *conn).await;
                let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *conn)
                    .await;
                migrated
                    .map_err(StoreError::from)
                    .and(unlock.map(|_| ()).map_err(StoreError::from))
            }
            Err(e) => Err(StoreError::from(e)),
        };
        let reset = sqlx::query("RESET statement_timeout")
            .execute(&mut *conn)
            .await;
        if reset.is_err() {
            // Never hand an unbounded connection back to the pool.
            conn.detach();
        }
        result?;
        reset?;
        Ok(())
    }

    /// Opens a lease-grow connection ahead of the first request that needs one.
    pub async fn warm_leases(&self) -> Result<(), StoreError> {
        Ok(self.lane.warm().await?)
    }

    /// One round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The pool, for tests that inspect the database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
