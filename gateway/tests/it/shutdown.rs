//! SIGTERM stops accepting and exits cleanly once open connections are done.

use std::time::Duration;

use crate::support::gateway::{config, Gateway};
use crate::support::pg::shared;

#[test]
fn sigterm_exits_cleanly_and_closes_the_port() {
    let url = shared().new_db();
    let mut gw = Gateway::start(
        |port| config(port, &url, ""),
        &[("CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS", "5000")],
    );
    gw.signal("TERM");
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        gw.stderr()
    );
    assert!(gw.stderr().contains("shutdown complete"), "{}", gw.stderr());
    assert!(std::net::TcpStream::connect(("127.0.0.1", gw.port)).is_err());
    gw.assert_no_secrets();
}

#[test]
fn an_invalid_drain_setting_fails_boot() {
    let url = shared().new_db();
    let port = crate::support::pg::free_port();
    let mut gw = Gateway::spawn(
        &config(port, &url, ""),
        port,
        &[("CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS", "-5")],
    );
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(1));
    assert!(
        gw.stderr().contains("CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS"),
        "{}",
        gw.stderr()
    );
}
