//! `/readyz` follows the store: 503 while PostgreSQL is down, ready again by itself when it
//! returns, ready throughout a configured grace window. `/healthz` never looks at the store.

use std::time::{Duration, Instant};

use crate::support::gateway::{config, Gateway};
use crate::support::http::get;
use crate::support::pg::Cluster;

fn poll_until(port: u16, path: &str, status: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if get(port, path, &[]).status == status {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn readiness_follows_postgres_and_recovers_by_itself() {
    let pg = Cluster::start();
    let url = pg.new_db();
    let gw = Gateway::start(|port| config(port, &url, ""), &[]);
    assert_eq!(get(gw.port, "/readyz", &[]).status, 200);

    pg.pg_stop();
    assert!(
        poll_until(gw.port, "/readyz", 503, Duration::from_secs(20)),
        "{}",
        gw.stderr()
    );
    let healthz = get(gw.port, "/healthz", &[]);
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok"));

    pg.pg_start();
    assert!(
        poll_until(gw.port, "/readyz", 200, Duration::from_secs(30)),
        "{}",
        gw.stderr()
    );
    assert_eq!(get(gw.port, "/healthz", &[]).status, 200);
    gw.assert_no_secrets();
}

#[test]
fn readiness_grace_rides_out_a_short_outage() {
    let pg = Cluster::start();
    let url = pg.new_db();
    let gw = Gateway::start(
        |port| {
            config(port, &url, "").replace(
                "connect_timeout_seconds: 2",
                "connect_timeout_seconds: 2, readiness_grace_seconds: 3600",
            )
        },
        &[],
    );
    assert_eq!(get(gw.port, "/readyz", &[]).status, 200);
    pg.pg_stop();
    for _ in 0..3 {
        assert_eq!(
            get(gw.port, "/readyz", &[]).status,
            200,
            "inside the grace window"
        );
    }
    pg.pg_start();
}

/// An idle gateway still writes a line every hour (the first at start): the observability
/// stack's silent-gateway alarm reads the log group's incoming events, so silence must mean a
/// stopped gateway, not a quiet night.
#[test]
fn an_idle_gateway_says_it_is_alive() {
    let url = crate::support::pg::shared().new_db();
    let gw = Gateway::start(|port| config(port, &url, ""), &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gw.stderr().contains("hourly housekeeping:") {
        assert!(
            Instant::now() < deadline,
            "no housekeeping line:\n{}",
            gw.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
