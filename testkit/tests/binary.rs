//! The standalone `fake-bedrock` binary: it announces its address and streams the configured
//! number of text deltas to the real SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Region};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::ResponseStream;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn binary_serves_the_configured_stream() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-bedrock"))
        .args(["--port", "0", "--events", "5", "--delay-ms", "20"])
        .args(["--first-delay-ms", "50"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("listening on ")
        .expect("announces its address")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let conf = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&url)
        .retry_config(RetryConfig::disabled())
        .credentials_provider(Credentials::new(
            "AKIDFAKEBEDROCK",
            "fake-bedrock-secret-key",
            None,
            None,
            "test",
        ))
        .build();
    let client = aws_sdk_bedrockruntime::Client::from_conf(conf);
    let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]});
    let t0 = Instant::now();
    let mut out = client
        .invoke_model_with_response_stream()
        .model_id("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
        .body(Blob::new(serde_json::to_vec(&body).unwrap()))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    let mut deltas = 0;
    while let Some(event) = out.body.recv().await.unwrap() {
        let ResponseStream::Chunk(part) = event else {
            panic!("unexpected {event:?}");
        };
        let e: Value = serde_json::from_slice(part.bytes().unwrap().as_ref()).unwrap();
        if e["delta"]["type"] == "text_delta" {
            deltas += 1;
            text.push_str(e["delta"]["text"].as_str().unwrap());
        }
    }
    assert_eq!(deltas, 5);
    assert_eq!(text, "w0 w1 w2 w3 w4");
    assert!(t0.elapsed() >= Duration::from_millis(50 + 20 * 9));

    child.kill().await.unwrap();
}
