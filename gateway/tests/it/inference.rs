//! Inference end to end: a real gateway process signing its calls, and the Bedrock test
//! double (SigV4, binary event stream) behind it.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use testkit::{Behavior, FakeBedrock, Options, Reply};

use crate::support::gateway::{bedrock_upstream, config_with, double_upstream, token, Gateway};
use crate::support::pg::{free_port, shared};

struct Setup {
    fake: FakeBedrock,
    gw: Gateway,
    token: String,
    http: reqwest::Client,
}

async fn setup(extra: &str) -> Setup {
    setup_env(extra, &[]).await
}

/// Like [`setup`], with `env` set in the gateway's environment.
async fn setup_env(extra: &str, env: &'static [(&'static str, &'static str)]) -> Setup {
    let fake = FakeBedrock::start(Options::default()).await.unwrap();
    let o = Options::default();
    let ups = double_upstream(&fake, &o);
    let url = shared().new_db();
    let extra = extra.to_owned();
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &url, &ups, &extra), env)
    })
    .await
    .unwrap();
    Setup {
        fake,
        gw,
        token: token("dev1", &["eng"]),
        http: crate::support::client(),
    }
}

impl Setup {
    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("http://127.0.0.1:{}{path}", self.gw.port))
            .bearer_auth(&self.token)
            .header("anthropic-version", "2023-06-01")
            .json(body)
    }
}

fn request(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello"}],
        "metadata": {"user_id": "{\"device_id\":\"d\"}"},
        "some_future_field": {"keep": [1, 2, 3]}
    })
}

