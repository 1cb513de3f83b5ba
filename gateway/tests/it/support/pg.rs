//! Throwaway PostgreSQL clusters for tests: `initdb` into a temporary directory, started on a free
//! loopback port. One shared cluster serves most tests (a fresh database each); tests that stop
//! the server start a private one.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use claude_gateway::config::{Env, ProcessEnv};

/// A running cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_user: Option<String>,
}

fn bin_dir() -> PathBuf {
    if let Ok(dir) = ProcessEnv.var("GATEWAY_TEST_PG_BIN").ok_or(()) {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_default()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A free loopback port (released before use; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

impl Cluster {
    /// initdb + start. Panics with a clear message when PostgreSQL is not installed.
    pub fn start() -> Cluster {
        let bin = bin_dir();
        assert!(
            bin.join("initdb").exists() || which("initdb"),
            "PostgreSQL server binaries not found: install postgresql (scripts/install-test-deps) or set GATEWAY_TEST_PG_BIN"
        );
        let dir = tempfile::Builder::new()
            .prefix("gw-pg-")
            .tempdir()
            .expect("tempdir");
        let as_user = running_as_root().then(|| {
            ProcessEnv
                .var("GATEWAY_TEST_PG_USER")
                .unwrap_or_else(|| "postgres".into())
        });
        if let Some(user) = &as_user {
            let ok = Command::new("chown")
                .args(["-R", user])
                .arg(dir.path())
                .status()
                .map(|s| s.success());
            assert_eq!(
                ok.ok(),
                Some(true),
                "chown of the test cluster directory to {user} failed"
            );
        }
        let c = Cluster {
            dir,
            bin,
            port: free_port(),
            as_user,
        };
        let data = c.data();
        c.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // One role must present a real password, so the password path is tested for real.
        let hba = "host all pwuser 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\nlocal all all trust\n";
        std::fs::write(c.dir.path().join("data/pg_hba.conf"), hba).expect("write pg_hba.conf");
        c.pg_start();
        c.watchdog();
        c
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str) -> String {
        let p = self.bin.join(name);
        if p.exists() {
            p.display().to_string()
        } else {
            name.to_owned()
        }
    }

    fn command(&self, name: &str) -> Command {
        match &self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", &self.tool(name)]);
                c
            }
            None => Command::new(self.tool(name)),
        }
    }

    fn run(&self, name: &str, args: &[&str]) {
        let out = self
            .command(name)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run postgres tool");
        assert!(
            out.status.success(),
            "{name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again). `fsync=off` is safe for tests: a stopped server loses nothing a
    /// process kill can lose, and commits stay synchronous so an acknowledged commit survives.
    pub fn pg_start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &opts,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server at once.
    pub fn pg_stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Runs SQL as the superuser in database `postgres`.
    pub fn psql(&self, sql: &str) {
        let port = self.port.to_string();
        let psql = self.tool("psql");
        let out = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A URL for `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a database with a unique name and returns its URL.
    pub fn new_db(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let port = self.port.to_string();
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &name],
        );
        self.url(&name)
    }

    /// Stops the cluster and removes its folder when this test process exits, even if statics
    /// are never dropped (a suite run leaves no cluster, and no gigabyte of data, behind).
    fn watchdog(&self) {
        let stop = format!(
            "{} -D {} -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
            self.tool("pg_ctl"),
            self.data(),
            self.dir.path().display()
        );
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; {stop}",
            pid = std::process::id()
        );
        let mut cmd = match &self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", "sh", "-c", &script]);
                c
            }
            None => {
                let mut c = Command::new("sh");
                c.args(["-c", &script]);
                c
            }
        };
        let _ = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn which(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The cluster shared by the tests of this process.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(Cluster::start)
}

/// A store on `url` with its migrations applied (pool of 8).
pub async fn migrated_store(url: &str) -> claude_gateway::store::Store {
    let opts = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url).unwrap();
    let s = claude_gateway::store::Store::connect(
        opts,
        8,
        std::time::Duration::from_secs(10),
        3,
        std::time::Duration::from_millis(200),
    )
    .await
    .unwrap();
    s.migrate().await.unwrap();
    s
}

/// A store on a new database of the shared cluster, migrated.
pub async fn fresh_store() -> claude_gateway::store::Store {
    migrated_store(&shared().new_db()).await
}
