//! A `max_tokens` too large for the worst-case arithmetic saturates (at a context window of
//! output) and meets the spend cap: refused before anything goes upstream, never admitted because a
//! sum overflowed.

use serde_json::json;
use testkit::{FakeBedrock, Options};

use crate::support::gateway::{config_with, double_upstream, token, Gateway};
use crate::support::pg::shared;

const WRITE: &str = "write-key-0123456789abcdef0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_max_tokens_is_refused_by_the_cap() {
    let opts = Options::default();
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let ups = double_upstream(&fake, &opts);
    let url = shared().new_db();
    let extra = format!("admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\n");
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &url, &ups, &extra), &[])
    })
    .await
    .unwrap();
    let c = crate::support::client();
    // $10 a month for everyone: an ordinary request fits; the most output any model can bill (a
    // context window, 1M tokens of Sonnet output = $15) does not.
    crate::support::gateway::set_org_cap(gw.port, WRITE, "1000", "monthly").await;

    for max_tokens in [
        json!(i64::MAX),
        json!(u64::MAX),
        serde_json::from_str::<serde_json::Value>("1e30").unwrap(),
    ] {
        let res = c
            .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
            .bearer_auth(token("dev1", &["eng"]))
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 429, "max_tokens {max_tokens}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["type"], "billing_error", "{body}");
    }
    assert!(fake.requests().is_empty(), "nothing went upstream");

    // An ordinary request under the same cap is served.
    let res = c
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("dev1", &["eng"]))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
