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

/// The `upstreams` entry of a Bedrock upstream at `url` (the double).
pub fn bedrock(url: &str) -> String {
    format!(
        "  - provider: bedrock
    region: us-east-1
    base_url: {url}
    auth: {{aws_access_key_id: AKIDFAKEBEDROCK, aws_secret_access_key: fake-bedrock-secret-key}}"
    )
}

/// The `upstreams` entry of an Anthropic API upstream at `url` (the stand-in).
pub fn anthropic(url: &str) -> String {
    format!(
        "  - provider: anthropic
    base_url: {url}
    auth: {{api_key: {}}}",
        crate::fake_anthropic::API_KEY
    )
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
        Self::start_upstream(bin, &bedrock(upstream), postgres, extra, env).await
    }

    /// Like [`Gateway::start_env`], with `upstreams` the YAML list of upstreams.
    pub async fn start_upstream(
        bin: &str,
        upstreams: &str,
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
{upstreams}
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

    /// User and system CPU time the gateway has used so far, all threads.
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        cpu_seconds(&self.child, "the gateway")
    }

    /// Resident set size now, as its file-backed and anonymous parts (shared memory, which the
    /// gateway does not use, is left out).
    pub fn rss_parts(&self) -> (u64, u64) {
        rss_parts(&self.child)
    }

    /// Peak resident set size.
    pub fn peak_kib(&self) -> u64 {
        status_kib(&self.child, "VmHWM:")
    }
}

/// The floor proxy (`floor.rs`) in front of an upstream, in a process of its own.
pub struct Floor {
    child: Child,
    pub url: String,
}

impl Floor {
    /// Starts this binary as the floor proxy in front of `upstream` and reads the port it serves.
    pub async fn start(upstream: &str) -> Result<Floor, String> {
        use tokio::io::AsyncBufReadExt;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg(crate::floor::COMMAND)
            .arg(upstream)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the floor proxy: {e}"))?;
        let out = child.stdout.take().ok_or("the floor proxy has no stdout")?;
        let mut lines = tokio::io::BufReader::new(out).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .map_err(|_| "the floor proxy did not say its port")?
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let port: u16 = first
            .trim()
            .parse()
            .map_err(|_| format!("the floor proxy said {first:?}, not a port"))?;
        Ok(Floor {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// User and system CPU time the floor proxy has used so far, all threads.
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        cpu_seconds(&self.child, "the floor proxy")
    }

    /// Resident set size now, as its file-backed and anonymous parts.
    pub fn rss_parts(&self) -> (u64, u64) {
        rss_parts(&self.child)
    }
}

/// `child`'s resident set size, as its file-backed and anonymous KiB (shared memory, which
/// neither the gateway nor the floor uses, is left out).
fn rss_parts(child: &Child) -> (u64, u64) {
    (status_kib(child, "RssFile:"), status_kib(child, "RssAnon:"))
}

/// A KiB figure of `/proc/<pid>/status`; 0 when the process or the field is gone.
fn status_kib(child: &Child, field: &str) -> u64 {
    let pid = child.id().unwrap_or(0);
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User and system CPU time `child` has used so far, all threads (`/proc/<pid>/stat`).
fn cpu_seconds(child: &Child, what: &str) -> Result<f64, String> {
    let pid = child.id().ok_or_else(|| format!("{what} has exited"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 14th and 15th of the line, the 12th and 13th of these.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {}", i + 3))
    };
    Ok((tick(11)? + tick(12)?) as f64 / clock_ticks())
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}
