//! A real `claude-gateway` process for end-to-end tests: written config, free port, captured
//! output, stopped on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pg::free_port;

/// The session secret every test config uses.
pub const JWT_SECRET: &str = "test-session-secret-0123456789abcdef";

/// A config for tests: loopback listener on `{port}`, the given store URL, a Bedrock upstream and
/// `extra` YAML appended at the top level.
pub fn config(port: u16, postgres_url: &str, extra: &str) -> String {
    config_with(
        port,
        postgres_url,
        "  - provider: bedrock
    region: us-east-1
    auth: {aws_access_key_id: AKIATESTTESTTEST, aws_secret_access_key: test-aws-secret}",
        extra,
    )
}

/// A Bedrock upstream entry pointing at a test double.
pub fn bedrock_upstream(name: &str, url: &str, key_id: &str, secret: &str) -> String {
    format!(
        "  - provider: bedrock
    name: {name}
    region: us-east-1
    base_url: {url}
    auth: {{aws_access_key_id: {key_id}, aws_secret_access_key: {secret}}}"
    )
}

/// The upstream entry, named `bedrock`, for a running double started with `opts`.
pub fn double_upstream(double: &testkit::FakeBedrock, opts: &testkit::Options) -> String {
    bedrock_upstream(
        "bedrock",
        &double.url(),
        &opts.access_key_id,
        &opts.secret_access_key,
    )
}

/// Like [`config`], with the given `upstreams` list entries (YAML lines).
pub fn config_with(port: u16, postgres_url: &str, upstreams: &str, extra: &str) -> String {
    config_oidc(
        port,
        postgres_url,
        upstreams,
        "issuer: 'http://127.0.0.1:9', client_id: gateway-client, client_secret: idp-client-secret",
        extra,
    )
}

/// Like [`config_with`], with `oidc` as the body of the `oidc` flow mapping (for a real IdP, see
/// [`oidc_for`]). `extra` may not hold a `session` block; the session secret is [`JWT_SECRET`].
pub fn config_oidc(
    port: u16,
    postgres_url: &str,
    upstreams: &str,
    oidc: &str,
    extra: &str,
) -> String {
    format!(
        "listen: {{host: 127.0.0.1, port: {port}}}
upstreams:
{upstreams}
session: {{jwt_secret: {JWT_SECRET}}}
store: {{postgres_url: '{postgres_url}', connect_timeout_seconds: 2}}
oidc: {{{oidc}}}
{extra}
"
    )
}

/// The `oidc` body for the test IdP, with the IdP's client authentication method.
pub fn oidc_for(idp: &super::idp::Idp, method: &str) -> String {
    format!(
        "issuer: '{}', client_id: {}, client_secret: {}, token_endpoint_auth_method: {method}",
        idp.issuer, idp.client_id, idp.client_secret
    )
}

/// A session token for `sub`, minted the way the gateway mints them.
pub fn token(sub: &str, groups: &[&str]) -> String {
    token_for(sub, groups, None)
}

/// A session token for a gateway whose `listen.public_url` is `issuer`.
pub fn token_for(sub: &str, groups: &[&str], issuer: Option<&str>) -> String {
    use claude_gateway::auth::token::{Identity, SessionKeys};
    use claude_gateway::config::Secret;
    let keys = SessionKeys::new(&[Secret::new(JWT_SECRET)], issuer.map(str::to_owned));
    let who = Identity {
        sub: sub.to_owned(),
        email: Some(format!("{sub}@example.com")),
        name: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        mfa_at: None,
    };
    keys.mint(
        &who,
        time::OffsetDateTime::now_utc(),
        time::Duration::hours(1),
    )
}

/// A running gateway.
pub struct Gateway {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Gateway {
    /// Writes `yaml` (with `{port}` replaced) and starts the binary; waits for `/healthz`.
    pub fn start(yaml_for_port: impl Fn(u16) -> String, env: &[(&str, &str)]) -> Gateway {
        // A free port can be taken by another test's gateway before this one binds it: then
        // this one exits, and it starts again on another port.
        for _ in 0..4 {
            let port = free_port();
            let g = Self::spawn(&yaml_for_port(port), port, env);
            match g.try_healthy(Duration::from_secs(30)) {
                Ok(()) => return g,
                Err(why) if why.contains("ddress already in use") => continue,
                Err(why) => panic!("{why}"),
            }
        }
        panic!("no free port for the gateway after four tries");
    }

