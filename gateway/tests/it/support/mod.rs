//! Fixtures shared by the integration tests: PostgreSQL clusters and gateway processes.

use base64::Engine as _;

pub mod claude;
pub mod gateway;
pub mod http;
pub mod idp;
pub mod otlp;
pub mod pg;
pub mod stack;
pub mod webdriver;

/// The repository's test data folder.
pub fn data(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

/// An HTTP client for tests. TLS in this workspace is rustls on aws-lc-rs, installed as the
/// process's provider here before any client is built.
pub fn client() -> reqwest::Client {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
    reqwest::Client::new()
}

/// The `claude-gateway` binary under test: `GATEWAY_TEST_BIN` when set (the release build the
/// container image ships, as `scripts/test` does), else the one cargo built for this test run.
pub fn gateway_bin() -> std::path::PathBuf {
    use claude_gateway::config::{Env, ProcessEnv};
    ProcessEnv
        .var("GATEWAY_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_claude-gateway")))
}

/// A two-worker runtime for tests that drive async fixtures from blocking code.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The claims of a JWT, unverified.
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url payload"),
    )
    .expect("JSON claims")
}

/// The value of the query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
