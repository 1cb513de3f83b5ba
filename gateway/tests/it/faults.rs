//! Fault injection: replicas on one PostgreSQL under a steady load of streams, while one replica
//! is stopped, the store restarts, the upstream misbehaves, or the IdP goes down. Each test states
//! what the users see, checks that every request served is billed exactly once, and that nothing
//! leaks: no reservation or stream slot left, file descriptors and memory back near their
//! baseline. The IdP's signing-key rotation is in `signin_faults`.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use testkit::{Behavior, FakeBedrock, Options, Reply};

use crate::support::gateway::{config_with, double_upstream, token, Gateway};
use crate::support::pg::Cluster;

const WRITE: &str = "write-key-0123456789abcdef0123456789";
const USERS: usize = 4;

/// How one request ended, as its user saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// The whole answer.
    Completed,
    /// An in-band error event ended the stream (its `error.type`).
    InBand(String),
    /// A refusal before the stream (its status).
    Status(u16),
    /// No answer: the connection was refused or closed before a response.
    NoAnswer,
    /// The body broke off without an error event.
    Broken,
}

struct Stack {
    fake: Arc<FakeBedrock>,
    a: Gateway,
    b: Gateway,
    store: claude_gateway::store::Store,
}

async fn stack(pg: &Cluster, reply: Reply, drain_ms: u64) -> Stack {
    let opts = Options {
        default_behavior: Behavior::Reply(reply),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let ups = double_upstream(&fake, &opts);
    let url = pg.new_db();
    let extra = format!(
        "admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\nmanaged:\n  policies:\n    - match: {{}}\n      cli: {{env: {{A: '1'}}}}\n      rate_limits:\n        user: {{concurrent_streams: 3}}\n"
    );
    let drain = drain_ms.to_string();
    let start = |url: String, ups: String, extra: String, drain: String| {
        tokio::task::spawn_blocking(move || {
            Gateway::start(
                |port| config_with(port, &url, &ups, &extra),
                &[("CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS", drain.as_str())],
            )
        })
    };
    let a = start(url.clone(), ups.clone(), extra.clone(), drain.clone())
        .await
        .unwrap();
    let b = start(url.clone(), ups, extra, drain).await.unwrap();
    crate::support::gateway::set_org_cap(a.port, WRITE, "100000", "monthly").await;
    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
        2,
        Duration::from_secs(5),
    );
    let fake = Arc::new(fake);
    Stack { fake, a, b, store }
}

/// One streamed request as user `sub`, read to its end (slowly when `slow`).
async fn stream_once(c: &reqwest::Client, port: u16, sub: &str, slow: bool) -> Seen {
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 500, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let res = match c
        .post(format!("http://127.0.0.1:{port}/v1/messages"))
        .bearer_auth(token(sub, &[]))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => return Seen::NoAnswer,
    };
    if res.status() != 200 {
        return Seen::Status(res.status().as_u16());
    }
    let mut text = String::new();
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Err(_) => return Seen::Broken,
        }
        if slow {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    if text.contains("event: message_stop") {
        return Seen::Completed;
    }
    match text.rsplit("event: error\ndata: ").next() {
        Some(data) if text.contains("event: error") => {
            let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap_or_default();
            Seen::InBand(v["error"]["type"].as_str().unwrap_or("?").to_owned())
        }
        _ => Seen::Broken,
    }
}

/// A steady load: `USERS` users, each streaming one request after another, alternating replicas
/// (and moving to the other one when a replica does not answer), until `stop`.
fn load(ports: [u16; 2], stop: Arc<AtomicBool>, slow: bool) -> tokio::task::JoinHandle<Vec<Seen>> {
    tokio::spawn(async move {
        let users = (0..USERS).map(|u| {
            let stop = stop.clone();
            async move {
                let c = crate::support::client();
                let mut seen = Vec::new();
                let mut turn = u;
                let deadline = Instant::now() + Duration::from_secs(90);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && seen.len() < 500
                {
                    let s =
                        stream_once(&c, ports[turn % 2], &format!("user{u}"), slow && u == 0).await;
                    turn += 1;
                    seen.push(s);
                }
                seen
            }
        });
        futures_util::future::join_all(users)
            .await
            .into_iter()
            .flatten()
            .collect()
    })
}

