//! Spend caps end to end: two gateways on one PostgreSQL, hundreds of concurrent requests from
//! twenty users against the Bedrock double. Recorded spend equals the upstream's usage times the
//! price table, to the micro-dollar, and no user ever passes the cap.

use std::str::FromStr;
use std::time::Duration;

use serde_json::json;
use testkit::{Behavior, FakeBedrock, Options, Reply};

use crate::support::gateway::{config_with, double_upstream, token, Gateway};
use crate::support::pg::shared;

const WRITE: &str = "write-key-0123456789abcdef0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_overshoot_and_every_cost_is_recorded() {
    // Each answer: 12 input and 200 output tokens of Sonnet 4.5 = 12 × 3 + 200 × 15 = 3,036 µ$.
    let opts = Options {
        default_behavior: Behavior::Reply(Reply::text("m", "a b c", 12, 200)),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let ups = double_upstream(&fake, &opts);
    let url = shared().new_db();
    let extra = format!("admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\n");
    let (u1, u2, x1, x2, p1, p2) = (
        url.clone(),
        url.clone(),
        extra.clone(),
        extra.clone(),
        ups.clone(),
        ups.clone(),
    );
    let a = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &u1, &p1, &x1), &[])
    })
    .await
    .unwrap();
    let b = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &u2, &p2, &x2), &[])
    })
    .await
    .unwrap();
    let c = crate::support::client();

    // Every user: at most one cent ($0.01 = 10,000 µ$) a day.
    crate::support::gateway::set_org_cap(a.port, WRITE, "1", "daily").await;

    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 300, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut tasks = Vec::new();
    for user in 0..20 {
        for i in 0..15 {
            let port = if (user + i) % 2 == 0 { a.port } else { b.port };
            let (c, body) = (c.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let r = c
                    .post(format!("http://127.0.0.1:{port}/v1/messages"))
                    .bearer_auth(token(&format!("user{user}"), &[]))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (user, status, text)
            }));
        }
    }
    let mut ok = [0i64; 20];
    let mut blocked = 0;
    for t in tasks {
        let (user, status, text) = t.await.unwrap();
        match status {
            200 => {
                assert!(text.contains("event: message_stop"), "complete stream");
                ok[user] += 1;
            }
            429 => {
                assert!(text.contains("billing_error"), "{text}");
                blocked += 1;
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert!(blocked > 0, "the cap was reached");
    assert_eq!(ok.iter().sum::<i64>() + blocked, 300);

    // Settlement is asynchronous: give it a moment, then compare with the meter.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
        2,
        Duration::from_secs(5),
    );
    let today =
        claude_gateway::spend::periods::Period::Daily.bucket(time::OffsetDateTime::now_utc());
    let mut total_settled = 0;
    for (user, n) in ok.iter().enumerate() {
        assert!(*n >= 1, "user{user} got nothing through");
        let t = store
            .totals(&format!("user{user}"), std::slice::from_ref(&today))
            .await
            .unwrap();
        assert_eq!(
            t[0].settled,
            n * 3_036,
            "user{user}: recorded spend = usage × price"
        );
        assert!(
            t[0].settled <= 10_000,
            "user{user} passed the cap: {}",
            t[0].settled
        );
        assert_eq!(t[0].reserved, 0, "user{user}: every reservation settled");
        total_settled += t[0].settled;
    }
    assert_eq!(total_settled, ok.iter().sum::<i64>() * 3_036);
    assert_eq!(
        fake.requests().len() as i64,
        ok.iter().sum::<i64>(),
        "blocked requests never reached Bedrock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reservation_covers_the_dearest_upstream_failover_may_reach() {
    let opts = Options {
        default_behavior: Behavior::Reply(Reply::text("m", "a b c", 12, 200)),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let up = |name: &str| {
        crate::support::gateway::bedrock_upstream(
            name,
            &fake.url(),
            &opts.access_key_id,
            &opts.secret_access_key,
        )
    };
    // A cap of one cent a day: 500 output tokens at Sonnet's list price (7,500 µ$) fit under it,
    // at the second upstream's contracted $100 per million tokens (50,000 µ$) they do not.
    let dear = "pricing:\n  overrides: [{upstream: dear, model: claude-sonnet-4-5, input: 100, output: 100, cache_read: 100, cache_write: 100}]\n";
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 500, "messages": [{"role": "user", "content": "hi"}]});
    // The same two upstreams, the second at list price and then at its contracted price: the
    // first always answers, but failover could reach the second.
    let upstreams = format!("{}\n{}", up("cheap"), up("dear"));
    for (pricing, expect) in [("", 200), (dear, 429)] {
        let (url, upstreams) = (shared().new_db(), upstreams.clone());
        let extra = format!("admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\n{pricing}");
        let gw = tokio::task::spawn_blocking(move || {
            Gateway::start(|port| config_with(port, &url, &upstreams, &extra), &[])
        })
        .await
        .unwrap();
        crate::support::gateway::set_org_cap(gw.port, WRITE, "1", "daily").await;
        let (status, text) = crate::support::gateway::post_messages(gw.port, "dev", &body).await;
        assert_eq!(status, expect, "{text}");
        if expect == 429 {
            assert!(text.contains("billing_error"), "{text}");
        }
    }
}
