//! A real browser for tests: Debian's headless Chromium driven by its chromedriver over the W3C
//! WebDriver HTTP protocol (with `reqwest`), enough to open pages, read them, type and click.
//!
//! ```ignore
//! let b = Browser::start().await;          // chromedriver on a free port, one Chromium session
//! b.goto("http://127.0.0.1:8080/device").await;
//! b.find("input[name=user_code]").await.send_keys("BCDF-GHJK").await;
//! b.find("button[type=submit]").await.click().await;
//! let url = b.url().await;
//! let problems = b.browser_log().await;    // console messages and CSP violations since last read
//! ```
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/install-test-deps`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Process;

/// Debian's chromedriver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's Chromium launcher.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How Chromium runs here: headless, as root in a sandboxed machine without a network, nothing
/// fetched in the background. A fresh `--user-data-dir` is added per browser.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// The W3C name of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One entry of the browser's log (console messages, failed loads, CSP violations).
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

/// A chromedriver process and one Chromium session in it. Dropping it ends the session (which
/// closes Chromium) and kills chromedriver.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    session_id: String,
    driver_port: u16,
    driver: Option<Child>,
    chromium: Option<Process>,
    dir: tempfile::TempDir,
}

/// An element found on the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
    css: String,
}

impl Browser {
    /// Starts chromedriver on a free port, waits until it is ready, and opens a session with a
    /// fresh profile and the browser log enabled. Panics when Chromium is not installed.
    pub async fn start() -> Browser {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: run scripts/install-test-deps (it installs Debian's chromium and \
                 chromium-driver)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("gw-chromium-")
            .tempdir()
            .expect("tempdir");
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).expect("profile dir");
        let driver_port = super::pg::free_port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).expect("log file");
        use std::os::unix::process::CommandExt;
        // Its own process group, which the Chromium it starts joins: dropping the browser ends
        // both, even when the session never came up.
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER}: {e}"));
        let mut b = Browser {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
            session: String::new(),
            session_id: String::new(),
            driver_port,
            driver: Some(child),
            chromium: None,
            dir,
        };
        b.wait_ready(Duration::from_secs(20)).await;

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 30_000, "script": 10_000, "implicit": 0},
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let v = b
            .call(
                reqwest::Method::POST,
                &format!("http://127.0.0.1:{driver_port}/session"),
                Some(caps),
            )
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}\n{}", b.log()));
        b.session_id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {v}"))
            .to_owned();
        b.session = format!("http://127.0.0.1:{driver_port}/session/{}", b.session_id);
        b.chromium = v["capabilities"]["goog:processID"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .and_then(Process::of);
        b
    }

    async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let status = format!("http://127.0.0.1:{}/status", self.driver_port);
        loop {
            if let Ok(r) = self.http.get(&status).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == true {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {}:\n{}",
                self.driver_port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What chromedriver logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// One WebDriver command; `Ok(value)` or `Err("<error>: <message>")`.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method.clone(), url);
        if let Some(body) = body {
            req = req.json(&body);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let r = req
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = r.status();
        let v: Value = r
            .json()
            .await
            .map_err(|e| format!("{method} {url}: HTTP {status}, not JSON: {e}"))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!(
                "{method} {url}: HTTP {status}: {}: {}",
                value["error"].as_str().unwrap_or("?"),
                value["message"].as_str().unwrap_or("?")
            ))
        }
    }

    /// A command on this session (`path` after `/session/<id>`); panics on a WebDriver error.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("{}{path}", self.session), body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The current page's URL.
    pub async fn url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The current page's title.
    pub async fn title(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/title", None).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The current page's markup, as the browser serializes it.
    pub async fn source(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/source", None).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching `css`, or `None`.
    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        self.find_all(css).await.into_iter().next()
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element {
                browser: self,
                id: id.to_owned(),
                css: css.to_owned(),
            })
            .collect()
    }

    /// The first element matching `css`; panics, with the page, when there is none.
    pub async fn find(&self, css: &str) -> Element<'_> {
        match self.try_find(css).await {
            Some(e) => e,
            None => panic!(
                "no element matches {css} on {}:\n{}",
                self.url().await,
                self.source().await
            ),
        }
    }

    /// Polls until the current URL satisfies `ok`; panics with the page after `within`.
    pub async fn wait_for_url(&self, within: Duration, what: &str, ok: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let url = self.url().await;
            if ok(&url) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the browser did not get to {what} within {within:?}; it is at {url}:\n{}",
                    self.source().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The browser log's entries since the last call (chromedriver hands each entry out once):
    /// console messages, failed loads, and Content-Security-Policy violations.
    pub async fn browser_log(&self) -> Vec<LogEntry> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        v.as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_owned(),
                source: e["source"].as_str().unwrap_or_default().to_owned(),
                message: e["message"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// Ends the session: Chromium exits. Also done on drop.
    fn quit(&mut self) {
        if self.session_id.is_empty() {
            return;
        }
        // Drop may run inside or outside a runtime: a thread of its own with its own runtime.
        let url = std::mem::take(&mut self.session);
        self.session_id.clear();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async move {
                reqwest::Client::new()
                    .delete(url)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
            })
            .ok()
        })
        .join();
        if let Some(chromium) = self.chromium.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while chromium.alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            chromium.kill();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.quit();
        if let Some(mut c) = self.driver.take() {
            // The group's id is chromedriver's pid, which stays ours until it is reaped below.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Element<'_> {
    fn path(&self, what: &str) -> String {
        format!("/element/{}/{what}", self.id)
    }

    /// Clicks it (and waits for a navigation that starts).
    pub async fn click(&self) {
        self.browser
            .call(
                reqwest::Method::POST,
                &format!("{}{}", self.browser.session, self.path("click")),
                Some(json!({})),
            )
            .await
            .unwrap_or_else(|e| panic!("click on {}: {e}", self.css));
    }

    /// Types `text` into it.
    pub async fn send_keys(&self, text: &str) {
        self.browser
            .call(
                reqwest::Method::POST,
                &format!("{}{}", self.browser.session, self.path("value")),
                Some(json!({"text": text})),
            )
            .await
            .unwrap_or_else(|e| panic!("typing into {}: {e}", self.css));
    }

    /// Its rendered text.
    pub async fn text(&self) -> String {
        let v = self
            .browser
            .cmd(reqwest::Method::GET, &self.path("text"), None)
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// A DOM property (`value`, `type`, `disabled`, …).
    pub async fn property(&self, name: &str) -> Value {
        self.browser
            .cmd(
                reqwest::Method::GET,
                &self.path(&format!("property/{name}")),
                None,
            )
            .await
    }

    /// Whether it is displayed.
    pub async fn displayed(&self) -> bool {
        self.browser
            .cmd(reqwest::Method::GET, &self.path("displayed"), None)
            .await
            == true
    }
}
