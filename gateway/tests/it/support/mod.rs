//! Fixtures shared by the integration tests: PostgreSQL clusters and gateway processes.

use base64::Engine as _;

pub mod claude;
pub mod flood;
pub mod gateway;
pub mod http;
pub mod idp;
pub mod mcp;
pub mod moto;
pub mod otlp;
pub mod pg;
pub mod stack;
pub mod test_ca;
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

/// The developer's `claude-aws` binary: `CLAUDE_AWS_TEST_BIN` when set, else the one cargo built
/// next to this run's gateway binary (`cargo test --workspace` builds both; alone, build it first
/// with `cargo build -p claude-aws`).
pub fn claude_aws_bin() -> std::path::PathBuf {
    use claude_gateway::config::{Env, ProcessEnv};
    let bin = ProcessEnv
        .var("CLAUDE_AWS_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_BIN_EXE_claude-gateway"))
                .with_file_name(format!("claude-aws{}", std::env::consts::EXE_SUFFIX))
        });
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p claude-aws` (or set CLAUDE_AWS_TEST_BIN)",
        bin.display()
    );
    bin
}

/// The `deployer` binary (for `deployer local`): `DEPLOYER_TEST_BIN` when set, else the one cargo
/// built next to this run's gateway binary (`cargo test --workspace` builds both; alone, build it
/// first with `cargo build -p deployer`).
pub fn deployer_bin() -> std::path::PathBuf {
    use claude_gateway::config::{Env, ProcessEnv};
    let bin = ProcessEnv
        .var("DEPLOYER_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_BIN_EXE_claude-gateway"))
                .with_file_name(format!("deployer{}", std::env::consts::EXE_SUFFIX))
        });
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p deployer` (or set DEPLOYER_TEST_BIN)",
        bin.display()
    );
    bin
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

/// A process named by its pid and its start time, so that a pid the kernel has since given to
/// another process (pids wrap quickly on a busy test machine) is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    start: u64,
}

impl Process {
    /// The process `pid` is now, if it exists.
    pub fn of(pid: u32) -> Option<Process> {
        let (_, start) = stat(pid)?;
        Some(Process { pid, start })
    }

    /// Whether it is still running: the same process (same start time), not a zombie.
    pub fn alive(&self) -> bool {
        stat(self.pid)
            .is_some_and(|(state, start)| start == self.start && state != 'Z' && state != 'X')
    }

    /// SIGKILL, only if it is still this process.
    pub fn kill(&self) {
        if self.alive() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// The state letter and start time (clock ticks after boot) from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last `)`.
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 is the state; field 22 the start time (1-based, counting pid and comm).
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Finance's row for a request, as a settlement carries it.
pub fn ledger(
    day: time::Date,
    email: Option<&str>,
    name: Option<&str>,
    groups: &[String],
    model: &str,
    at: time::OffsetDateTime,
) -> claude_gateway::store::spend::Ledger {
    claude_gateway::store::spend::Ledger {
        day,
        model: model.to_owned(),
        email: email.map(str::to_owned),
        name: name.map(str::to_owned),
        groups: groups.to_vec(),
        at,
    }
}
