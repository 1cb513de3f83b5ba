//! No log line of a busy gateway carries a secret, a token or a prompt: the session secret, the
//! IdP client secret, Bedrock and admin keys, session tokens and device codes it issued, and
//! prompt text are searched for in everything it wrote, at debug level.

use serde_json::json;
use testkit::{FakeBedrock, Options};

use crate::support::gateway::{config_with, double_upstream, token, Gateway, JWT_SECRET};
use crate::support::otlp::Receiver;
use crate::support::pg::shared;

const ADMIN_KEY: &str = "admin-write-key-secret-0123456789abcd";
const PROMPT: &str = "PROMPT-TEXT-zx81-never-logged";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_secret_reaches_the_logs() {
    let fake = FakeBedrock::start(Options::default()).await.unwrap();
    let collector = Receiver::start().await;
    let o = Options::default();
    let ups = double_upstream(&fake, &o);
    let url = shared().new_db();
    let extra = format!(
        "admin:\n  write_keys: [{{id: ops, key: {ADMIN_KEY}}}]\naudit: {{prompt_hash_key: prompt-hash-key-0123456789abcdef0123}}\ntelemetry:\n  forward_to: [{{url: '{}', headers: {{Authorization: 'Bearer collector-secret-token'}}}}]\n",
        collector.url
    );
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(
            |port| config_with(port, &url, &ups, &extra).replace(&format!("listen: {{host: 127.0.0.1, port: {port}}}"), &format!("listen: {{host: 127.0.0.1, port: {port}, public_url: 'http://127.0.0.1:{port}'}}")),
            &[("CLAUDE_GATEWAY_LOG_LEVEL", "debug")],
        )
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", gw.port);
    let c = crate::support::client();
    let t = crate::support::gateway::token_for("dev1", &["eng"], Some(&base));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": PROMPT}]});
    for stream in [false, true] {
        let mut b = body.clone();
        b["stream"] = stream.into();
        let r = c
            .post(format!("{base}/v1/messages"))
            .bearer_auth(&t)
            .json(&b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    // A refused bearer, a bad admin key, the Admin API, a device grant, the relay.
    c.get(format!("{base}/v1/models"))
        .bearer_auth(format!("{t}x"))
        .send()
        .await
        .unwrap();
    c.get(format!("{base}/v1/organizations/spend_limits"))
        .header("x-api-key", format!("{ADMIN_KEY}-wrong"))
        .send()
        .await
        .unwrap();
    c.get(format!("{base}/v1/organizations/spend_limits"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let grant: serde_json::Value = c
        .post(format!("{base}/oauth/device_authorization"))
        .form(&[("surface", "claude_code")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device_code = grant["device_code"].as_str().unwrap().to_owned();
    c.post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", &device_code),
        ])
        .send()
        .await
        .unwrap();
    c.post(format!("{base}/v1/metrics"))
        .bearer_auth(&t)
        .body(vec![1u8, 2, 3])
        .send()
        .await
        .unwrap();
    assert!(
        collector
            .wait_for(1, std::time::Duration::from_secs(5))
            .await
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let everything = format!("{}\n{}", gw.stdout(), gw.stderr());
    assert!(everything.lines().count() > 10, "the gateway did log");
    assert!(
        everything.contains("\"prompt_hmac\""),
        "the prompt is fingerprinted"
    );
    let other_token = token("dev1", &["eng"]);
    for (what, secret) in [
        ("session secret", JWT_SECRET),
        ("IdP client secret", "idp-client-secret"),
        ("Bedrock secret key", o.secret_access_key.as_str()),
        ("admin key", ADMIN_KEY),
        ("collector credential", "collector-secret-token"),
        ("prompt hash key", "prompt-hash-key-0123456789abcdef0123"),
        ("session token", t.as_str()),
        ("session token signature", t.rsplit('.').next().unwrap()),
        ("another token", other_token.as_str()),
        ("device code", device_code.as_str()),
        ("prompt text", PROMPT),
    ] {
        assert!(
            !everything.contains(secret),
            "the {what} reached a log line"
        );
    }
}
