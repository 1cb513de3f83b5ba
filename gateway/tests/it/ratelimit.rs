//! Inference rate limits across replicas: counted in PostgreSQL, per user and shared per policy,
//! with a stricter tier for requests that offer write-capable tools.

use serde_json::{json, Value};

use crate::support::gateway::{config, double_upstream, token, Gateway};
use crate::support::pg::shared;

const LIMITS: &str = "managed:
  policies:
    - match: {}
      cli: {env: {A: '1'}}
      rate_limits:
        user: {requests_per_minute: 3}
        write_tools: {requests_per_minute: 1}
        group: {requests_per_minute: 3}
";

fn request(tools: bool) -> Value {
    let mut b = json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    if tools {
        b["tools"] = json!([{"name": "Bash", "input_schema": {"type": "object"}}]);
    }
    b
}

async fn post(port: u16, sub: &str, tools: bool) -> (u16, Option<String>, Value) {
    let r = crate::support::client()
        .post(format!("http://127.0.0.1:{port}/v1/messages"))
        .bearer_auth(token(sub, &[]))
        .json(&request(tools))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_per_user_per_group_and_across_replicas() {
    // Two gateways on one database: the counters are shared.
    let url = shared().new_db();
    let (u1, u2) = (url.clone(), url.clone());
    let a =
        tokio::task::spawn_blocking(move || Gateway::start(|port| config(port, &u1, LIMITS), &[]))
            .await
            .unwrap();
    let b =
        tokio::task::spawn_blocking(move || Gateway::start(|port| config(port, &u2, LIMITS), &[]))
            .await
            .unwrap();

    // dev1: one write-tool request allowed, the second refused by the write tier.
    assert_ne!(post(a.port, "dev1", true).await.0, 429);
    let (status, retry, body) = post(b.port, "dev1", true).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("requests_per_minute"));
    assert!(retry.unwrap().parse::<u64>().unwrap() <= 60);

    // dev1 plain requests: 3 per minute in all, whichever replica (the refused one counted too).
    assert_ne!(post(b.port, "dev1", false).await.0, 429);
    assert_eq!(
        post(a.port, "dev1", false).await.0,
        429,
        "the fourth request of the minute"
    );

    // The policy's shared budget of 3 (requests that passed the per-user limits): dev2 gets the third.
    assert_ne!(post(a.port, "dev2", false).await.0, 429);
    assert_eq!(
        post(b.port, "dev2", false).await.0,
        429,
        "the group budget is shared by everyone the policy matches"
    );
    assert!(
        a.stdout().contains("\"evt\":\"ratelimit.blocked\"")
            || b.stdout().contains("\"evt\":\"ratelimit.blocked\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_and_tokens_per_minute_are_limited() {
    use crate::support::gateway::config_with;
    use futures_util::StreamExt;
    use testkit::{Behavior, FakeBedrock, Options, Reply};
    // Slow streams (10 tokens of output each), two at a time, 25 tokens a minute.
    let mut reply = Reply::text("m", "a b c d e f", 5, 10);
    reply.delay_between = std::time::Duration::from_millis(150);
    let opts = Options {
        default_behavior: Behavior::Reply(reply),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let ups = double_upstream(&fake, &opts);
    let url = shared().new_db();
    let limits = "managed:\n  policies:\n    - match: {}\n      cli: {env: {A: '1'}}\n      rate_limits:\n        user: {concurrent_streams: 2, tokens_per_minute: 25}\n";
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &url, &ups, limits), &[])
    })
    .await
    .unwrap();
    let c = crate::support::client();
    let stream_req = || {
        let mut b = request(false);
        b["stream"] = true.into();
        c.post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
            .bearer_auth(token("s1", &[]))
            .json(&b)
            .send()
    };
    let first = stream_req().await.unwrap();
    let second = stream_req().await.unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = stream_req().await.unwrap();
    assert_eq!(third.status(), 429, "a third stream while two are open");
    let v: Value = third.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("concurrent_streams"));
    // Finishing the streams frees the slots and counts their tokens (2 × 15 = 30 > 25).
    for r in [first, second] {
        let mut body = r.bytes_stream();
        while body.next().await.is_some() {}
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = stream_req().await.unwrap();
    assert_eq!(after.status(), 429, "the minute's tokens are spent");
    let v: Value = after.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens_per_minute"),
        "{v}"
    );
    // Another user is unaffected.
    let other = crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("s2", &[]))
        .json(&request(false))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}
