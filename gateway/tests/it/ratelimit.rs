//! Inference rate limits across replicas: counted in PostgreSQL, per user and shared per policy,
//! with a stricter tier for requests that offer write-capable tools.

use serde_json::{json, Value};

use crate::support::gateway::{config, token, Gateway};
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
