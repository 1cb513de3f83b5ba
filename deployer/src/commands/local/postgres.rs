//! A throwaway PostgreSQL cluster for the local stack: the system's server binaries, `initdb`
//! into the stack's folder, a free loopback port, a random password, and run as the `postgres`
//! user when the command runs as root (the server refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use claude_gateway::config::{Env, ProcessEnv};

use super::{free_port, random_hex};
use crate::error::{Error, Result};

/// The variable that names the folder holding `initdb` and `pg_ctl`, over the search below.
pub const BIN_VAR: &str = "LOCAL_PG_BIN";

/// What to install when the server binaries are missing.
pub const INSTALL_HINT: &str =
    "install the PostgreSQL server (Debian/Ubuntu: sudo apt install postgresql; \
Fedora: sudo dnf install postgresql-server; macOS: brew install postgresql@17), or name the folder \
holding initdb and pg_ctl with LOCAL_PG_BIN";

/// A running cluster; [`Postgres::stop`] stops it (the stack's folder goes with the stack).
pub struct Postgres {
    bin: Option<PathBuf>,
    data: PathBuf,
    as_user: Option<String>,
    /// The loopback port it listens on.
    pub port: u16,
    password: String,
}

/// The folder holding the server binaries: [`BIN_VAR`], the newest `/usr/lib/postgresql/*/bin`
/// (Debian), `/usr/pgsql-*/bin` (PGDG RPMs) or a Homebrew keg; `None` when `initdb` is on PATH
/// instead. An error naming the package when there is none.
pub fn find_bin(env: &dyn Env) -> Result<Option<PathBuf>> {
    if let Some(dir) = env.var(BIN_VAR).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return Ok(Some(dir));
        }
        return Err(Error::failed(format!(
            "{BIN_VAR}={} holds no initdb: {INSTALL_HINT}",
            dir.display()
        )));
    }
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    for (parent, prefix, suffix) in [
        ("/usr/lib/postgresql", "", "bin"),
        ("/usr", "pgsql-", "bin"),
        ("/opt/homebrew/opt", "postgresql", "bin"),
        ("/usr/local/opt", "postgresql", "bin"),
    ] {
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = name.strip_prefix(prefix) else {
                continue;
            };
            let bin = entry.path().join(suffix);
            if !bin.join("initdb").is_file() {
                continue;
            }
            let major = version
                .trim_start_matches('@')
                .split('.')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            found.push((major, bin));
        }
    }
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(Some(bin));
    }
    if on_path("initdb") && on_path("pg_ctl") {
        return Ok(None);
    }
    Err(Error::failed(format!(
        "the PostgreSQL server binaries (initdb, pg_ctl) were not found: {INSTALL_HINT}"
    )))
}

fn on_path(name: &str) -> bool {
    ProcessEnv
        .var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|d| Path::new(d).join(name).is_file())
}

/// Whether this process runs as root.
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// The command that runs `tool` of the cluster's binaries (as the server's user when root).
    pub fn command_for(bin: Option<&Path>, as_user: Option<&str>, tool: &str) -> Command {
        let program = bin
            .map(|b| b.join(tool).display().to_string())
            .unwrap_or_else(|| tool.to_owned());
        match as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", &program]);
                c
            }
            None => Command::new(program),
        }
    }

    fn command(&self, tool: &str) -> Command {
        Self::command_for(self.bin.as_deref(), self.as_user.as_deref(), tool)
    }

    /// `initdb` into `<dir>/data` and start the server on a free loopback port; `dir` is made
    /// for it (owned by the server's user when root). Waits at most 60 s for it to accept
    /// connections.
    pub fn start(bin: Option<PathBuf>, dir: &Path, as_user: Option<String>) -> Result<Postgres> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::failed(format!("cannot create {}: {e}", dir.display())))?;
        if let Some(user) = &as_user {
            let ok = Command::new("chown")
                .arg(user)
                .arg(dir)
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(Error::failed(format!(
                    "running as root, the server must run as the {user} user, and {} could not be given to it (is there a {user} user? the postgresql package makes it)",
                    dir.display()
                )));
            }
        }
        let password = random_hex(24)?;
        let pwfile = dir.join("pwfile");
        // The superuser's password: readable by the server's user only.
        crate::state::write_private(&pwfile, &format!("{password}\n"))
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", pwfile.display())))?;
        if let Some(user) = &as_user {
            let _ = Command::new("chown").arg(user).arg(&pwfile).status();
        }
        let pg = Postgres {
            bin,
            data: dir.join("data"),
            as_user,
            port: free_port()?,
            password,
        };
        let data = pg.data.display().to_string();
        let pwfile = pwfile.display().to_string();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--pwfile",
                &pwfile,
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let _ = std::fs::remove_file(dir.join("pwfile"));
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            pg.port,
            dir.display()
        );
        let log = dir.join("log").display().to_string();
        pg.run(
            "pg_ctl",
            &[
                "-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start",
            ],
        )
        .map_err(|e| {
            let tail = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            Error::failed(format!("{e}\n{}", last_lines(&tail, 10)))
        })?;
        Ok(pg)
    }

    /// The URL the gateway connects with.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// Stops the server (fast: open sessions are ended) and waits at most 60 s for it to exit.
    /// A server that is already gone (its pid file removed) is stopped.
    pub fn stop(&self) -> Result<()> {
        if !self.data.join("postmaster.pid").exists() {
            return Ok(());
        }
        let data = self.data.display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", "60", "stop"],
        )
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::failed(format!("cannot run {tool}: {e} ({INSTALL_HINT})")))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::failed(format!(
            "{tool} failed ({}): {}",
            out.status,
            last_lines(&String::from_utf8_lossy(&out.stderr), 10)
        )))
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
