//! The real Claude Code client, driven as a person would: in a detached tmux session, keys sent
//! with `send-keys`, the screen read with `capture-pane`. Each [`Claude`] has a throwaway HOME and
//! config dir whose user settings force sign-in through one gateway, and its own tmux server.
//!
//! ```ignore
//! let mut claude = Claude::new(&gateway_url);
//! let device = claude.login();                       // past first-run screens, up to the code
//! idp.approve_device(&gateway_url, &device.user_code, "alice").await;
//! let creds = claude.wait_signed_in(Duration::from_secs(60));
//! claude.wait_ready(Duration::from_secs(30));        // past the remaining screens, to the prompt
//! let out = claude.print("Say hello");               // `claude -p`, same HOME
//! ```
//!
//! The client binary is `CLAUDE_BIN` when set, else the one `scripts/install-test-deps` installs
//! under `${XDG_CACHE_HOME:-$HOME/.cache}/claude-gateway/tools`. tmux must be installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use claude_gateway::config::{Env, ProcessEnv};

use super::Process;
use serde_json::Value;

/// The client version the harness is written against.
pub const CLAUDE_VERSION: &str = "2.1.328";

/// Where the client's npm package puts the native binary, by platform, under `node_modules`.
const BINARY_PATHS: &[&str] = &[
    "@anthropic-ai/claude-code-linux-x64/claude",
    "@anthropic-ai/claude-code-linux-arm64/claude",
    "@anthropic-ai/claude-code-linux-x64-musl/claude",
    "@anthropic-ai/claude-code-linux-arm64-musl/claude",
    "@anthropic-ai/claude-code/bin/claude.exe",
];

/// The tools folder `scripts/install-test-deps` installs the client into.
pub fn tools_dir() -> PathBuf {
    let env = ProcessEnv;
    let cache = env
        .var("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env.var("HOME").unwrap_or_default()).join(".cache"));
    cache.join("claude-gateway/tools")
}

/// The `claude` binary: `CLAUDE_BIN`, else the installed one. Panics with how to install it.
pub fn claude_bin() -> PathBuf {
    if let Some(bin) = ProcessEnv.var("CLAUDE_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let modules = tools_dir().join("node_modules");
    BINARY_PATHS
        .iter()
        .map(|p| modules.join(p))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the Claude Code client is not installed: run scripts/install-test-deps (npm install \
                 @anthropic-ai/claude-code@{CLAUDE_VERSION} into {}) or set CLAUDE_BIN",
                tools_dir().display()
            )
        })
}

/// The device sign-in the client shows.
#[derive(Clone, Debug)]
pub struct DeviceLogin {
    pub user_code: String,
    /// The verification page as shown on screen.
    pub verification_uri: String,
    /// The page with the code filled in: what the client asked the browser to open.
    pub verification_uri_complete: String,
}