    /// Starts without waiting.
    pub fn spawn(yaml: &str, port: u16, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::Builder::new()
            .prefix("gw-")
            .tempdir()
            .expect("tempdir");
        let cfg = dir.path().join("gateway.yaml");
        std::fs::write(&cfg, yaml).expect("write config");
        let stdout = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut cmd = Command::new(crate::support::gateway_bin());
        cmd.arg("--config")
            .arg(&cfg)
            .env("CLAUDE_GATEWAY_ALLOW_LOOPBACK", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn claude-gateway");
        Gateway {
            child: Some(child),
            port,
            dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Polls `/healthz` until 200 or the deadline (panics with the logs on failure).
    pub fn wait_healthy(&self, within: Duration) {
        if let Err(why) = self.try_healthy(within) {
            panic!("{why}");
        }
    }

    /// Whether this gateway has said it listens on its port: only then is an answer there its
    /// own, not that of another process that bound the port first.
    fn listening(&self) -> bool {
        let at = format!(":{}", self.port);
        self.stderr()
            .lines()
            .chain(self.stdout().lines())
            .any(|l| l.contains("listening on") && l.trim_end().ends_with(&at))
    }

    /// Like [`Gateway::wait_healthy`], with the failure and the logs as an error.
    fn try_healthy(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            // A gateway that exited (bad config, port taken) will not come up: say so now, and
            // never take another process's answer on the port for ours.
            if !super::Process::of(self.pid()).is_some_and(|p| p.alive()) {
                return Err(format!(
                    "the gateway exited before it was healthy:\n{}\n{}",
                    self.stdout(),
                    self.stderr()
                ));
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ =
                    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut buf = [0u8; 16];
                if s.read(&mut buf)
                    .map(|n| buf[..n].starts_with(b"HTTP/1.1 200"))
                    .unwrap_or(false)
                    && self.listening()
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "gateway did not become healthy:\n{}\n{}",
            self.stdout(),
            self.stderr()
        ))
    }

    /// The `store.postgres_url` of its config.
    pub fn postgres_url(&self) -> String {
        let yaml =
            std::fs::read_to_string(self.dir.path().join("gateway.yaml")).unwrap_or_default();
        yaml.split("postgres_url: '")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("a postgres_url in the config")
            .to_owned()
    }

    /// What the process wrote to stdout (the audit stream).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    /// The audit events named `evt` written so far (stdout's JSON lines).
    pub fn audit(&self, evt: &str) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["evt"] == evt)
            .collect()
    }

    /// What the process wrote to stderr (operational logs).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Asserts that no secret of the test configs (the session secret, the upstream keys of the
    /// test config and of the Bedrock double) reached stdout or stderr.
    pub fn assert_no_secrets(&self) {
        self.assert_absent(&[
            JWT_SECRET,
            "test-aws-secret",
            "idp-client-secret",
            "fake-bedrock-secret-key",
        ]);
    }

    /// Asserts that none of `secrets` reached stdout or stderr.
    pub fn assert_absent(&self, secrets: &[&str]) {
        let out = format!("{}{}", self.stdout(), self.stderr());
        for secret in secrets {
            assert!(!out.contains(secret), "a log line carries a secret:\n{out}");
        }
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sends a signal by name (`TERM`, `INT`).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status();
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sets the organization's spend cap through the Admin API (`amount` in cents, `period` daily,
/// weekly or monthly) with an admin write key.
pub async fn set_org_cap(port: u16, write_key: &str, amount: &str, period: &str) {
    let r = crate::support::client()
        .post(format!(
            "http://127.0.0.1:{port}/v1/organizations/spend_limits"
        ))
        .header("x-api-key", write_key)
        .json(&serde_json::json!({"scope": {"type": "organization"}, "amount": amount, "period": period}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the cap is set");
}

/// Posts a Messages request as user `sub` and returns the status and body text.
pub async fn post_messages(port: u16, sub: &str, body: &serde_json::Value) -> (u16, String) {
    let r = crate::support::client()
        .post(format!("http://127.0.0.1:{port}/v1/messages"))
        .bearer_auth(token(sub, &[]))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}
