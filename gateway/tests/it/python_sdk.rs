//! The official Anthropic SDK for Python completes a plain and a streamed call through the gateway.

use std::process::Command;

use testkit::{FakeBedrock, Options};

use crate::support::gateway::{config_with, double_upstream, token, Gateway};
use crate::support::pg::shared;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_python_sdk_works_through_the_gateway() {
    let fake = FakeBedrock::start(Options::default()).await.unwrap();
    let o = Options::default();
    let ups = double_upstream(&fake, &o);
    let url = shared().new_db();
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &url, &ups, ""), &[])
    })
    .await
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/anthropic_sdk.py");
    let out = Command::new("python3")
        .arg(script)
        .env("GATEWAY_URL", format!("http://127.0.0.1:{}", gw.port))
        .env("GATEWAY_TOKEN", token("py", &[]))
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK script failed (is the `anthropic` package installed? scripts/install-test-deps):\n{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plain = v["plain_text"].as_str().unwrap();
    assert!(!plain.is_empty());
    assert_eq!(
        v["stream_text"].as_str().unwrap(),
        plain,
        "streamed and plain answers agree"
    );
    assert_eq!(v["plain_stop"], "end_turn");
    assert_eq!(v["stream_stop"], "end_turn");
    assert!(v["stream_output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(v["denied"]["status"], 400);
    assert_eq!(v["denied"]["type"], "invalid_request_error");
    assert_eq!(fake.requests().len(), 2);
}