/// What `claude -p` did.
#[derive(Debug)]
pub struct PrintOutput {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// One client: its own HOME, config dir, working directory and tmux server.
pub struct Claude {
    pub gateway_url: String,
    dir: tempfile::TempDir,
    bin: PathBuf,
    started: bool,
    /// Variables set (or, with `None`, removed) over the defaults of [`Claude::env`].
    env_overrides: Vec<(String, Option<String>)>,
    /// `CLAUDE_HARNESS_TRACE=1`: print each screen the harness acts on, and what it does.
    trace: bool,
}

const SESSION: &str = "claude";

impl Claude {
    /// A client whose user settings (`$CLAUDE_CONFIG_DIR/settings.json`) force gateway sign-in at
    /// `gateway_url`. Nothing runs until [`Claude::login`] or [`Claude::print`].
    pub fn new(gateway_url: &str) -> Claude {
        let bin = claude_bin();
        assert!(
            Command::new("tmux")
                .arg("-V")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false),
            "tmux is not installed: run scripts/install-test-deps"
        );
        let dir = tempfile::Builder::new()
            .prefix("claude-client-")
            .tempdir()
            .expect("tempdir");
        let c = Claude {
            gateway_url: gateway_url.to_owned(),
            dir,
            bin,
            started: false,
            env_overrides: Vec::new(),
            trace: ProcessEnv
                .var("CLAUDE_HARNESS_TRACE")
                .is_some_and(|v| !v.is_empty() && v != "0"),
        };
        std::fs::create_dir_all(c.config_dir()).expect("config dir");
        std::fs::create_dir_all(c.workdir()).expect("work dir");
        std::fs::create_dir_all(c.dir.path().join("tmp")).expect("tmp dir");
        let settings = serde_json::json!({
            "forceLoginMethod": "gateway",
            "forceLoginGatewayUrl": gateway_url,
        });
        std::fs::write(c.config_dir().join("settings.json"), settings.to_string())
            .expect("write settings.json");
        // The client opens the verification page with $BROWSER: record what it asks for.
        let browser = c.dir.path().join("browser.sh");
        std::fs::write(
            &browser,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n",
                c.opened_urls_file().display()
            ),
        )
        .expect("write browser.sh");
        make_executable(&browser);
        c
    }

    /// The throwaway HOME.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `CLAUDE_CONFIG_DIR` (`$HOME/.claude`): settings, `.credentials.json`, `.claude.json`.
    pub fn config_dir(&self) -> PathBuf {
        self.home().join(".claude")
    }

    /// The (empty) folder the client runs in.
    pub fn workdir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn opened_urls_file(&self) -> PathBuf {
        self.dir.path().join("opened-urls")
    }

    /// URLs the client asked the browser to open, oldest first.
    pub fn opened_urls(&self) -> Vec<String> {
        std::fs::read_to_string(self.opened_urls_file())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Sets `key` (or removes it, with `None`) in the client's environment, for what runs next.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env_overrides.retain(|(k, _)| k != key);
        self.env_overrides
            .push((key.to_owned(), value.map(str::to_owned)));
    }

    /// The whole environment the client runs with (nothing else is inherited).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.default_env();
        for (key, value) in &self.env_overrides {
            env.retain(|(k, _)| k != key);
            if let Some(v) = value {
                env.push((key.clone(), v.clone()));
            }
        }
        env
    }

    fn default_env(&self) -> Vec<(String, String)> {
        let home = self.home();
        let path = ProcessEnv
            .var("PATH")
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let h = |p: &str| home.join(p).display().to_string();
        vec![
            ("HOME".into(), home.display().to_string()),
            (
                "CLAUDE_CONFIG_DIR".into(),
                self.config_dir().display().to_string(),
            ),
            ("XDG_CONFIG_HOME".into(), h(".config")),
            ("XDG_CACHE_HOME".into(), h(".cache")),
            ("XDG_DATA_HOME".into(), h(".local/share")),
            ("XDG_STATE_HOME".into(), h(".local/state")),
            ("PATH".into(), path),
            ("TERM".into(), "xterm-256color".into()),
            ("LANG".into(), "C.UTF-8".into()),
            (
                "TMPDIR".into(),
                self.dir.path().join("tmp").display().to_string(),
            ),
            (
                "BROWSER".into(),
                self.dir.path().join("browser.sh").display().to_string(),
            ),
            ("DISABLE_AUTOUPDATER".into(), "1".into()),
            (
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
                "1".into(),
            ),
            ("DISABLE_TELEMETRY".into(), "1".into()),
            ("DISABLE_ERROR_REPORTING".into(), "1".into()),
        ]
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S")
            .arg(self.dir.path().join("tmux.sock"))
            .arg("-f")
            .arg("/dev/null")
            .env_remove("TMUX")
            .stdin(Stdio::null());
        c
    }

    fn tmux_ok(&self, args: &[&str]) -> String {
        let out = self.tmux().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the interactive client in a detached 200x50 tmux session (once). When the client
    /// exits, the pane stays and says so.
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// Starts the client with `args` (for example `mcp login aws`) in the tmux session, in
    /// place of the interactive client; once.
    pub fn start_with(&mut self, args: &[&str]) {
        if self.started {
            return;
        }
        let mut cmd = self.tmux();
        cmd.args([
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            "200",
            "-y",
            "50",
            "-c",
        ])
        .arg(self.workdir())
        .args([
            "sh",
            "-c",
            "\"$@\"; echo \"[claude exited with status $?]\"; exec sleep 86400",
            "sh",
            "env",
            "-i",
        ]);
        for (k, v) in self.env() {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg(&self.bin).args(args);
        let out = cmd.output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.started = true;
    }

    /// The screen as text (wrapped lines joined).
    pub fn screen(&self) -> String {
        if !self.started {
            return String::from("(client not started)");
        }
        self.tmux_ok(&["capture-pane", "-p", "-J", "-t", SESSION])
    }

    /// Types a slash command at the prompt and, once the input line shows it, presses Enter.
    #[track_caller]
    pub fn command(&self, command: &str) {
        self.type_text(command);
        let typed = format!("❯ {command}");
        self.wait_screen(
            &format!("{command} in the input line"),
            Duration::from_secs(10),
            |s| s.contains(&typed),
        );
        // Let the command menu settle on the typed command before confirming it.
        std::thread::sleep(Duration::from_millis(300));
        self.keys(&["Enter"]);
    }

    /// Waits until the screen satisfies `ready` and returns it; fails the test, naming `what`,
    /// after `timeout`.
    #[track_caller]
    pub fn wait_screen(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let screen = self.screen();
            if ready(&screen) {
                self.act(&screen, &format!("saw {what}"));
                return screen;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.fail(&format!("timed out after {timeout:?} waiting for {what}"))
    }

    /// Sends keys by tmux name (`Enter`, `Up`, `Escape`, `C-c`, ...).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        self.tmux_ok(&args);
    }

    /// Types `text` literally (no Enter).
    pub fn type_text(&self, text: &str) {
        self.tmux_ok(&["send-keys", "-t", SESSION, "-l", text]);
    }

    fn act(&self, screen: &str, what: &str) {
        if self.trace {
            eprintln!(
                "[claude harness] {what}\n--- screen ---\n{}\n--------------",
                screen.trim_end()
            );
        }
    }

    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- screen ---\n{}\n--------------",
            self.screen().trim_end()
        )
    }

    /// Waits until the screen differs from `before` (or `within` passes).
    fn settle(&self, before: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if self.screen() != before {
                // Let the redraw finish.
                std::thread::sleep(Duration::from_millis(150));
                return;
            }
        }
    }

    /// Waits until no line of the screen contains `marker` (or `within` passes). Waiting for the
    /// screen acted on to go, rather than for any redraw, keeps a key from landing twice on it,
    /// or on the next one.
    fn wait_gone(&self, marker: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if !self.screen().contains(marker) {
                std::thread::sleep(Duration::from_millis(150));
                return;
            }
        }
    }

    /// Presses `key` on the screen that shows `marker`, and waits for that screen to go.
    #[track_caller]
    fn press(&self, screen: &str, key: &str, marker: &str) {
        self.act(screen, &format!("{key} on {marker:?}"));
        self.keys(&[key]);
        self.wait_gone(marker, Duration::from_secs(5));
    }

    /// Presses Enter on a "Press Enter to continue" screen (named by its last line of text above
    /// that hint).
    #[track_caller]
    fn press_continue(&self, screen: &str) {
        let lines: Vec<&str> = screen.lines().collect();
        let hint = lines
            .iter()
            .position(|l| l.contains("Press Enter to continue"))
            .unwrap_or(0);
        let marker = lines[..hint]
            .iter()
            .rev()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .unwrap_or("Press Enter to continue");
        self.press(screen, "Enter", marker);
    }

    /// In a list of options, moves the `❯` marker to the line containing `label` and presses
    /// Enter; waits for the list to go.
    #[track_caller]
    pub fn choose(&self, label: &str) {
        for _ in 0..20 {
            let screen = self.screen();
            let lines: Vec<&str> = screen.lines().collect();
            let target = lines.iter().rposition(|l| l.contains(label));
            let marker = lines.iter().rposition(|l| l.trim_start().starts_with('❯'));
            let (Some(target), Some(marker)) = (target, marker) else {
                self.fail(&format!("no option {label:?} to choose"));
            };
            if target == marker {
                self.press(&screen, "Enter", label);
                return;
            }
            let key = if target < marker { "Up" } else { "Down" };
            self.keys(&[key]);
            self.settle(&screen, Duration::from_secs(2));
        }
        self.fail(&format!("could not select {label:?}"));
    }

    /// Starts the client if needed and walks it to its device sign-in screen: accepts the default
    /// theme, connects to the gateway from the settings, trusts the gateway (its fingerprint
    /// prompt), types `/login` when the client is already at its prompt, and reads the user code
    /// and verification URL off the screen.
    #[track_caller]
    pub fn login(&mut self) -> DeviceLogin {
        self.start();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut typed_login = false;
        while Instant::now() < deadline {
            let screen = self.screen();
            if let Some(found) = self.device_login(&screen) {
                self.act(&screen, &format!("read {found:?}"));
                return found;
            }
            if screen.contains("Choose the text style") {
                self.press(&screen, "Enter", "Choose the text style");
            } else if screen.contains("Enter to connect") {
                self.press(&screen, "Enter", "Enter to connect");
            } else if screen.contains("Trust gateway") && screen.contains("Yes, trust this gateway")
            {
                self.choose("Yes, trust this gateway");
            } else if screen.contains("Press Enter to continue") {
                self.press_continue(&screen);
            } else if at_prompt(&screen) && !typed_login {
                self.act(&screen, "type /login");
                self.command("/login");
                typed_login = true;
                self.settle(&screen, Duration::from_secs(5));
            } else if screen.contains("[claude exited with status") {
                self.fail("the client exited before showing a sign-in code");
            } else {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        self.fail("timed out waiting for the client's device sign-in code")
    }

    fn device_login(&self, screen: &str) -> Option<DeviceLogin> {
        let user_code = screen.lines().find_map(|l| {
            let rest = l.split_once("Code:")?.1.trim();
            let code = rest.split_whitespace().next()?;
            (code.len() >= 4 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                .then(|| code.to_owned())
        })?;
        let verification_uri = screen
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("http://") || l.starts_with("https://"))?
            .split_whitespace()
            .next()?
            .to_owned();
        // The browser is launched around when the screen shows the code; what it was asked to
        // open is the verification link the client built.
        let deadline = Instant::now() + Duration::from_secs(15);
        let verification_uri_complete = loop {
            let opened = self
                .opened_urls()
                .into_iter()
                .rev()
                .find(|u| u.contains(&user_code));
            if let Some(url) = opened {
                break url;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "the client showed code {user_code} but did not open a browser on it"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        Some(DeviceLogin {
            user_code,
            verification_uri,
            verification_uri_complete,
        })
    }

    /// Waits until the client says it is connected and `.credentials.json` holds the gateway
    /// token; confirms the signed-in account when the client asks (a gateway that returns
    /// `email`). Returns the credentials.
    #[track_caller]
    pub fn wait_signed_in(&self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let screen = self.screen();
            if screen.contains("Signed in to Cloud gateway as") && screen.contains("Yes, continue")
            {
                self.choose("Yes, continue");
                continue;
            }
            let creds = self.credentials();
            let has_token = creds["enterpriseGateway"]["jwt"]
                .as_str()
                .is_some_and(|t| !t.is_empty());
            if has_token && screen.contains("Connected to Cloud gateway") {
                self.act(&screen, "signed in");
                return creds;
            }
            if screen.contains("[claude exited with status") {
                self.fail("the client exited before it was signed in");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let creds = self.credentials();
        self.fail(&format!(
            "timed out after {timeout:?} waiting for the client to be signed in (gateway token \
             stored: {})",
            creds["enterpriseGateway"]["jwt"].is_string()
        ))
    }

    /// Walks the client from wherever it is to its input prompt: presses Enter on "Press Enter
    /// to continue" screens and the theme picker, trusts the working folder, and approves
    /// managed settings that ask for approval (telemetry redirected by the organization).
    #[track_caller]
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let screen = self.screen();
            if screen.contains("Yes, I trust this folder") {
                self.choose("Yes, I trust this folder");
                continue;
            }
            // Managed settings that send telemetry somewhere ask the person first.
            if screen.contains("Managed settings require approval")
                && screen.contains("Yes, I trust these settings")
            {
                self.choose("Yes, I trust these settings");
                continue;
            }
            if at_prompt(&screen) {
                self.act(&screen, "at the prompt");
                return;
            }
            if screen.contains("Choose the text style") {
                self.press(&screen, "Enter", "Choose the text style");
                continue;
            }
            if screen.contains("Press Enter to continue") {
                self.press_continue(&screen);
                continue;
            }
            if screen.contains("[claude exited with status") {
                self.fail("the client exited before reaching its prompt");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.fail(&format!(
            "timed out after {timeout:?} waiting for the client's prompt"
        ))
    }

    /// `claude -p PROMPT` with the same HOME and config dir; returns stdout. Panics (with both
    /// streams) when it fails or takes over two minutes.
    #[track_caller]
    pub fn print(&self, prompt: &str) -> String {
        let out = self.print_with(&[prompt], Duration::from_secs(120));
        if out.status != Some(0) {
            panic!(
                "claude -p exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.status, out.stdout, out.stderr
            );
        }
        out.stdout
    }

    /// `claude -p ARGS...` (non-interactive, stdin closed) with a deadline; on timeout the process
    /// is killed and the test fails with what it wrote so far.
    #[track_caller]
    pub fn print_with(&self, args: &[&str], timeout: Duration) -> PrintOutput {
        let mut all = vec!["-p"];
        all.extend_from_slice(args);
        self.run(&all, timeout)
    }

    /// `claude ARGS...` (stdin closed) with a deadline, like [`Claude::print_with`].
    #[track_caller]
    pub fn run(&self, args: &[&str], timeout: Duration) -> PrintOutput {
        let out_path = self.dir.path().join("print.stdout");
        let err_path = self.dir.path().join("print.stderr");
        let mut child = Command::new(&self.bin)
            .args(args)
            .env_clear()
            .envs(self.env())
            .current_dir(self.workdir())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("run claude -p");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return PrintOutput {
                    status: status.code(),
                    stdout: read(&out_path),
                    stderr: read(&err_path),
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "claude -p did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    read(&out_path),
                    read(&err_path)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `$CLAUDE_CONFIG_DIR/.credentials.json`, or `Null` while there is none.
    pub fn credentials(&self) -> Value {
        std::fs::read_to_string(self.config_dir().join(".credentials.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }
}

impl Drop for Claude {
    fn drop(&mut self) {
        self.quit();
    }
}

impl Claude {
    /// Ends the interactive client (its tmux server) and waits for it to exit: it writes its
    /// state on the way out, and stops refreshing its token in the background. Nothing happens
    /// when it is not running.
    pub fn quit(&mut self) {
        if !self.started {
            return;
        }
        self.started = false;
        let panes = self
            .tmux()
            .args(["list-panes", "-a", "-F", "#{pane_pid}"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut procs = Vec::new();
        for pid in panes.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            descendants(pid, &mut procs);
        }
        let _ = self
            .tmux()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while procs.iter().any(Process::alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in &procs {
            p.kill();
        }
    }
}

/// `pid` and every process under it, from `/proc/<pid>/task/*/children`.
fn descendants(pid: u32, out: &mut Vec<Process>) {
    let Some(me) = Process::of(pid) else { return };
    if out.contains(&me) {
        return;
    }
    out.push(me);
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten();
    for task in tasks {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            descendants(child, out);
        }
    }
}

/// The client's input box: an empty `❯` line right under a horizontal rule.
fn at_prompt(screen: &str) -> bool {
    let lines: Vec<&str> = screen.lines().collect();
    lines.windows(2).any(|w| {
        w[0].trim_start().starts_with('─')
            && w[1].trim_start().starts_with('❯')
            && w[1].trim_start().trim_start_matches('❯').trim().is_empty()
    })
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path).expect("stat").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}
