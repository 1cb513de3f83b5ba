//! Spend through a PostgreSQL outage: fail-open keeps serving and the spend of every request served
//! meanwhile is written once the store is back; fail-closed refuses while it cannot check.

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{Behavior, FakeBedrock, Options, Reply};

use crate::support::gateway::{config_with, double_upstream, token, Gateway};
use crate::support::pg::Cluster;

const WRITE: &str = "write-key-0123456789abcdef0123456789";

async fn setup(pg: &Cluster, fail_closed: bool) -> (FakeBedrock, Gateway, String) {
    setup_with(pg, fail_closed, "").await
}

async fn setup_with(pg: &Cluster, fail_closed: bool, more: &str) -> (FakeBedrock, Gateway, String) {
    let opts = Options {
        default_behavior: Behavior::Reply(Reply::text("m", "a b", 10, 100)),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let ups = double_upstream(&fake, &opts);
    let url = pg.new_db();
    let extra = format!("admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\nenforcement: {{fail_closed_on_error: {fail_closed}}}\n{more}");
    let u = url.clone();
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(
            |port| config_with(port, &u, &ups, &extra),
            &[("CLAUDE_GATEWAY_LOG_LEVEL", "debug")],
        )
    })
    .await
    .unwrap();
    crate::support::gateway::set_org_cap(gw.port, WRITE, "100000", "monthly").await;
    (fake, gw, url)
}

