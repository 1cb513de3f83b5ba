//! The processes under test: the double and the gateway, started and stopped by the benchmark.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The double (`testkit`), serving `events` text deltas `delay_ms` apart, accepting unsigned
/// requests (so the direct baseline pays no signing cost the gateway would not pay too). It keeps
/// no request records, and answers InvokeModel without waiting out the stream's pacing, so the
/// non-streaming load measures throughput.
pub struct Fake {
    _double: testkit::FakeBedrock,
    pub url: String,
}

/// Starts the double in this process.
pub async fn fake(events: u32, delay_ms: u64) -> Result<Fake, String> {
    let text: String = (0..events).map(|i| format!("w{i} ")).collect();
    let mut reply = testkit::Reply::text(
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        &text,
        12,
        u64::from(events),
    );
    reply.delay_between = Duration::from_millis(delay_ms);
    let opts = testkit::Options {
        default_behavior: testkit::Behavior::Reply(reply),
        accept_unsigned: true,
        record_requests: false,
        pace_invoke: false,
        ..testkit::Options::default()
    };
    let double = testkit::FakeBedrock::start(opts)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Fake {
        url: double.url(),
        _double: double,
    })
}

/// A running gateway.
pub struct Gateway {
    child: Child,
    pub url: String,
    _dir: std::path::PathBuf,
}

/// The session secret of the benchmark's gateway.
pub const SECRET: &str = "bench-session-secret-0123456789abcdef";

impl Gateway {
    /// Starts the gateway in front of `upstream` and waits for `/healthz`.
    pub async fn start(bin: &str, upstream: &str, postgres: &str) -> Result<Gateway, String> {
        Self::start_with(bin, upstream, postgres, "").await
    }

    /// Like [`Gateway::start`], with `extra` YAML appended to the config.
    pub async fn start_with(
        bin: &str,
        upstream: &str,
        postgres: &str,
        extra: &str,
    ) -> Result<Gateway, String> {
        Self::start_env(bin, upstream, postgres, extra, &[]).await
    }

    /// Like [`Gateway::start_with`], with `env` set in the gateway's environment.
    pub async fn start_env(
        bin: &str,
        upstream: &str,
        postgres: &str,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let yaml = format!(
            "listen: {{host: 127.0.0.1, port: {port}}}
upstreams:
  - provider: bedrock
    region: us-east-1
    base_url: {upstream}
    auth: {{aws_access_key_id: AKIDFAKEBEDROCK, aws_secret_access_key: fake-bedrock-secret-key}}
session: {{jwt_secret: {SECRET}}}
store: {{postgres_url: '{postgres}', max_connections: 20}}
oidc: {{issuer: 'https://idp.example.com', client_id: bench, client_secret: bench}}
{extra}"
        );
        let dir = std::env::temp_dir().join(format!("gateway-bench-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let cfg = dir.join("gateway.yaml");
        std::fs::write(&cfg, yaml).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&cfg)
            .env("CLAUDE_GATEWAY_ALLOW_LOOPBACK", "1")
            .env("CLAUDE_GATEWAY_LOG_LEVEL", "warn")
            .env("BUN_CONFIG_MAX_HTTP_REQUESTS", "4096")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{url}/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err("the gateway did not become healthy".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Gateway {
            child,
            url,
            _dir: dir,
        })
    }

    fn status_kib(&self, field: &str) -> u64 {
        let pid = self.child.id().unwrap_or(0);
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Resident set size now.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Peak resident set size.
    pub fn peak_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }
}
