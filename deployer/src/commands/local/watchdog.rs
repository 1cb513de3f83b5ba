//! The local stack's safety net: a small shell process that waits for this program to end,
//! however it ends (an error, a second Ctrl-C, a kill), and then kills the demo IdP, stops
//! PostgreSQL and removes the stack's folder. It learns of the end from its standard input, a
//! pipe only this program holds: the pipe closes when the program exits, and `read` returns.
//! On an orderly stop everything is already gone and its steps find nothing to do.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long an orderly stop waits for the watchdog's (idle) steps.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// The file in the stack's folder that holds the demo IdP's process id.
pub const IDP_PID_FILE: &str = "idp.pid";

const SCRIPT: &str = r#"read _ignored
d=$1; shift
if [ -f "$d/idp.pid" ]; then kill -9 "$(cat "$d/idp.pid")" 2>/dev/null; fi
if [ -f "$d/pg/data/postmaster.pid" ]; then "$@" >/dev/null 2>&1; fi
rm -rf "$d"
"#;

/// The running watchdog.
pub struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Starts it for the stack folder `dir`; `pg_stop` is the command that stops the cluster at
    /// once (run only when the cluster's pid file is there).
    pub fn start(dir: &Path, pg_stop: &Command) -> Result<Watchdog> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SCRIPT)
            .arg("claude-gateway-local-watchdog")
            .arg(dir)
            .arg(pg_stop.get_program())
            .args(pg_stop.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Out of the terminal's process group, so a Ctrl-C does not end it before its time.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| {
            Error::failed(format!("cannot start sh for the clean-up watchdog: {e}"))
        })?;
        Ok(Watchdog { child })
    }

    /// Closes its pipe and waits (at most a minute) for it to finish.
    pub fn finish(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + FINISH_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(Error::failed(
                        "the clean-up watchdog did not finish within a minute",
                    ));
                }
            }
        }
    }
}