async fn ask(port: u16) -> (u16, String) {
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 200, "messages": [{"role": "user", "content": "hi"}]});
    crate::support::gateway::post_messages(port, "dev", &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_serves_and_loses_no_spend() {
    let pg = Cluster::start();
    let (_fake, gw, url) = setup(&pg, false).await;
    // 10 input + 100 output tokens of Sonnet 4.5 = 30 + 1,500 = 1,530 µ$ each.
    assert_eq!(ask(gw.port).await.0, 200);
    pg.pg_stop();
    for _ in 0..3 {
        let (status, text) = ask(gw.port).await;
        assert_eq!(status, 200, "fail-open serves during the outage: {text}");
    }
    pg.pg_start();
    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
        1,
        Duration::from_secs(5),
    );
    let month =
        claude_gateway::spend::periods::Period::Monthly.bucket(time::OffsetDateTime::now_utc());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut settled = 0;
    while Instant::now() < deadline {
        if let Ok(t) = store.totals("dev", std::slice::from_ref(&month)).await {
            settled = t[0].settled;
            if settled == 4 * 1_530 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        settled,
        4 * 1_530,
        "every request served during the outage was billed once\n{}",
        gw.stderr()
    );
    assert!(
        gw.stderr().contains("held until the store answers"),
        "{}",
        gw.stderr()
    );
    let (cost, requests): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(cost_micros), 0)::bigint, coalesce(sum(requests), 0)::bigint FROM cost_daily",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        (cost, requests),
        (4 * 1_530, 4),
        "finance's cost report has the requests settled after the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contention_refuses_instead_of_admitting_unchecked_and_orphans_nothing() {
    let pg = Cluster::start();
    let (fake, gw, url) = setup_with(&pg, false, "timeouts: {spend_check_ms: 500}\n").await;
    assert_eq!(ask(gw.port).await.0, 200, "the spend rows exist");
    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
        1,
        Duration::from_secs(5),
    );
    // Another transaction holds the user's spend rows: the store is up, but admission must wait.
    let mut blocker = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM spend WHERE principal = 'dev' FOR UPDATE")
        .fetch_all(&mut *blocker)
        .await
        .unwrap();
    let (status, text) = ask(gw.port).await;
    assert_eq!(status, 529, "busy, not admitted unchecked: {text}");
    assert!(text.contains("overloaded_error"), "{text}");
    assert_eq!(
        fake.requests().len(),
        1,
        "nothing unchecked reached Bedrock"
    );
    // The reservation commits once the rows are free; nobody waits for it, so it is released.
    blocker.rollback().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gw
        .stderr()
        .contains("committed after its request stopped waiting")
    {
        assert!(
            Instant::now() < deadline,
            "the late reservation was seen\n{}",
            gw.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut left: (i64, i64) = (-1, -1);
    while Instant::now() < deadline {
        left = sqlx::query_as(
            "SELECT (SELECT count(*) FROM reservations), (SELECT coalesce(sum(reserved_micros), 0)::bigint FROM spend)",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if left == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, (0, 0), "no reservation orphaned\n{}", gw.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_while_the_store_is_down() {
    let pg = Cluster::start();
    let (fake, gw, _url) = setup(&pg, true).await;
    assert_eq!(ask(gw.port).await.0, 200);
    pg.pg_stop();
    // Cached caps last 5 s: wait them out so admission has to ask the store.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, text) = ask(gw.port).await;
    assert_eq!(status, 429, "{text}");
    assert!(
        text.contains("billing_error") && text.contains("spend limit unavailable"),
        "{text}"
    );
    assert_eq!(
        fake.requests().len(),
        1,
        "nothing reached Bedrock while enforcement was blind"
    );
    pg.pg_start();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_without_an_outage() {
    let pg = Cluster::start();
    let (_fake, gw, url) = setup(&pg, false).await;
    for _ in 0..4 {
        assert_eq!(ask(gw.port).await.0, 200);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
        1,
        Duration::from_secs(5),
    );
    let all: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT bucket, settled_micros, reserved_micros FROM spend ORDER BY bucket")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(all[1].1, 4 * 1_530, "{all:?}\n{}", gw.stderr());
    assert_eq!(all[1].2, 0, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_stream_leaves_only_an_expiring_reservation() {
    use futures_util::StreamExt;
    let pg = Cluster::start();
    let mut reply = Reply::text("m", "one two three four five six seven eight", 10, 100);
    reply.delay_between = Duration::from_millis(300);
    let opts = Options {
        default_behavior: Behavior::Reply(reply),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let ups = double_upstream(&fake, &opts);
    let url = pg.new_db();
    let extra = format!("admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\n");
    let u = url.clone();
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &u, &ups, &extra), &[])
    })
    .await
    .unwrap();
    let c = crate::support::client();
    c.post(format!(
        "http://127.0.0.1:{}/v1/organizations/spend_limits",
        gw.port
    ))
    .header("x-api-key", WRITE)
    .json(&json!({"scope": {"type": "organization"}, "amount": "100000", "period": "monthly"}))
    .send()
    .await
    .unwrap();
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 200, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let res = c
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("dev", &[]))
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut stream = res.bytes_stream();
    stream.next().await.unwrap().unwrap();
    gw.signal("KILL");
    while stream.next().await.is_some() {}

    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
        1,
        Duration::from_secs(5),
    );
    let month =
        claude_gateway::spend::periods::Period::Monthly.bucket(time::OffsetDateTime::now_utc());
    let t = store
        .totals("dev", std::slice::from_ref(&month))
        .await
        .unwrap();
    assert!(
        t[0].reserved > 0,
        "the dead gateway's reservation is still held"
    );
    assert_eq!(
        t[0].settled, 0,
        "nothing was billed for the unfinished request"
    );
    // The sweeper of any replica releases it once it expires.
    let later = time::OffsetDateTime::now_utc()
        + claude_gateway::spend::admission::RESERVATION_TTL
        + time::Duration::minutes(1);
    assert_eq!(store.expire_reservations(later).await.unwrap(), 3);
    let t = store
        .totals("dev", std::slice::from_ref(&month))
        .await
        .unwrap();
    assert_eq!(
        (t[0].reserved, t[0].settled),
        (0, 0),
        "released, and billed nothing twice"
    );
    assert_eq!(
        store.expire_reservations(later).await.unwrap(),
        0,
        "released once"
    );
}
