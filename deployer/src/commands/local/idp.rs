//! The demo sign-in: the test OpenID Provider (`gateway/tests/idp/idp.mjs`, the `oidc-provider`
//! package on Node.js) in a child process on a free loopback port, knowing a few demo users and
//! one confidential client whose only redirect URI is the local gateway's callback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use claude_gateway::config::Env;
use serde_json::json;

use super::random_hex;
use crate::error::{Error, Result};

/// How long the IdP gets to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The variable naming the Node.js binary (default `node` on PATH).
pub const NODE_VAR: &str = "NODE_BIN";

/// A demo user: the name typed into the sign-in page (there is no password) and its groups.
pub struct DemoUser {
    /// The sign-in name, also the OIDC `sub`.
    pub login: &'static str,
    /// Its IdP groups.
    pub groups: &'static [&'static str],
}

/// The demo users: a developer who is also an admin, and a contractor the sample policy limits.
pub const USERS: &[DemoUser] = &[
    DemoUser {
        login: "alice",
        groups: &["developers", "admins"],
    },
    DemoUser {
        login: "bob",
        groups: &["contractors"],
    },
];

/// A running demo IdP; [`Idp::stop`] (or drop) kills it.
pub struct Idp {
    /// `http://127.0.0.1:<port>`.
    pub issuer: String,
    /// The client the gateway signs in as.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    child: Option<Child>,
}

/// The folder holding `idp.mjs` and its `node_modules`: `gateway/tests/idp` under the current
/// folder (a checkout), else the one this program was built from.
pub fn idp_dir() -> PathBuf {
    let here = PathBuf::from("gateway/tests/idp");
    let dir = if here.join("idp.mjs").is_file() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/tests/idp")
    };
    // Node runs in that folder: the script's path must not be relative to ours.
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

impl Idp {
    /// Starts the IdP from `dir` (see [`idp_dir`]) with its config and log in `work`; it
    /// redirects only to `redirect_uri`. Clear errors when Node.js or the packages are missing.
    pub fn start(env: &dyn Env, dir: &Path, work: &Path, redirect_uri: &str) -> Result<Idp> {
        if !dir.join("idp.mjs").is_file() {
            return Err(Error::failed(format!(
                "the demo sign-in ({}/idp.mjs) is not here: run deployer local from a checkout of claude-gateway, or give your own IdP with --issuer, --client-id and --client-secret",
                dir.display()
            )));
        }
        if !dir.join("node_modules/oidc-provider").is_dir() {
            return Err(Error::failed(format!(
                "the demo sign-in's packages are not installed: run `npm ci --prefix {}` (needs npm), or give your own IdP with --issuer, --client-id and --client-secret",
                dir.display()
            )));
        }
        let client_id = "claude-gateway-local".to_owned();
        let client_secret = random_hex(24)?;
        let users: Vec<_> = USERS
            .iter()
            .map(|u| {
                json!({
                    "sub": u.login,
                    "email": format!("{}@example.com", u.login),
                    "email_verified": true,
                    "name": format!("Demo user {}", u.login),
                    "groups": u.groups,
                })
            })
            .collect();
        let config = json!({
            "port": 0,
            "clients": [{
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "client_secret_basic",
            }],
            "users": users,
        });
        let config_path = work.join("idp.json");
        // It holds the client secret.
        crate::state::write_private(&config_path, &config.to_string())
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", config_path.display())))?;
        let log_path = work.join("idp.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", log_path.display())))?;
        let node = env.var(NODE_VAR).unwrap_or_else(|| "node".into());
        let script = dir.join("idp.mjs");
        let mut cmd = Command::new(&node);
        cmd.arg(&script)
            .arg(&config_path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        // Its own process group: a Ctrl-C in the terminal reaches this program only, which
        // stops the parts in order.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(|e| {
            Error::failed(format!(
                "cannot run {node} ({e}): the demo sign-in needs Node.js 20 or later (Debian/Ubuntu: sudo apt install nodejs npm; macOS: brew install node), or give your own IdP with --issuer, --client-id and --client-secret"
            ))
        })?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::failed("the demo IdP's output could not be read"));
        };
        let mut idp = Idp {
            issuer: String::new(),
            client_id,
            client_secret,
            child: Some(child),
        };
        // The first line says where it listens; the rest of stdout is drained so the IdP never
        // writes into a closed pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        let line = rx.recv_timeout(START_TIMEOUT).map_err(|e| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let why = match e {
                std::sync::mpsc::RecvTimeoutError::Timeout => {
                    format!(
                        "did not say where it listens within {} s",
                        START_TIMEOUT.as_secs()
                    )
                }
                std::sync::mpsc::RecvTimeoutError::Disconnected => "exited".to_owned(),
            };
            Error::failed(format!(
                "the demo IdP {why} (it needs Node.js 20 or later); the end of its log:\n{}",
                lines[lines.len().saturating_sub(15)..].join("\n")
            ))
        });
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                idp.stop();
                return Err(e);
            }
        };
        match line.strip_prefix("listening on ").map(str::trim) {
            Some(base) if base.starts_with("http://127.0.0.1:") => {
                idp.issuer = base.to_owned();
                Ok(idp)
            }
            _ => {
                idp.stop();
                Err(Error::failed(format!(
                    "the demo IdP said {line:?} instead of where it listens"
                )))
            }
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the IdP and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}