async fn scalar(store: &claude_gateway::store::Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Waits until every served request is settled, then checks nothing is left held: one settlement
/// per request served (a stream that got its head), one finance row per request, and no
/// reservation or stream slot left.
async fn assert_billed_once(
    store: &claude_gateway::store::Store,
    served: i64,
    logs: &dyn Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut counted = -1;
    while Instant::now() < deadline {
        counted = sqlx::query_scalar("SELECT coalesce(sum(requests), 0)::bigint FROM cost_daily")
            .fetch_one(store.pool())
            .await
            .unwrap_or(-1);
        if counted >= served {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        counted,
        served,
        "one finance row per request served\n{}",
        logs()
    );
    let settled = scalar(
        store,
        "SELECT coalesce(sum(settled_micros), 0)::bigint FROM spend WHERE bucket LIKE 'm:%'",
    )
    .await;
    let costs = scalar(
        store,
        "SELECT coalesce(sum(cost_micros), 0)::bigint FROM cost_daily",
    )
    .await;
    assert_eq!(settled, costs, "the caps and finance agree on the cost");
    assert!(settled > 0);
    assert_eq!(
        scalar(store, "SELECT count(*) FROM reservations").await,
        0,
        "no reservation left\n{}",
        logs()
    );
    assert_eq!(
        scalar(
            store,
            "SELECT coalesce(sum(reserved_micros), 0)::bigint FROM spend"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(store, "SELECT count(*) FROM stream_slots").await,
        0,
        "no stream slot left\n{}",
        logs()
    );
}

fn fds(gw: &Gateway) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", gw.pid()))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn served(seen: &[Seen]) -> i64 {
    seen.iter()
        .filter(|s| matches!(s, Seen::Completed | Seen::InBand(_) | Seen::Broken))
        .count() as i64
}

/// Runs the load until `n` more requests have ended.
async fn until_more(stop: &AtomicBool, fake: &FakeBedrock, n: usize) {
    let start = fake.requests().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.requests().len() < start + n
        && Instant::now() < deadline
        && !stop.load(Ordering::Relaxed)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn paced(words: usize, between_ms: u64) -> Reply {
    Reply::text("m", &vec!["word"; words].join(" "), 10, words as u64)
        .with_delays(Duration::ZERO, Duration::from_millis(between_ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_one_replica_under_load() {
    // Streams of 3 s; the stopped replica drains for 1 s, so some of its streams are cut.
    let pg = Cluster::start();
    let mut s = stack(&pg, paced(30, 100), 1000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let running = load([s.a.port, s.b.port], stop.clone(), false);
    until_more(&stop, &s.fake, 8).await;
    s.a.signal("TERM");
    let code = tokio::task::block_in_place(|| s.a.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, Some(0), "{}", s.a.stderr());
    until_more(&stop, &s.fake, 6).await;
    stop.store(true, Ordering::Relaxed);
    let seen = running.await.unwrap();

    // What users saw: whole answers, streams cut in-band with a retryable error, and refused
    // connections to the stopped replica; never a broken stream or a server error.
    assert!(seen.contains(&Seen::Completed));
    assert!(
        seen.contains(&Seen::InBand("overloaded_error".into())),
        "a stream open at the cut is told in-band: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|s| matches!(s, Seen::Completed | Seen::InBand(_) | Seen::NoAnswer)),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|s| matches!(s, Seen::InBand(k) if k != "overloaded_error")),
        "{seen:?}"
    );
    assert!(
        s.a.stderr()
            .contains("every request's spend and rate-limit accounting is written"),
        "{}",
        s.a.stderr()
    );
    let logs = || format!("{}\n---\n{}", s.a.stderr(), s.b.stderr());
    assert_billed_once(&s.store, served(&seen), &logs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_under_load() {
    let pg = Cluster::start();
    let s = stack(&pg, paced(10, 50), 25_000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let running = load([s.a.port, s.b.port], stop.clone(), false);
    until_more(&stop, &s.fake, 8).await;
    pg.pg_stop();
    // Fail-open (the default): users keep getting answers while the store is down.
    until_more(&stop, &s.fake, 8).await;
    pg.pg_start();
    until_more(&stop, &s.fake, 8).await;
    stop.store(true, Ordering::Relaxed);
    let seen = running.await.unwrap();
    assert!(
        seen.iter().all(|x| matches!(x, Seen::Completed)),
        "every user got whole answers through the restart: {seen:?}"
    );
    let logs = || format!("{}\n---\n{}", s.a.stderr(), s.b.stderr());
    assert_billed_once(&s.store, served(&seen), &logs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_under_load_leak_nothing() {
    let pg = Cluster::start();
    let s = stack(&pg, paced(10, 20), 25_000).await;
    // Warm up, then take the baseline.
    let stop = Arc::new(AtomicBool::new(false));
    let warm = load([s.a.port, s.b.port], stop.clone(), false);
    until_more(&stop, &s.fake, 8).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = warm.await.unwrap();
    let (fd_a, rss_a) = (fds(&s.a), s.a.rss_kib());

    // Resets mid-stream, a storm of 5xx and throttles, with one user reading slowly.
    let stop = Arc::new(AtomicBool::new(false));
    let running = load([s.a.port, s.b.port], stop.clone(), true);
    for i in 0..30 {
        s.fake.push(match i % 3 {
            0 => Behavior::exception_after(3, "internalServerException", "reset"),
            1 => Behavior::error(500, "InternalServerException", "storm"),
            _ => Behavior::error(503, "ServiceUnavailableException", "storm"),
        });
    }
    until_more(&stop, &s.fake, 40).await;
    stop.store(true, Ordering::Relaxed);
    seen.extend(running.await.unwrap());

    // Users saw whole answers, in-band errors for streams broken upstream, and 5xx refusals for
    // the storm; never a stream that broke off without an error event.
    assert!(seen.contains(&Seen::Completed));
    assert!(
        seen.iter().any(|x| matches!(x, Seen::InBand(_))),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|x| matches!(x, Seen::Status(500..=599))),
        "{seen:?}"
    );
    assert!(!seen.contains(&Seen::Broken), "{seen:?}");
    assert!(!seen.contains(&Seen::NoAnswer), "{seen:?}");
    let logs = || format!("{}\n---\n{}", s.a.stderr(), s.b.stderr());
    assert_billed_once(&s.store, served(&seen), &logs).await;
    // Nothing leaks: descriptors and memory back near the baseline.
    assert!(
        fds(&s.a) <= fd_a + 8,
        "descriptors: {} after, {fd_a} before",
        fds(&s.a)
    );
    assert!(
        s.a.rss_kib() < rss_a + 16 * 1024,
        "memory: {} KiB after, {rss_a} KiB before",
        s.a.rss_kib()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idp_goes_down_under_load() {
    use crate::support::gateway::{config_oidc, oidc_for};
    use crate::support::idp::{Idp, IdpOptions, TestUser};

    let opts = Options {
        default_behavior: Behavior::Reply(paced(10, 20)),
        ..Options::default()
    };
    let fake = Arc::new(FakeBedrock::start(opts.clone()).await.unwrap());
    let ups = double_upstream(&fake, &opts);
    let port = crate::support::pg::free_port();
    let mut idp = tokio::task::block_in_place(|| {
        Idp::start_with(
            &[TestUser::new("alice")],
            &[&format!("http://127.0.0.1:{port}/oauth/callback")],
            IdpOptions::default(),
        )
    });
    let url = crate::support::pg::shared().new_db();
    let yaml = config_oidc(
        port,
        &url,
        &ups,
        &oidc_for(&idp, "client_secret_basic"),
        &format!("admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\n"),
    );
    let gw = tokio::task::block_in_place(|| {
        let gw = Gateway::spawn(&yaml, port, &[]);
        gw.wait_healthy(Duration::from_secs(30));
        gw
    });
    crate::support::gateway::set_org_cap(gw.port, WRITE, "100000", "monthly").await;
    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
        2,
        Duration::from_secs(5),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let running = load([gw.port, gw.port], stop.clone(), false);
    until_more(&stop, &fake, 8).await;
    let fd_before = fds(&gw);
    tokio::task::block_in_place(|| idp.stop());
    // Signed-in developers keep working: their sessions are the gateway's own tokens.
    until_more(&stop, &fake, 12).await;
    // A refresh while the IdP is down is a passing problem: the client keeps its refresh token.
    let r = crate::support::client()
        .post(format!("http://127.0.0.1:{port}/oauth/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "abc")])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    stop.store(true, Ordering::Relaxed);
    let seen = running.await.unwrap();
    assert!(
        seen.iter().all(|x| matches!(x, Seen::Completed)),
        "every signed-in request was answered whole: {seen:?}"
    );
    let logs = || gw.stderr();
    assert_billed_once(&store, served(&seen), &logs).await;
    assert!(
        fds(&gw) <= fd_before + 8,
        "descriptors: {} after, {fd_before} before",
        fds(&gw)
    );
}
