//! Fixtures shared by the integration tests: PostgreSQL clusters and gateway processes.

pub mod bedrock;
pub mod gateway;
pub mod http;
pub mod otlp;
pub mod pg;

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
