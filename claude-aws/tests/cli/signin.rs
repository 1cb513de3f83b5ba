//! `login`, the session it keeps, its refresh, and `logout`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::stub::{json, Reply, Stub};
use crate::Machine;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A gateway whose device grant is pending, then asks to slow down, then signs in.
fn signing_in_gateway() -> Stub {
    Stub::start(|req, before| {
        let polls = before
            .iter()
            .filter(|r| r.route() == "POST /oauth/token")
            .count();
        match req.route().as_str() {
            "POST /oauth/device_authorization" => {
                let host = req.header("host").unwrap_or_default().to_owned();
                json(
                    200,
                    json!({"device_code": "dc-secret", "user_code": "BCDF-GHJK",
                    "verification_uri": format!("http://{host}/device"),
                    "verification_uri_complete": format!("http://{host}/device?user_code=BCDF-GHJK"),
                    "expires_in": 60, "interval": 1, "login_notice": "Use your work account."}),
                )
            }
            "POST /oauth/token" if req.form("device_code").as_deref() != Some("dc-secret") => {
                json(400, json!({"error": "expired_token"}))
            }
            "POST /oauth/token" => match polls {
                0 => json(400, json!({"error": "authorization_pending"})),
                1 => json(429, json!({"error": "slow_down"})),
                _ => json(
                    200,
                    json!({"access_token": "at-1", "token_type": "Bearer",
                    "expires_in": 3600, "refresh_token": "rt-1"}),
                ),
            },
            _ => Reply(404, "{}".into()),
        }
    })
}

#[test]
fn login_prints_the_parseable_line_polls_politely_and_keeps_the_session_0600() {
    let gw = signing_in_gateway();
    let m = Machine::new();
    let mut child = m
        .cmd(&["login", "--no-browser", "--gateway", &gw.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The line is there while the login is still waiting: a wrapper can act on it.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    let open_line = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no Open line: {lines:?}"
        );
        if line.starts_with("Open ") {
            break line;
        }
        lines.push(line);
    };
    let (url, code) = open_line
        .trim_end()
        .strip_prefix("Open ")
        .unwrap()
        .split_once(" and confirm the code ")
        .unwrap();
    assert_eq!(url, format!("{}/device?user_code=BCDF-GHJK", gw.url));
    assert_eq!(code, "BCDF-GHJK");
    assert_eq!(lines, ["Notice: Use your work account.\n"]);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(
        rest.contains(&format!("Signed in to {}.", gw.url)),
        "{rest}"
    );
    assert!(!rest.contains("dc-secret") && !rest.contains("at-1") && !rest.contains("rt-1"));

    // RFC 8628 polling: the interval, then five seconds more after slow_down.
    let polls = gw.to("POST /oauth/token");
    assert_eq!(polls.len(), 3);
    assert!(polls
        .iter()
        .all(|p| p.form("grant_type").as_deref() == Some(DEVICE_GRANT)));
    assert!(polls[1].at - polls[0].at >= Duration::from_secs(1));
    assert!(
        polls[2].at - polls[1].at >= Duration::from_secs(6),
        "slow_down adds 5 s to the 1 s interval"
    );
    let start = &gw.to("POST /oauth/device_authorization")[0];
    assert_eq!(start.form("surface").as_deref(), Some("claude_aws"));

    #[cfg(unix)]
    {
        assert_eq!(crate::mode(&m.session_file()), 0o600);
        assert_eq!(crate::mode(&m.config_dir()), 0o700);
    }
    let s = m.session();
    assert_eq!(s["gateway"], gw.url.as_str());
    assert_eq!(s["refresh_token"], "rt-1");
    assert_eq!(s["access_token"], "at-1");
    assert!(s.get("AccessKeyId").is_none());

    let r = m.run(&["logout"]);
    assert_eq!(r.code, Some(0));
    assert!(r.stderr.contains(&format!("Signed out of {}.", gw.url)));
    assert!(!m.session_file().exists());
}

#[test]
fn a_denied_or_expired_sign_in_ends_with_its_exit_code() {
    for (error, code) in [("access_denied", 4), ("expired_token", 3)] {
        let gw = Stub::start(move |req, _| match req.route().as_str() {
            "POST /oauth/device_authorization" => json(
                200,
                json!({"device_code": "d", "user_code": "BCDF-GHJK",
                "verification_uri": "http://127.0.0.1/device", "expires_in": 60, "interval": 1}),
            ),
            _ => json(400, json!({"error": error})),
        });
        let m = Machine::new();
        let r = m.run(&["login", "--no-browser", "--gateway", &gw.url]);
        assert_eq!(r.code, Some(code), "{error}: {r:?}");
        assert!(!m.session_file().exists());
    }
}

/// A gateway that refreshes (rotating the refresh token) and serves credentials.
fn refreshing_gateway() -> Stub {
    Stub::start(|req, _| match req.route().as_str() {
        "POST /oauth/token" if req.form("refresh_token").as_deref() == Some("rt-old") => json(
            200,
            json!({"access_token": "at-new", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-new"}),
        ),
        "POST /oauth/token" => json(401, json!({"error": "invalid_grant"})),
        "GET /v1/aws/credentials" if req.header("authorization") == Some("Bearer at-new") => json(
            200,
            json!({"AccessKeyId": "ASIAFRESH", "SecretAccessKey": "sk", "Token": "st", "Expiration": "2030-01-01T00:00:00Z"}),
        ),
        "GET /v1/aws/credentials" => json(
            401,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "expired"}}),
        ),
        _ => Reply(404, "{}".into()),
    })
}

#[test]
fn an_access_token_near_its_end_is_refreshed_and_the_rotated_refresh_token_kept() {
    let gw = refreshing_gateway();
    let m = Machine::new();
    m.seed(&gw.url, "at-old", 59, Some("rt-old"));
    let r = m.run(&["credentials", "--project", "pay"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("ASIAFRESH"));
    let refreshes = gw.to("POST /oauth/token");
    assert_eq!(refreshes.len(), 1);
    assert_eq!(
        refreshes[0].form("grant_type").as_deref(),
        Some("refresh_token")
    );
    let s = m.session();
    assert_eq!(
        (s["access_token"].as_str(), s["refresh_token"].as_str()),
        (Some("at-new"), Some("rt-new"))
    );
    #[cfg(unix)]
    assert_eq!(crate::mode(&m.session_file()), 0o600);

    // The fresh token is used as is the next time: no second refresh.
    let r = m.run(&["credentials", "--project", "pay"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(gw.to("POST /oauth/token").len(), 1);
}

#[test]
fn a_refused_token_is_refreshed_once_then_the_sign_in_is_over() {
    let gw = refreshing_gateway();
    let m = Machine::new();
    // Looks fresh, but the gateway refuses it: one refresh, then the call again.
    m.seed(&gw.url, "at-revoked", 3600, Some("rt-old"));
    let r = m.run(&["credentials", "--project", "pay"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(gw.to("GET /v1/aws/credentials").len(), 2);

    // A refresh token the gateway no longer takes: sign in again, exit 3.
    m.seed(&gw.url, "at-revoked", 3600, Some("rt-gone"));
    let r = m.run(&["credentials", "--project", "pay"]);
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stderr.contains("claude-aws login"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}
