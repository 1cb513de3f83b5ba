//! SIGTERM stops accepting and exits cleanly once open connections are done.

use std::time::Duration;

use crate::support::gateway::{config, Gateway};
use crate::support::pg::shared;

#[test]
fn sigterm_exits_cleanly_and_closes_the_port() {
    let url = shared().new_db();
    let mut gw = Gateway::start(
        |port| config(port, &url, ""),
        &[("CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS", "5000")],
    );
    gw.signal("TERM");
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        gw.stderr()
    );
    assert!(gw.stderr().contains("shutdown complete"), "{}", gw.stderr());
    assert!(std::net::TcpStream::connect(("127.0.0.1", gw.port)).is_err());
    gw.assert_no_secrets();
}

#[test]
fn an_invalid_drain_setting_fails_boot() {
    let url = shared().new_db();
    let port = crate::support::pg::free_port();
    let mut gw = Gateway::spawn(
        &config(port, &url, ""),
        port,
        &[("CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS", "-5")],
    );
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(1));
    assert!(
        gw.stderr().contains("CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS"),
        "{}",
        gw.stderr()
    );
}

/// Counts rows of a table in the gateway's database.
async fn rows(store: &claude_gateway::store::Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_open_past_the_drain_window_end_in_band_and_are_settled() {
    use futures_util::StreamExt;
    use std::str::FromStr;
    use testkit::{Behavior, FakeBedrock, Options, Reply};

    const WRITE: &str = "write-key-0123456789abcdef0123456789";
    // A long answer: 200 words, 100 ms apart, so it is still streaming when the window closes.
    let words = vec!["word"; 200].join(" ");
    let opts = Options {
        default_behavior: Behavior::Reply(
            Reply::text("m", &words, 10, 400)
                .with_delays(Duration::ZERO, Duration::from_millis(100)),
        ),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let ups = crate::support::gateway::double_upstream(&fake, &opts);
    let url = shared().new_db();
    let extra = format!(
        "admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\nmanaged:\n  policies:\n    - match: {{}}\n      cli: {{env: {{A: '1'}}}}\n      rate_limits:\n        user: {{concurrent_streams: 2}}\n"
    );
    let u = url.clone();
    let mut gw = tokio::task::spawn_blocking(move || {
        Gateway::start(
            |port| crate::support::gateway::config_with(port, &u, &ups, &extra),
            &[("CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS", "1000")],
        )
    })
    .await
    .unwrap();
    let c = crate::support::client();
    crate::support::gateway::set_org_cap(gw.port, WRITE, "100000", "monthly").await;

    let body = serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 1000, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let res = c
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(crate::support::gateway::token("dev", &[]))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut text = String::new();
    while !text.contains("content_block_delta") {
        let chunk = stream.next().await.expect("stream open").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
        1,
        Duration::from_secs(5),
    );
    assert_eq!(rows(&store, "SELECT count(*) FROM reservations").await, 1);
    assert_eq!(rows(&store, "SELECT count(*) FROM stream_slots").await, 1);

    gw.signal("TERM");
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("the stream ends cleanly"),
        ));
    }
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    let data = last
        .strip_prefix("event: error\ndata: ")
        .unwrap_or_else(|| panic!("the stream ends with an in-band error: {last}"));
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert_eq!(
        data["error"]["message"],
        "the gateway is restarting; retry the request"
    );
    assert!(!text.contains("message_stop"), "the answer was cut short");
    let code = tokio::task::block_in_place(|| gw.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, Some(0), "{}", gw.stderr());
    assert!(
        gw.stderr()
            .contains("every request's spend and rate-limit accounting is written"),
        "{}",
        gw.stderr()
    );

    // Nothing is left held, and the stream is billed once, for what it relayed.
    assert_eq!(rows(&store, "SELECT count(*) FROM reservations").await, 0);
    assert_eq!(rows(&store, "SELECT count(*) FROM stream_slots").await, 0);
    assert_eq!(rows(&store, "SELECT count(*) FROM settlements").await, 1);
    let settled = rows(
        &store,
        "SELECT settled_micros FROM spend WHERE principal = 'dev' AND bucket LIKE 'm:%'",
    )
    .await;
    let reserved = rows(
        &store,
        "SELECT reserved_micros FROM spend WHERE principal = 'dev' AND bucket LIKE 'm:%'",
    )
    .await;
    assert_eq!(reserved, 0);
    // 10 input tokens (30 µ$) and at least one output token per relayed delta (15 µ$ each).
    assert!(
        settled > 30 + 15,
        "billed for the relayed output: {settled}"
    );
    assert_eq!(
        rows(
            &store,
            "SELECT coalesce(sum(cost_micros), 0)::bigint FROM cost_daily"
        )
        .await,
        settled,
        "finance's report has the same cost"
    );
}
