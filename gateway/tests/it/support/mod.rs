//! Fixtures shared by the integration tests: PostgreSQL clusters and gateway processes.

pub mod gateway;
pub mod http;
pub mod pg;

/// The repository's test data folder.
pub fn data(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}
