//! The lease lane: a few connections of the store's own, outside the pool, for the one statement
//! that can sit before a request's first byte (a lease grow).
//!
//! Through the pool that statement would cost more than its own round trip: the pool checks a
//! connection idle for a second before lending it, lends its longest-idle connection first, and
//! checks every connection it takes back. Here the most recently used connection is lent first,
//! nothing is checked, and each connection has the lane's statements prepared when it opens. A
//! connection that fails with a connection error is dropped, with every idle one (a restarted
//! database has ended them all), and the statement is tried once more on a new connection. A
//! statement tried twice may have run twice: a lease grow then granted twice, the lease holds
//! more than it asked for and gives all of it back when idle, so no cap is overshot.

use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgRow};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Executor, PgConnection, Postgres};
use tokio::sync::Semaphore;

/// How many of `max_connections` the lane keeps; the pool gets the rest.
pub fn share(max_connections: u32) -> u32 {
    (max_connections / 4).clamp(1, 8)
}

/// Connections for a few hot statements, most recently used first.
#[derive(Debug)]
pub struct Lane {
    options: PgConnectOptions,
    /// Statements prepared on every connection as it opens.
    prepare: &'static [&'static str],
    idle: Mutex<Vec<PgConnection>>,
    in_use: Semaphore,
    /// The longest wait for a turn, and for a new connection.
    connect_within: Duration,
}

impl Lane {
    /// A lane of at most `size` connections to `options`; none is opened until needed.
    pub fn new(
        options: PgConnectOptions,
        size: u32,
        connect_within: Duration,
        prepare: &'static [&'static str],
    ) -> Self {
        Self {
            options,
            prepare,
            idle: Mutex::new(Vec::new()),
            in_use: Semaphore::new(size.max(1) as usize),
            connect_within,
        }
    }

    /// Opens one connection ahead of the first statement, unless one is open already.
    pub async fn warm(&self) -> Result<(), sqlx::Error> {
        let _turn = self.turn().await?;
        if self.idle.lock().map(|i| i.is_empty()).unwrap_or(false) {
            let conn = self.open().await?;
            self.put(conn);
        }
        Ok(())
    }

    /// Waits until one of the lane's connections is free for the caller, as long as the pool
    /// waits for one of its own: past that, the store is too slow to answer and waiters must not
    /// pile up behind it.
    pub async fn turn(&self) -> Result<Turn<'_>, sqlx::Error> {
        match tokio::time::timeout(self.connect_within, self.in_use.acquire()).await {
            Ok(Ok(permit)) => Ok(Turn {
                lane: self,
                _permit: permit,
            }),
            Ok(Err(_)) => Err(sqlx::Error::PoolClosed),
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }

    fn take(&self) -> Option<PgConnection> {
        self.idle.lock().ok().and_then(|mut i| i.pop())
    }

    fn put(&self, conn: PgConnection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    async fn open(&self) -> Result<PgConnection, sqlx::Error> {
        let mut conn = tokio::time::timeout(self.connect_within, self.options.connect())
            .await
            .map_err(|_| {
                sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting to the store timed out",
                ))
            })??;
        for sql in self.prepare {
            conn.prepare(sql).await?;
        }
        Ok(conn)
    }
}

/// The right to use one of the lane's connections.
#[derive(Debug)]
pub struct Turn<'a> {
    lane: &'a Lane,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Turn<'_> {
    /// Runs the query `build` makes and returns its rows, on the most recently used connection;
    /// once more on a new connection when that one turns out broken.
    pub async fn fetch_all<'q>(
        &self,
        build: impl Fn() -> Query<'q, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        let lane = self.lane;
        let mut retried = false;
        loop {
            let mut conn = match lane.take() {
                Some(c) => c,
                None => lane.open().await?,
            };
            match build().fetch_all(&mut conn).await {
                Ok(rows) => {
                    lane.put(conn);
                    return Ok(rows);
                }
                Err(e) if broken(&e) => {
                    // Dropping closes it; the idle ones are likely gone the same way.
                    drop(conn);
                    if let Ok(mut idle) = lane.idle.lock() {
                        idle.clear();
                    }
                    if retried {
                        return Err(e);
                    }
                    retried = true;
                }
                Err(e) => {
                    lane.put(conn);
                    return Err(e);
                }
            }
        }
    }
}

/// Whether an error means the connection is unusable (rather than the statement refused).
fn broken(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        // Connection exceptions, and the server shutting down or restarting.
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_is_waited_for_no_longer_than_a_connection() {
        let lane = Lane::new(PgConnectOptions::new(), 1, Duration::from_millis(50), &[]);
        let held = lane.turn().await.unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(lane.turn().await, Err(sqlx::Error::PoolTimedOut)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(held);
        assert!(lane.turn().await.is_ok());
    }
}
