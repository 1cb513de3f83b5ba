//! Upstream time bounds end to end: a slow but healthy answer is relayed and billed, a stalled
//! one is cut off at its documented bound (a JSON answer with a 504 and no second upstream, a
//! stream with an in-band `error` after what was relayed), for Bedrock (the double) and for an
//! Anthropic upstream (a loopback server that stalls on cue).

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::{Behavior, FakeBedrock, Options, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::gateway::{bedrock_upstream, config_with, double_upstream, token, Gateway};
use crate::support::pg::shared;

const WRITE: &str = "write-key-0123456789abcdef0123456789";

fn request(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello"}]
    })
}

async fn start(upstreams: String, extra: &str) -> (Gateway, String) {
    let url = shared().new_db();
    let extra = format!("admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\n{extra}");
    let db = url.clone();
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &db, &upstreams, &extra), &[])
    })
    .await
    .unwrap();
    (gw, url)
}

async fn post(gw: &Gateway, sub: &str, body: &Value) -> reqwest::Response {
    crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token(sub, &[]))
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Today's settled spend of `sub`, once settlement (asynchronous) has written `want`, or what it
/// is after ten seconds.
async fn settled(url: &str, sub: &str, want: i64) -> i64 {
    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(url).unwrap(),
        1,
        Duration::from_secs(5),
    );
    let today =
        claude_gateway::spend::periods::Period::Daily.bucket(time::OffsetDateTime::now_utc());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = store
            .totals(sub, std::slice::from_ref(&today))
            .await
            .unwrap();
        if t[0].settled == want || Instant::now() > deadline {
            return t[0].settled;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A double answering with `reply`, and a spare upstream after it that failover would reach;
/// with the `upstreams` entries for both.
async fn with_spare(reply: Reply) -> (FakeBedrock, FakeBedrock, String) {
    let opts = Options {
        default_behavior: Behavior::Reply(reply),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let spare = FakeBedrock::start(Options::default()).await.unwrap();
    let ups = [
        double_upstream(&fake, &opts),
        bedrock_upstream(
            "spare",
            &spare.url(),
            &opts.access_key_id,
            &opts.secret_access_key,
        ),
    ]
    .join("\n");
    (fake, spare, ups)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_non_streaming_bedrock_answer_is_relayed_and_billed() {
    // InvokeModel answers only once the whole answer is generated: here after 1.5 s, five times
    // the time-to-first-byte bound. 12 input and 200 output tokens of Sonnet 4.5 = 3,036 µ$.
    let mut reply = Reply::text("m", "a long and healthy answer", 12, 200);
    reply.first_delay = Duration::from_millis(1_500);
    let (fake, spare, ups) = with_spare(reply).await;
    let (gw, url) = start(ups, "timeouts: {upstream_ttfb_ms: 300}\n").await;
    let res = post(&gw, "slow1", &request(false)).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "a long and healthy answer");
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(
        spare.requests().len(),
        0,
        "a healthy answer never fails over"
    );
    assert_eq!(settled(&url, "slow1", 3_036).await, 3_036, "billed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bedrock_answer_past_the_response_bound_is_a_504_without_failover() {
    let mut reply = Reply::text("m", "too late", 12, 200);
    reply.first_delay = Duration::from_secs(20);
    let (fake, spare, ups) = with_spare(reply).await;
    let (gw, _) = start(ups, "timeouts: {upstream_response_ms: 500}\n").await;
    let res = post(&gw, "slow2", &request(false)).await;
    assert_eq!(res.status(), 504);
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(
        spare.requests().len(),
        0,
        "the first upstream may bill for it: not sent twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_bedrock_stream_ends_with_an_error_and_is_billed() {
    // The first event comes at once, the next after a minute.
    let mut reply = Reply::text("m", "never finished", 12, 200);
    reply.delay_between = Duration::from_secs(60);
    let opts = Options {
        default_behavior: Behavior::Reply(reply),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let (gw, url) = start(
        double_upstream(&fake, &opts),
        "timeouts: {stream_keepalive_ms: 200, stream_idle_ms: 1000}\n",
    )
    .await;
    let res = post(&gw, "silent1", &request(true)).await;
    assert_eq!(res.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(30), res.text())
        .await
        .expect("the stream was never ended")
        .unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: ping"), "pings during the silence");
    assert!(!text.contains("message_stop"), "{text}");
    assert_ends_with_silence_error(&text);
    // The 12 input tokens and the one output token message_start reported: 36 + 15 µ$.
    assert_eq!(settled(&url, "silent1", 51).await, 51, "billed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.open_streams() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.open_streams(), 0, "the upstream stream was released");
}

/// The stream's last event is the in-band error for a silent upstream.
fn assert_ends_with_silence_error(text: &str) {
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    let data = last
        .strip_prefix("event: error\ndata: ")
        .unwrap_or_else(|| panic!("last event is not an error: {text}"));
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["error"]["type"], "api_error");
    assert_eq!(v["error"]["message"], "upstream stopped sending");
}

/// A loopback Anthropic API that answers each request with `head` and then `body`, then holds
/// the connection open without another byte.
async fn stalling_anthropic(head: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the request head and its Content-Length body.
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.flush().await;
                // Stall: keep the connection until the gateway gives up on it.
                let _ = sock.read(&mut buf).await;
            });
        }
    });
    format!(
        "  - provider: anthropic
    name: direct
    base_url: http://127.0.0.1:{port}
    auth: {{api_key: test-anthropic-key}}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_anthropic_json_body_is_a_504() {
    let up = stalling_anthropic(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n",
        "{\"id\":\"msg_1\",\"type\":\"message\",",
    )
    .await;
    let (gw, _) = start(up, "timeouts: {upstream_response_ms: 500}\n").await;
    let res = tokio::time::timeout(
        Duration::from_secs(30),
        post(&gw, "stall1", &request(false)),
    )
    .await
    .expect("the stalled body was never cut off");
    assert_eq!(res.status(), 504);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "api_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_anthropic_stream_ends_with_an_error_and_is_billed() {
    let up = stalling_anthropic(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        "6f\r\nevent: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n\r\n",
    )
    .await;
    let (gw, url) = start(up, "timeouts: {stream_idle_ms: 800}\n").await;
    let res = post(&gw, "stall2", &request(true)).await;
    assert_eq!(res.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(30), res.text())
        .await
        .expect("the stream was never ended")
        .unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert_ends_with_silence_error(&text);
    // 12 input and 1 output token of Sonnet 4.5: 36 + 15 µ$.
    assert_eq!(settled(&url, "stall2", 51).await, 51, "billed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_anthropic_error_body_is_cut_off_at_the_first_byte_bound() {
    let up = stalling_anthropic(
        "HTTP/1.1 529 Overloaded\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n",
        "{\"type\":\"error\",",
    )
    .await;
    let (gw, _) = start(
        up,
        "timeouts: {upstream_ttfb_ms: 500, upstream_response_ms: 3600000}\n",
    )
    .await;
    let res = tokio::time::timeout(
        Duration::from_secs(30),
        post(&gw, "stall3", &request(false)),
    )
    .await
    .expect("the stalled error body was never cut off");
    assert!(res.status().is_server_error(), "{}", res.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_anthropic_json_body_is_refused_as_it_arrives() {
    // 70 MB announced and sent: more than any Messages answer, past the gateway's 64 MiB bound.
    const SIZE: usize = 70_000_000;
    let head: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {SIZE}\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let body: &'static str = Box::leak("x".repeat(SIZE).into_boxed_str());
    let up = stalling_anthropic(head, body).await;
    let (gw, _) = start(up, "").await;
    let res = post(&gw, "big1", &request(false)).await;
    assert_eq!(res.status(), 502);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "api_error", "{v}");
    assert!(gw.stderr().contains("larger than"), "{}", gw.stderr());
}
