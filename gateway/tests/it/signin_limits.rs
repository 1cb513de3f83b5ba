//! Sign-in under outages and abuse: a PostgreSQL outage reads as `503 temporarily_unavailable`,
//! never as a rate limit; an IdP that is down is not asked again on every page view; refresh
//! grants are rate-limited before the IdP is called.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::support::gateway::{config, config_oidc, Gateway};
use crate::support::http::{get, raw, Response};
use crate::support::pg::{shared, Cluster};

fn post_form(port: u16, path: &str, body: &str, extra: &str) -> Response {
    raw(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}{extra}",
            body.len()
        ),
        body.as_bytes(),
    )
}

fn json(r: &Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

/// With PostgreSQL down, starting a sign-in and submitting a code are answered as a passing
/// outage (`503 temporarily_unavailable`, "try again shortly"), not as too many attempts; when it
/// is back, sign-in works again by itself.
#[test]
fn a_store_outage_is_unavailable_not_a_rate_limit() {
    let pg = Cluster::start();
    let url = pg.new_db();
    let gw = Gateway::start(|port| config(port, &url, ""), &[]);
    let start = |gw: &Gateway| post_form(gw.port, "/oauth/device_authorization", "", "");
    assert_eq!(start(&gw).status, 200);

    pg.pg_stop();
    let r = start(&gw);
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{r:?}\n{}",
        gw.stderr()
    );
    assert!(!r.body.contains("Too many"), "{}", r.body);
    let origin = format!("\r\nOrigin: http://127.0.0.1:{}", gw.port);
    let page = post_form(gw.port, "/device", "user_code=BCDF-GHJK", &origin);
    assert_eq!(page.status, 503, "{page:?}");
    assert!(page.body.contains("Try again shortly"), "{}", page.body);
    assert!(!page.body.contains("Too many"), "{}", page.body);
    let audited = gw.audit("device.authorize");
    assert_eq!(audited.last().unwrap()["result"], "error", "{audited:?}");

    pg.pg_start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = start(&gw);
        if r.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    gw.assert_no_secrets();
}

/// An IdP (or a forward proxy) that answers every request with 503, counting connections.
pub(crate) fn failing_idp() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, hits)
}

/// While the IdP is down, many views of the verification page cost a bounded number of discovery
/// attempts (one in flight, then a back-off window of 5 s doubling to 60 s), not one each; and
/// refresh grants past `rate_limits.refresh` are refused before the IdP is called.
#[test]
fn a_dead_idp_is_not_asked_on_every_request() {
    let (idp_port, hits) = failing_idp();
    let oidc = format!(
        "issuer: 'http://127.0.0.1:{idp_port}', client_id: gateway-client, client_secret: idp-client-secret"
    );
    let upstream = "  - provider: bedrock
    region: us-east-1
    auth: {aws_access_key_id: AKIATESTTESTTEST, aws_secret_access_key: test-aws-secret}";
    let url = shared().new_db();
    let gw = Gateway::start(
        |port| {
            config_oidc(
                port,
                &url,
                upstream,
                &oidc,
                "rate_limits: {refresh: {max: 2, window_seconds: 600}}",
            )
        },
        &[],
    );
    const VIEWS: usize = 30;
    for _ in 0..VIEWS {
        assert_eq!(get(gw.port, "/device", &[]).status, 200);
    }
    let asked = hits.load(Ordering::SeqCst);
    assert!(
        (1..=4).contains(&asked),
        "{VIEWS} page views asked the IdP {asked} times\n{}",
        gw.stderr()
    );

    let refresh = || {
        post_form(
            gw.port,
            "/oauth/token",
            "grant_type=refresh_token&refresh_token=abc",
            "",
        )
    };
    for _ in 0..2 {
        let r = refresh();
        assert_eq!(
            (r.status, json(&r)["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "{r:?}"
        );
    }
    let r = refresh();
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (429, Some("slow_down")),
        "{r:?}"
    );
    let refreshes = gw.audit("session.refresh");
    assert_eq!(refreshes.last().unwrap()["err"], "rate_limited");
    gw.assert_no_secrets();
}
