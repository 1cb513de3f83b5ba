//! The device flow's endpoints against a real gateway and PostgreSQL: discovery, device
//! authorization, the token poll's answers, the verification page and its defences.

use std::time::Duration;

use serde_json::Value;

use crate::support::gateway::{config, Gateway};
use crate::support::http::{get, raw};
use crate::support::pg::shared;

fn form(
    port: u16,
    path: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> crate::support::http::Response {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}", body.len());
    for (k, v) in extra {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    raw(port, &head, body.as_bytes())
}

fn json(r: &crate::support::http::Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {r:?}"))
}

fn start(extra: &str) -> Gateway {
    let url = shared().new_db();
    let extra = extra.to_owned();
    Gateway::start(move |port| config(port, &url, &extra), &[])
}

#[test]
fn discovery_and_device_authorization() {
    let gw = start("login_notice: 'Use your corporate account.'\n");
    let base = format!("http://127.0.0.1:{}", gw.port);
    let d = get(gw.port, "/.well-known/oauth-authorization-server", &[]);
    assert_eq!(d.status, 200);
    let d = json(&d);
    assert_eq!(d["issuer"], base.as_str());
    assert_eq!(
        d["device_authorization_endpoint"],
        format!("{base}/oauth/device_authorization")
    );
    assert_eq!(d["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(d["gateway_protocol_version"], 1);
    assert!(d.get("authorization_endpoint").is_none());

    let r = form(
        gw.port,
        "/oauth/device_authorization",
        "surface=claude_code&something_new=1",
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let a = json(&r);
    let code = a["user_code"].as_str().unwrap();
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    assert!(code
        .replace('-', "")
        .bytes()
        .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)));
    assert_eq!(a["device_code"].as_str().unwrap().len(), 43);
    assert_eq!(a["verification_uri"], format!("{base}/device"));
    assert_eq!(
        a["verification_uri_complete"],
        format!("{base}/device?user_code={code}")
    );
    assert_eq!(a["expires_in"], 600);
    assert_eq!(a["interval"], 5);
    assert_eq!(a["login_notice"], "Use your corporate account.");

    // Empty form works too.
    assert_eq!(
        form(gw.port, "/oauth/device_authorization", "", &[]).status,
        200
    );
    let audit = gw.stdout();
    assert!(
        audit.contains("\"evt\":\"device.authorize\"")
            && audit.contains("\"surface\":\"claude_code\"")
    );
    assert!(
        !audit.contains(a["device_code"].as_str().unwrap()),
        "device codes never reach the log"
    );
    gw.assert_no_secrets();
}

#[test]
fn the_token_poll_answers_like_rfc_8628() {
    let gw = start("");
    let a = json(&form(gw.port, "/oauth/device_authorization", "", &[]));
    let dc = a["device_code"].as_str().unwrap();
    let poll = |code: &str| {
        form(gw.port, "/oauth/token", &format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={code}"), &[])
    };

    let r = poll(dc);
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let r = poll(dc);
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (429, Some("slow_down")),
        "polled within the interval"
    );
    let r = poll("not-a-real-device-code");
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (400, Some("expired_token"))
    );

    let r = form(gw.port, "/oauth/token", "device_code=x", &[]);
    assert_eq!(json(&r)["error"], "invalid_request", "no grant_type");
    let r = form(
        gw.port,
        "/oauth/token",
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
        &[],
    );
    assert_eq!(json(&r)["error"], "invalid_request", "no device_code");
    let r = form(
        gw.port,
        "/oauth/token",
        "grant_type=password&username=a",
        &[],
    );
    assert_eq!(json(&r)["error"], "unsupported_grant_type");
    let r = raw(gw.port, "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2", b"{}");
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (400, Some("invalid_request")),
        "JSON bodies are not OAuth forms"
    );
}

#[test]
fn the_verification_page_defends_itself() {
    let gw = start("");
    let a = json(&form(gw.port, "/oauth/device_authorization", "", &[]));
    let code = a["user_code"].as_str().unwrap().to_owned();

    let page = get(gw.port, &format!("/device?user_code={code}"), &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&code) && page.body.contains("formaction=\"/device/deny\""));
    assert!(
        !page.body.contains("<script"),
        "no script, so nothing auto-submits"
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("form-action 'self'")
            && csp.contains("frame-ancestors 'none'")
    );
    let form_page = get(gw.port, "/device", &[]);
    assert!(form_page.body.contains("name=\"user_code\""));

    // A cross-site POST is refused, with or without Origin.
    let body = format!("user_code={code}");
    for headers in [
        vec![],
        vec![("Origin", "https://evil.example.com")],
        vec![("Sec-Fetch-Site", "cross-site")],
    ] {
        let r = form(gw.port, "/device", &body, &headers);
        assert_eq!(r.status, 403, "{headers:?}");
        assert!(r.body.contains("another site"));
    }
    let origin = format!("http://127.0.0.1:{}", gw.port);
    let r = form(
        gw.port,
        "/device",
        "user_code=BCDF-GHJK",
        &[("Origin", &origin)],
    );
    assert!(r.body.contains("not recognized"), "{r:?}");

    // Deny: the poll then says access_denied, once.
    let r = form(
        gw.port,
        "/device/deny",
        &body,
        &[("Sec-Fetch-Site", "same-origin")],
    );
    assert_eq!(r.status, 200);
    let dc = a["device_code"].as_str().unwrap();
    let poll = form(
        gw.port,
        "/oauth/token",
        &format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={dc}"
        ),
        &[],
    );
    assert_eq!(json(&poll)["error"], "access_denied");
    std::thread::sleep(Duration::from_millis(10));
    let again = form(
        gw.port,
        "/oauth/token",
        &format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={dc}"
        ),
        &[],
    );
    assert_eq!(json(&again)["error"], "expired_token");
    let audit = gw.stdout();
    assert!(
        audit.contains("\"result\":\"csrf_rejected\"") && audit.contains("\"evt\":\"device.deny\"")
    );
}

#[test]
fn sign_in_attempts_are_rate_limited_per_address() {
    let gw = start("rate_limits: {device_authorization: {max: 3, window_seconds: 60}, device_verify: {max: 4, window_seconds: 60}}\n");
    for _ in 0..3 {
        assert_eq!(
            form(gw.port, "/oauth/device_authorization", "", &[]).status,
            200
        );
    }
    let r = form(gw.port, "/oauth/device_authorization", "", &[]);
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (429, Some("slow_down"))
    );

    // Guessing user codes: the fifth guess is refused whatever it is.
    let origin = format!("http://127.0.0.1:{}", gw.port);
    for guess in ["BCDFGHJK", "BCDFGHJL", "BCDFGHJM", "BCDFGHJN"] {
        let r = form(
            gw.port,
            "/device",
            &format!("user_code={guess}"),
            &[("Origin", &origin)],
        );
        assert!(r.body.contains("not recognized"), "{r:?}");
    }
    let r = form(
        gw.port,
        "/device",
        "user_code=BCDFGHJP",
        &[("Origin", &origin)],
    );
    assert_eq!(r.status, 429);
    assert!(r.body.contains("Too many attempts"));
}