/// The SSE bytes the gateway must produce for the double's events: each event as Bedrock wrote
/// it, except one that carried Bedrock's metrics, which the gateway writes again without them.
fn expected_sse(events: &[Value]) -> String {
    let mut out = String::new();
    for e in events {
        let mut e = e.clone();
        let metrics = e
            .as_object_mut()
            .and_then(|o| o.remove("amazon-bedrock-invocationMetrics"));
        let t = e["type"].as_str().unwrap().to_owned();
        let data = match metrics {
            Some(_) => serde_json::to_string(&e).unwrap(),
            None => testkit::eventstream::wire_json(&e),
        };
        out.push_str(&format!("event: {t}\ndata: {data}\n\n"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_requests_reach_bedrock_translated_and_signed() {
    let s = setup("").await;
    let res = s
        .post("/v1/messages?beta=true", &request(false))
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(res.headers()["request-id"].to_str().unwrap(), rid);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert!(body["usage"]["input_tokens"].as_u64().is_some());

    let recorded = s.fake.requests();
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert!(r.signature_valid, "SigV4 verified by the double");
    assert_eq!(r.model_id, "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert!(r.path.ends_with("/invoke"), "{}", r.path);
    assert!(r.body.get("model").is_none());
    assert!(r.body.get("stream").is_none());
    assert_eq!(r.body["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(
        r.body["anthropic_beta"],
        json!(["claude-code-20250219", "interleaved-thinking-2025-05-14"])
    );
    assert_eq!(
        r.body["some_future_field"],
        json!({"keep": [1, 2, 3]}),
        "unknown fields pass through"
    );
    assert_eq!(
        r.body["metadata"],
        json!({"user_id": "{\"device_id\":\"d\"}"})
    );
    assert!(
        !r.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("anthropic-beta")),
        "the beta header is not sent to Bedrock"
    );

    let audit: Vec<Value> =
        s.gw.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
    let inf = audit
        .iter()
        .find(|e| e["evt"] == "inference")
        .expect("an inference event");
    assert_eq!(inf["sub"], "dev1");
    assert_eq!(inf["model"], "claude-sonnet-4-5");
    assert_eq!(inf["upstream"], "bedrock");
    assert_eq!(inf["status"], 200);
    assert_eq!(inf["request_id"], rid.as_str());
    s.gw.assert_no_secrets();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_relayed_event_by_event_byte_exact() {
    let s = setup("").await;
    let reply = Reply::multi_block("us.anthropic.claude-sonnet-4-5-20250929-v1:0");
    let events = reply.events.clone();
    s.fake.push(Behavior::Reply(reply));
    let res = s.post("/v1/messages", &request(true)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text = res.text().await.unwrap();
    assert_eq!(text, expected_sse(&events));
    assert!(
        text.contains("event: content_block_start")
            && text.contains("tool_use")
            && text.contains("thinking")
    );
    assert!(!text.contains("amazon-bedrock-invocationMetrics"));
    assert!(s.fake.requests()[0]
        .path
        .ends_with("/invoke-with-response-stream"));

    // Usage reached the audit record when the stream ended.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let last =
        s.gw.stdout()
            .lines()
            .rev()
            .find(|l| l.contains("\"evt\":\"inference\""))
            .unwrap()
            .to_owned();
    let e: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(e["completed"], true);
    assert!(e["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_byte_arrives_before_the_stream_ends() {
    let s = setup("").await;
    let mut reply = Reply::text("m", "one two three four five", 10, 5);
    reply.delay_between = Duration::from_millis(300);
    s.fake.push(Behavior::Reply(reply));
    let started = Instant::now();
    let res = s.post("/v1/messages", &request(true)).send().await.unwrap();
    let mut body = res.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).starts_with("event: message_start"));
    while body.next().await.is_some() {}
    let total = started.elapsed();
    assert!(
        total > first_at + Duration::from_millis(600),
        "first byte at {first_at:?}, end at {total:?}: buffered?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_streams_get_pings() {
    let s = setup("timeouts: {stream_keepalive_ms: 200}\n").await;
    let mut reply = Reply::text("m", "late", 1, 1);
    reply.first_delay = Duration::from_millis(900);
    s.fake.push(Behavior::Reply(reply));
    let text = s
        .post("/v1/messages", &request(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.starts_with("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
        "{text}"
    );
    assert!(text.contains("event: message_stop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_goes_to_bedrock_count_tokens() {
    let s = setup("").await;
    let body = json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "count these words please"}], "tools": []});
    let res = s
        .post("/v1/messages/count_tokens", &body)
        .header("anthropic-beta", "claude-code-20250219")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() > 0);
    let r = &s.fake.requests()[0];
    assert_eq!(r.path.split('/').next_back(), Some("count-tokens"));
    assert_eq!(
        r.model_id, "anthropic.claude-haiku-4-5-20251001-v1:0",
        "CountTokens takes the foundation model"
    );
    assert!(r.signature_valid);
    assert!(r.body.get("model").is_none() && r.body.get("tools").is_none());
    assert!(r.body["max_tokens"].as_u64().unwrap() >= 1);

    // An application inference profile cannot be counted: 501, so the client falls back.
    let arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc";
    let res = s
        .post(
            "/v1/messages/count_tokens",
            &json!({"model": arn, "messages": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 501);
    assert_eq!(res.headers()["x-should-retry"], "false");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "not_supported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_takes_an_upstream_slot() {
    // One slot, held by a stream: a count waits out the slot wait and is told to retry; once the
    // stream ends, the count goes through.
    let s = setup_env(
        "timeouts: {upstream_slot_wait_ms: 200}\n",
        &[("BUN_CONFIG_MAX_HTTP_REQUESTS", "1")],
    )
    .await;
    let mut reply = Reply::text("m", "one two three four five", 10, 5);
    reply.delay_between = Duration::from_millis(400);
    s.fake.push(Behavior::Reply(reply));
    let res = s.post("/v1/messages", &request(true)).send().await.unwrap();
    let mut stream = res.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let count =
        json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "count"}]});
    let res = s
        .post("/v1/messages/count_tokens", &count)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 529);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
    while stream.next().await.is_some() {}
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = s
            .post("/v1/messages/count_tokens", &count)
            .send()
            .await
            .unwrap();
        // The stream's slot goes back when its end report runs, just after its last byte.
        if res.status() == 200 {
            break;
        }
        assert_eq!(res.status(), 529);
        assert!(Instant::now() < deadline, "the slot never came back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_class_maps_to_the_anthropic_envelope() {
    let s = setup("").await;
    let cases = [
        (
            400,
            "ValidationException",
            "max_tokens: must be positive",
            400,
            "invalid_request_error",
            Some("max_tokens: must be positive"),
        ),
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            400,
            "invalid_request_error",
            Some("Input is too long."),
        ),
        (
            403,
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/x is not authorized",
            403,
            "permission_error",
            None,
        ),
        (
            404,
            "ResourceNotFoundException",
            "Model arn:aws:bedrock:us-east-1:123456789012:x not found",
            404,
            "not_found_error",
            None,
        ),
        (
            429,
            "ThrottlingException",
            "Too many requests",
            429,
            "rate_limit_error",
            None,
        ),
        (
            503,
            "ServiceUnavailableException",
            "busy",
            502,
            "api_error",
            Some("all upstreams failed (1 attempted)"),
        ),
        (
            500,
            "InternalServerException",
            "boom",
            502,
            "api_error",
            Some("all upstreams failed (1 attempted)"),
        ),
        (
            424,
            "ModelErrorException",
            "model failed",
            502,
            "api_error",
            None,
        ),
    ];
    for (status, kind, message, want_status, want_type, want_message) in cases {
        s.fake.push(Behavior::Error {
            status,
            error_type: kind.into(),
            message: message.into(),
        });
        let res = s
            .post("/v1/messages", &request(false))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), want_status, "{kind}");
        let retry_after = res.headers().get("retry-after").cloned();
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], want_type, "{kind}");
        let text = v["error"]["message"].as_str().unwrap();
        assert!(
            !text.contains("123456789012") && !text.contains("arn:"),
            "{kind}: {text}"
        );
        if let Some(m) = want_message {
            assert_eq!(text, m, "{kind}");
        }
        if want_status == 429 {
            assert!(retry_after.is_some(), "429 carries retry-after");
        }
        assert!(v["request_id"].is_string());
    }
    let log = s.gw.stderr();
    assert!(
        log.contains("AccessDeniedException"),
        "the operator's log keeps the detail"
    );
    assert!(
        !log.contains("123456789012"),
        "account ids are masked in logs too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_mid_stream_becomes_an_error_event() {
    let s = setup("").await;
    s.fake.push(Behavior::ExceptionAfterEvents {
        after: 3,
        exception_type: "modelStreamErrorException".into(),
        message: "internal failure in account 123456789012".into(),
    });
    let res = s.post("/v1/messages", &request(true)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
    assert_eq!(frames.len(), 4, "{text}");
    assert!(frames[0].starts_with("event: message_start"));
    assert!(frames[3].starts_with("event: error\ndata: "), "{text}");
    let data: Value = serde_json::from_str(frames[3].split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(!text.contains("123456789012"));

    // A connection that breaks mid-stream ends the same way.
    s.fake.push(Behavior::BreakAfterEvents(2));
    let text = s
        .post("/v1/messages", &request(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.trim_end()
            .split("\n\n")
            .last()
            .unwrap()
            .starts_with("event: error"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upstream_times_out_before_the_first_byte() {
    let s = setup("timeouts: {upstream_ttfb_ms: 400}\n").await;
    s.fake
        .push(Behavior::StallBeforeHeaders(Duration::from_secs(5)));
    let started = Instant::now();
    let res = s.post("/v1/messages", &request(true)).send().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(res.status(), 502);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["message"], "all upstreams failed (1 attempted)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_runs_in_order_before_the_first_byte() {
    let a = FakeBedrock::start(Options::default()).await.unwrap();
    let b = FakeBedrock::start(Options::default()).await.unwrap();
    let o = Options::default();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let ups = [
        bedrock_upstream("dead", &dead, &o.access_key_id, &o.secret_access_key),
        bedrock_upstream(
            "throttled",
            &a.url(),
            &o.access_key_id,
            &o.secret_access_key,
        ),
        bedrock_upstream("healthy", &b.url(), &o.access_key_id, &o.secret_access_key),
    ]
    .join("\n");
    let url = shared().new_db();
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &url, &ups, ""), &[])
    })
    .await
    .unwrap();
    a.push(Behavior::Error {
        status: 429,
        error_type: "ThrottlingException".into(),
        message: "slow down".into(),
    });
    let res = crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("dev2", &[]))
        .json(&request(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(a.requests().len(), 1);
    assert_eq!(b.requests().len(), 1);

    // A 400 does not fail over.
    a.push(Behavior::Error {
        status: 400,
        error_type: "ValidationException".into(),
        message: "bad".into(),
    });
    let res = crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("dev2", &[]))
        .json(&request(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(b.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_stream_releases_the_upstream() {
    let s = setup("").await;
    let mut reply = Reply::text("m", &"word ".repeat(100), 10, 100);
    reply.delay_between = Duration::from_millis(50);
    s.fake.push(Behavior::Reply(reply));
    let res = s.post("/v1/messages", &request(true)).send().await.unwrap();
    let mut body = res.bytes_stream();
    // Read five words, then leave.
    let mut seen = String::new();
    while seen.matches("text_delta").count() < 5 {
        let chunk = body.next().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(s.fake.open_streams(), 1);
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.fake.open_streams() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        s.fake.open_streams(),
        0,
        "the upstream stream was not released"
    );
    // The abandoned stream is still audited, with what was delivered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let last =
        s.gw.stdout()
            .lines()
            .rev()
            .find(|l| l.contains("\"evt\":\"inference\""))
            .unwrap()
            .to_owned();
    let e: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(e["completed"], false);
    assert!(e["input_tokens"].as_u64().unwrap() > 0);
    // Bedrock's final count never came; the output is billed from the deltas relayed (at least
    // the five the client read), not from message_start's single token.
    let output = e["output_tokens"].as_u64().unwrap();
    assert!((5..100).contains(&output), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_auth() {
    let s = setup("models: [{id: team-sonnet, label: Team Sonnet, upstream_model: {bedrock: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0'}}]\n").await;
    let res = s
        .http
        .get(format!("http://127.0.0.1:{}/v1/models", s.gw.port))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["data"][0]["id"], "team-sonnet");
    assert_eq!(v["data"][0]["display_name"], "Team Sonnet");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "claude-opus-4-8"));
    assert_eq!(v["has_more"], false);
    assert_eq!(v["first_id"], "team-sonnet");

    let res = s
        .http
        .post(format!("http://127.0.0.1:{}/v1/messages", s.gw.port))
        .json(&request(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for (body, msg) in [
        (json!({"messages": []}), "model is required"),
        (json!({"model": 7}), "model must be a string"),
        (json!({"model": "gpt-4o", "messages": []}), "gpt-4o"),
    ] {
        let res = s.post("/v1/messages", &body).send().await.unwrap();
        assert_eq!(res.status(), 400);
        let v: Value = res.json().await.unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains(msg), "{v}");
    }
    assert!(
        s.fake.requests().is_empty(),
        "nothing invalid reached the upstream"
    );
}

/// A Bedrock API key is sent as a bearer token instead of a signature; the double accepts the
/// right key and refuses another, which the client sees as a permission error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bedrock_api_key_authenticates_as_a_bearer_token() {
    const KEY: &str = "bedrock-api-key-0123456789abcdef";
    let opts = Options {
        bearer_token: Some(KEY.into()),
        ..Options::default()
    };
    let fake = FakeBedrock::start(opts).await.unwrap();
    let upstream = |key: &str| {
        format!(
            "  - provider: bedrock\n    region: us-east-1\n    base_url: {}\n    auth: {{aws_bearer_token: {key}}}",
            fake.url()
        )
    };
    for (key, status) in [(KEY, 200u16), ("bedrock-api-key-not-the-right-one", 403)] {
        let (ups, url) = (upstream(key), shared().new_db());
        let gw = tokio::task::spawn_blocking(move || {
            Gateway::start(|port| config_with(port, &url, &ups, ""), &[])
        })
        .await
        .unwrap();
        let res = crate::support::client()
            .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
            .bearer_auth(token("dev1", &["eng"]))
            .json(&request(true))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{key}");
        let text = res.text().await.unwrap();
        if status == 200 {
            assert!(text.contains("event: message_stop"), "{text}");
        } else {
            assert!(text.contains("permission_error"), "{text}");
        }
        let last = fake.requests().pop().unwrap();
        assert_eq!(last.signature_valid, status == 200);
        assert!(last
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v.starts_with("Bearer ")));
        assert!(!gw.stdout().contains(key), "the key reached a log line");
    }
}
