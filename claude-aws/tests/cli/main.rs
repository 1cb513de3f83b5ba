//! The `claude-aws` binary as a developer runs it: real processes, a real config directory, and
//! a small local HTTP stand-in for the gateway's `/oauth` and `/v1/aws` routes (the sign-in
//! against the real gateway and IdP is in the gateway's own suite, `gateway/tests/it/claude_aws.rs`).

// A failed setup step should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod commands;
mod signin;
mod stub;
mod usage;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A developer's machine: a home, a config directory, the AWS config file.
pub struct Machine {
    pub home: tempfile::TempDir,
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Machine {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Machine {
        Machine {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("cfg")
    }

    pub fn session_file(&self) -> PathBuf {
        self.config_dir().join("session.json")
    }

    pub fn aws_config(&self) -> PathBuf {
        self.home.path().join(".aws/config")
    }

    /// The stored session, as JSON.
    pub fn session(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.session_file()).unwrap()).unwrap()
    }

    /// A session as `login` leaves it, for `gateway`, with an access token valid `ttl` seconds.
    pub fn seed(&self, gateway: &str, access: &str, ttl: i64, refresh: Option<&str>) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let s = serde_json::json!({"gateway": gateway, "access_token": access,
            "access_expires_at": now + ttl, "refresh_token": refresh});
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(self.session_file(), s.to_string()).unwrap();
    }

    /// The command, in a clean environment: this machine's home and config directory, the PATH.
    #[allow(clippy::disallowed_methods)] // the PATH is passed on, so `exec` finds programs
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_claude-aws"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("CLAUDE_AWS_CONFIG_DIR", self.config_dir())
            .stdin(std::process::Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd(args).output().unwrap().into()
    }
}

/// The permission bits of `path`.
#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
