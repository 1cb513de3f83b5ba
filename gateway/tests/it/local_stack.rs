//! `deployer local`, the whole product on one machine, run as a newcomer runs it: the command in
//! a child process, the real Claude Code client pointed at it by the lines it prints, a sign-in
//! at its demo IdP, an answer from the Bedrock double; then Ctrl-C, after which nothing of it
//! may be left (no process, no port, no folder). Also when it fails halfway, and when it is
//! killed outright (its watchdog cleans up).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::claude::Claude;
use crate::support::idp::Idp;
use crate::support::{deployer_bin, jwt_claims, runtime};

/// `deployer local` in a child process, its output lines collected as they come.
struct Local {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    lines: mpsc::Receiver<String>,
}

impl Local {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Local {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut cmd = Command::new(deployer_bin());
        cmd.arg("local")
            .args(args)
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run deployer local");
        let (tx, lines) = mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, store) in [
            (
                Box::new(stdout) as Box<dyn std::io::Read + Send>,
                out.clone(),
            ),
            (Box::new(stderr), err.clone()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    store.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        Local {
            child,
            out,
            err,
            lines,
        }
    }

    fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.out.lock().unwrap().join("\n"),
            self.err.lock().unwrap().join("\n")
        )
    }

    /// Waits for a line (on either stream) that starts with `prefix`; returns the rest of it.
    fn wait_for(&self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let seen = |lines: &Arc<Mutex<Vec<String>>>| {
            lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        };
        loop {
            if let Some(rest) = seen(&self.out).or_else(|| seen(&self.err)) {
                return rest;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(_) => panic!(
                    "deployer local printed no line starting {prefix:?} within {within:?}\n{}",
                    self.output()
                ),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "deployer local did not exit within {within:?}\n{}",
            self.output()
        )
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose command line mentions `needle` (the stack's folder: PostgreSQL's data
/// folder, the IdP's config, the watchdog's argument).
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(needle)
                .then(|| format!("{}: {cmd}", e.file_name().to_string_lossy()))
        })
        .collect()
}

