//! A local moto server (AWS APIs emulated on loopback) for agent-access tests: STS, S3, Logs.
//! moto answers `AssumeRole` for any role and checks no session policy or tag (tests of those are
//! pure, in the library).
//!
//! Needs `python3` with `moto[server]` (scripts/install-test-deps installs it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pg::free_port;

/// The keys moto accepts from the gateway (any keys work; these are moto's customary ones).
pub const ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// A running moto server, stopped on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (run scripts/install-test-deps)");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if answers(port) {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Moto {
    /// Runs the real `aws` CLI against this moto in `region` with moto's keys (as the project's
    /// account, to seed it); panics with its stderr when it fails.
    pub fn aws(&self, region: &str, args: &[&str]) {
        let out = Command::new("aws")
            .args(args)
            .args(["--endpoint-url", &self.url, "--region", region])
            .envs(ENV)
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .output()
            .expect("run the aws CLI (scripts/install-test-deps installs it)");
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Whether moto answers an HTTP request on `port`.
fn answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/data.json HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
