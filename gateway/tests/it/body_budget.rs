//! Each route's body budget against a real gateway over raw sockets: sign-in forms are cut off at
//! their few KiB whether chunked or not, without the process growing; a body that trickles in is
//! answered 408 at its deadline; a client over its sign-in rate limit is refused from the request
//! head, before it sends a byte of body; a Messages body of a pathological shape is refused 400 on
//! both Messages routes.

use std::time::Duration;

use crate::support::flood::{drip, head_only, post, Framing};
use crate::support::gateway::{config, token, Gateway};
use crate::support::http::{get, raw};
use crate::support::pg::shared;

const MIB: u64 = 1 << 20;
const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

fn start(extra: &str) -> Gateway {
    let url = shared().new_db();
    let extra = extra.to_owned();
    Gateway::start(move |port| config(port, &url, &extra), &[])
}

#[test]
fn large_sign_in_posts_are_refused_without_growing_the_process() {
    let gw = start("");
    for _ in 0..20 {
        get(gw.port, "/healthz", &[]);
    }
    let before = gw.rss_kib();
    assert!(before > 0);
    // Eight at once, as a flood would: chunked (no length to refuse from the head) and with a
    // length, to each sign-in route that takes a body.
    let routes = [
        "/oauth/token",
        "/oauth/device_authorization",
        "/device",
        "/device/deny",
    ];
    let posts: Vec<_> = (0..8)
        .map(|i| {
            let port = gw.port;
            let path = routes[i % routes.len()];
            let framing = if i < 4 {
                Framing::Chunked
            } else {
                Framing::Length
            };
            std::thread::spawn(move || (path, post(port, path, FORM, 8 * MIB, framing)))
        })
        .collect();
    for p in posts {
        let (path, (res, sent)) = p.join().unwrap();
        assert_eq!(res.status, 413, "{path}: {res:?}");
        assert!(sent < 8 * MIB, "{path}: the whole body went in");
    }
    let after = gw.rss_kib();
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert_eq!(get(gw.port, "/healthz", &[]).status, 200, "still serving");
}

#[test]
fn a_body_that_trickles_in_is_answered_408_at_its_deadline() {
    let gw = start("limits: {small_body_read_timeout_seconds: 2}\n");
    let res = drip(
        gw.port,
        "/oauth/token",
        FORM,
        200,
        Duration::from_millis(100),
    );
    assert_eq!(res.status, 408, "{res:?}");
    assert!(res.body.contains("not received in time"), "{res:?}");
    assert_eq!(get(gw.port, "/healthz", &[]).status, 200, "still serving");
}

#[test]
fn a_client_over_its_sign_in_limit_is_refused_before_its_body() {
    let gw = start("rate_limits: {device_authorization: {max: 2, window_seconds: 60}, device_verify: {max: 1, window_seconds: 60}}\n");
    for _ in 0..2 {
        let (res, _) = post(
            gw.port,
            "/oauth/device_authorization",
            FORM,
            0,
            Framing::Length,
        );
        assert_eq!(res.status, 200, "{res:?}");
    }
    // The head announces a body that never comes: only a check made from the head can answer.
    let res = head_only(gw.port, "/oauth/device_authorization", FORM, 100);
    assert_eq!(res.status, 429, "{res:?}");
    assert!(res.body.contains("slow_down"), "{res:?}");

    let origin = format!("Origin: http://127.0.0.1:{}\r\n{FORM}", gw.port);
    let (res, _) = post(gw.port, "/device", &origin, 0, Framing::Length);
    assert_ne!(res.status, 429, "{res:?}");
    let res = head_only(gw.port, "/device/deny", &origin, 100);
    assert_eq!(res.status, 429, "{res:?}");
    assert!(res.body.contains("Too many attempts"), "{res:?}");
    let denied = gw.audit("device.verify");
    assert!(
        denied
            .iter()
            .any(|e| e["result"] == "rate_limited" && e["action"] == "deny"),
        "{denied:?}"
    );
}

#[test]
fn pathological_message_bodies_are_refused_on_both_messages_routes() {
    let gw = start("");
    let bearer = token("dev1", &["eng"]);
    let deep = format!(
        r#"{{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{{"role":"user","content":"hi"}}],"metadata":{}{}}}"#,
        "[".repeat(120),
        "]".repeat(120)
    );
    let wide = format!(
        r#"{{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{{"role":"user","content":"hi"}}],"x":[{}0]}}"#,
        "0,".repeat(300_000)
    );
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        for (body, says) in [(&deep, "nested too deeply"), (&wide, "too many values")] {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nanthropic-version: 2023-06-01\r\nContent-Length: {}",
                gw.port,
                body.len()
            );
            let res = raw(gw.port, &head, body.as_bytes());
            assert_eq!(res.status, 400, "{path}: {res:?}");
            let v: serde_json::Value = serde_json::from_str(&res.body).unwrap();
            assert_eq!(v["error"]["type"], "invalid_request_error", "{path}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(says),
                "{path}: {v}"
            );
        }
    }
}
