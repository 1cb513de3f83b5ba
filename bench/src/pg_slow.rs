//! Spend caps against a distant PostgreSQL: the capped gateway, and an uncapped one for
//! comparison, each reaching PostgreSQL through its own [`pg_delay`] proxy that adds a fixed
//! delay to every round trip, with the round trips each request costs counted by the proxies.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::load::{self, Target, Workload};
use crate::pg_delay;
use crate::procs::Gateway;
use crate::stats::Summary;

/// The delay added to each round trip.
pub const DELAY: Duration = Duration::from_millis(1);
/// The pause after a sequential stream (and after a run) so what it sets off afterwards (its
/// settlement) is counted with it.
const SETTLE: Duration = Duration::from_millis(50);

/// Where the benchmark's PostgreSQL is, from its URL.
pub struct Pg {
    addr: SocketAddr,
    user: String,
    database: String,
    url: reqwest::Url,
}

impl Pg {
    /// Reads a `postgres://user@127.0.0.1:port/db` URL.
    pub fn parse(url: &str) -> Result<Pg, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("--postgres: {e}"))?;
        let addr = url
            .socket_addrs(|| Some(5432))
            .ok()
            .and_then(|a| a.first().copied())
            .ok_or("--postgres: no address")?;
        let user = match url.username() {
            "" => "postgres".to_owned(),
            u => u.to_owned(),
        };
        let database = match url.path().trim_start_matches('/') {
            "" => user.clone(),
            d => d.to_owned(),
        };
        Ok(Pg {
            addr,
            user,
            database,
            url,
        })
    }

    /// The same URL on another local port.
    fn via(&self, port: u16) -> String {
        let mut u = self.url.clone();
        let _ = u.set_port(Some(port));
        u.to_string()
    }
}

/// What the section measured.
pub struct Report {
    /// Median `SELECT 1` round trip, directly and through a proxy.
    pub select_direct: Duration,
    pub select_delayed: Duration,
    /// One stream at a time: direct, uncapped and capped through the delay.
    pub one_direct: Summary,
    pub one_plain: Summary,
    pub one_capped: Summary,
    /// Round trips per request, one stream at a time.
    pub plain_seq: Trips,
    pub capped_seq: Trips,
    /// 64 streams arriving together: direct, uncapped, capped.
    pub many_direct: Summary,
    pub many_plain: Summary,
    pub many_capped: Summary,
    /// Round trips per request at 64 streams.
    pub plain_many: f64,
    pub capped_many: f64,
}

/// Round trips of sequential streams.
pub struct Trips {
    /// Mean and most before a stream's first byte.
    pub before_mean: f64,
    pub before_max: u64,
    /// Mean and most between its first byte and its `message_delta` event.
    pub relay_mean: f64,
    pub relay_max: u64,
    /// Streams that saw any between their first byte and `message_delta`, and how many streams.
    pub relay_streams: usize,
    pub streams: usize,
    /// Mean over the whole run (settlement and anything in the background included).
    pub per_request: f64,
}

impl Trips {
    fn of(c: &load::Counted) -> Trips {
        let n = c.before_first_byte.len().max(1) as f64;
        Trips {
            before_mean: c.before_first_byte.iter().sum::<u64>() as f64 / n,
            before_max: c.before_first_byte.iter().copied().max().unwrap_or(0),
            relay_mean: c.relay.iter().sum::<u64>() as f64 / n,
            relay_max: c.relay.iter().copied().max().unwrap_or(0),
            relay_streams: c.relay.iter().filter(|r| **r > 0).count(),
            streams: c.relay.len(),
            per_request: c.total as f64 / n,
        }
    }
}

/// Runs the section: `cap` sets the caps through the capped gateway's Admin API.
pub async fn run<F, Fut>(
    bin: &str,
    upstream: &str,
    pg: &Pg,
    capped_extra: &str,
    rounds: usize,
    cap: F,
) -> Result<Report, String>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let to_capped = pg_delay::start(pg.addr, DELAY)?;
    let to_plain = pg_delay::start(pg.addr, DELAY)?;
    let select_direct = pg_delay::select_one(pg.addr, &pg.user, &pg.database, 200).await?;
    let proxy_addr = SocketAddr::from(([127, 0, 0, 1], to_plain.port));
    let select_delayed = pg_delay::select_one(proxy_addr, &pg.user, &pg.database, 200).await?;

    let capped = Gateway::start_with(bin, upstream, &pg.via(to_capped.port), capped_extra).await?;
    cap(capped.url.clone()).await?;
    let plain = Gateway::start(bin, upstream, &pg.via(to_plain.port)).await?;
    let direct = Target::direct(upstream);
    let (via_capped, via_plain) = (Target::gateway(&capped.url), Target::gateway(&plain.url));

    let one = Workload {
        concurrency: 1,
        rounds: 2,
        stream: true,
        spread: Duration::ZERO,
    };
    for t in [&direct, &via_plain, &via_capped] {
        load::streams(t, &one).await?;
    }
    let unseen = AtomicU64::new(0);
    let one_direct = load::counted(&direct, rounds, SETTLE, &unseen).await?;
    let plain_seq = load::counted(&via_plain, rounds, SETTLE, &to_plain.chunks).await?;
    let capped_seq = load::counted(&via_capped, rounds, SETTLE, &to_capped.chunks).await?;

    let many = Workload {
        concurrency: 64,
        rounds,
        stream: true,
        spread: Duration::ZERO,
    };
    for t in [&direct, &via_plain, &via_capped] {
        load::streams(t, &Workload { rounds: 2, ..many }).await?;
    }
    let many_direct = load::streams(&direct, &many).await?;
    let (many_plain, plain_many) = counted_run(&via_plain, &many, &to_plain.chunks).await?;
    let (many_capped, capped_many) = counted_run(&via_capped, &many, &to_capped.chunks).await?;
    Ok(Report {
        select_direct,
        select_delayed,
        one_direct: Summary::of(&one_direct.ttfb),
        one_plain: Summary::of(&plain_seq.ttfb),
        one_capped: Summary::of(&capped_seq.ttfb),
        plain_seq: Trips::of(&plain_seq),
        capped_seq: Trips::of(&capped_seq),
        many_direct: Summary::of(&many_direct.ttfb),
        many_plain: Summary::of(&many_plain.ttfb),
        many_capped: Summary::of(&many_capped.ttfb),
        plain_many,
        capped_many,
    })
}

/// A run, and the chunks counted per request from its start until [`SETTLE`] after its end.
async fn counted_run(
    t: &Target,
    w: &Workload,
    chunks: &AtomicU64,
) -> Result<(load::Run, f64), String> {
    let before = chunks.load(Ordering::SeqCst);
    let run = load::streams(t, w).await?;
    tokio::time::sleep(SETTLE).await;
    let n = run.ttfb.len().max(1) as f64;
    Ok((run, (chunks.load(Ordering::SeqCst) - before) as f64 / n))
}