fn port_of(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Asserts that nothing of the stack in `dir` is left: no process, no port, no folder.
fn assert_nothing_left(dir: &str, ports: &[u16]) {
    assert!(!Path::new(dir).exists(), "{dir} is still there");
    let left = processes_mentioning(dir);
    assert!(left.is_empty(), "processes of the stack remain: {left:?}");
    for port in ports {
        assert!(!listening(*port), "port {port} still answers");
    }
}

/// The newcomer's path end to end: `deployer local --offline`, the two printed lines, `/login`
/// with the real client and the demo user, an answer, Ctrl-C, nothing left.
#[test]
fn the_real_client_signs_in_to_the_local_stack_and_ctrl_c_leaves_nothing() {
    let rt = runtime();
    let mut local = Local::start(&["--offline"], &[]);
    let ready = Duration::from_secs(120);
    let dir = local.wait_for("Ready. Press Ctrl-C to stop everything and remove ", ready);
    let base = local.wait_for("claude-gateway is running at ", ready);
    let config_dir = local.wait_for("  export CLAUDE_CONFIG_DIR=", ready);
    assert_eq!(local.wait_for("  claude", ready), "", "{}", local.output());
    let issuer = local
        .wait_for("Sign in at the demo IdP (", ready)
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    let pg_port: u16 = local
        .wait_for("  store:      PostgreSQL on 127.0.0.1:", ready)
        .parse()
        .unwrap();
    let admin = local.wait_for(
        &format!("  curl -s {base}/v1/organizations/spend_limits -H 'x-api-key: "),
        ready,
    );
    let admin_key = admin.trim_end_matches('\'').to_owned();
    assert!(config_dir.starts_with(&dir), "{config_dir} outside {dir}");

    // The printed config folder holds what the harness gives its own client: the gateway
    // sign-in, at this gateway.
    let settings: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(PathBuf::from(&config_dir).join("settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        settings,
        serde_json::json!({"forceLoginMethod": "gateway", "forceLoginGatewayUrl": base})
    );

    // The sample spend cap is in place, through the Admin API with the printed key.
    let limits = rt.block_on(async {
        crate::support::client()
            .get(format!("{base}/v1/organizations/spend_limits"))
            .header("x-api-key", &admin_key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        limits.contains("\"developers\"") && limits.contains("\"1000\""),
        "{limits}"
    );

    // The real client signs in at the demo IdP as the demo user, and gets the double's answer.
    let mut claude = Claude::new(&base);
    let device = claude.login();
    assert_eq!(device.verification_uri, format!("{base}/device"));
    let idp = Idp::attach(&issuer);
    let approval = rt.block_on(idp.approve_device(&base, &device.user_code, "alice"));
    assert_eq!(
        approval.status,
        200,
        "{}\n{}",
        approval.body,
        local.output()
    );
    let creds = claude.wait_signed_in(Duration::from_secs(60));
    claude.wait_ready(Duration::from_secs(60));
    let claims = jwt_claims(creds["enterpriseGateway"]["jwt"].as_str().unwrap());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["developers", "admins"])
    );
    claude.quit();
    let out = claude.print("Say hello");
    assert!(out.contains(testkit::DEFAULT_TEXT), "{out}");
    // The audit stream follows the banner on stdout.
    let _ = local.wait_for("{\"ts\":", ready);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !local.output().contains("\"evt\":\"inference\"") && Instant::now() < deadline {
        let _ = local.lines.recv_timeout(Duration::from_millis(200));
    }
    assert!(
        local.output().contains("\"evt\":\"inference\""),
        "{}",
        local.output()
    );

    // Ctrl-C: everything stops, and nothing is left.
    let gw_port = port_of(&base);
    let idp_port = port_of(&issuer);
    local.signal("INT");
    assert_eq!(
        local.wait_exit(Duration::from_secs(90)),
        Some(0),
        "{}",
        local.output()
    );
    assert_nothing_left(&dir, &[gw_port, idp_port, pg_port]);
    assert!(
        local
            .output()
            .contains("stopped: nothing is left running, and the stack folder is removed"),
        "{}",
        local.output()
    );
}

/// A part that cannot start (here the demo IdP: no Node.js) after PostgreSQL has: a clear
/// error naming what to install, and PostgreSQL stopped and the folder removed.
#[test]
fn a_local_stack_that_fails_halfway_leaves_nothing() {
    let mut local = Local::start(&["--offline"], &[("NODE_BIN", "/nonexistent/node")]);
    let within = Duration::from_secs(120);
    let dir = local.wait_for("deployer local: stack folder: ", within);
    let pg_port: u16 = local
        .wait_for("deployer local: PostgreSQL listening on 127.0.0.1:", within)
        .parse()
        .unwrap();
    assert_eq!(local.wait_exit(within), Some(1), "{}", local.output());
    let out = local.output();
    assert!(
        out.contains("cannot run /nonexistent/node") && out.contains("Node.js 20 or later"),
        "{out}"
    );
    assert_nothing_left(&dir, &[pg_port]);
}

/// Killed outright (no chance to clean up), the stack is still taken down: the watchdog sees
/// the command's end and stops PostgreSQL, kills the IdP and removes the folder.
#[test]
fn a_killed_local_stack_is_cleaned_up_by_its_watchdog() {
    let mut local = Local::start(&["--offline"], &[]);
    let within = Duration::from_secs(120);
    let dir = local.wait_for("Ready. Press Ctrl-C to stop everything and remove ", within);
    let base = local.wait_for("claude-gateway is running at ", within);
    let issuer = local
        .wait_for("Sign in at the demo IdP (", within)
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    let pg_port: u16 = local
        .wait_for("  store:      PostgreSQL on 127.0.0.1:", within)
        .parse()
        .unwrap();
    assert!(listening(pg_port) && listening(port_of(&issuer)));
    local.signal("KILL");
    assert_eq!(local.wait_exit(within), None, "killed by a signal");
    // The watchdog works after the command has gone: wait for its last step, the folder.
    let deadline = Instant::now() + within;
    while (Path::new(&dir).exists() || !processes_mentioning(&dir).is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_nothing_left(&dir, &[port_of(&base), port_of(&issuer), pg_port]);
}
