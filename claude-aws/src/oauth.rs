//! The gateway's OAuth endpoints, as the `claude` client uses them: `POST
//! /oauth/device_authorization` starts a device grant (RFC 8628), `POST /oauth/token` polls it
//! and refreshes the session (`grant_type=refresh_token`). The gateway asks for no `client_id`;
//! the `surface` parameter names this client in its audit trail.

use serde_json::Value;

use crate::client::{Answer, Gateway};
use crate::error::{printable, Error};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A started device grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStart {
    /// Polled for at the token endpoint (a secret: never printed).
    pub device_code: String,
    /// Shown to the person, confirmed on the page.
    pub user_code: String,
    /// The page with the code filled in.
    pub verification_uri_complete: String,
    /// Seconds until the grant lapses.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
    /// The operator's notice for the sign-in, if any.
    pub login_notice: Option<String>,
}

/// Tokens from the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The bearer token for API calls.
    pub access_token: String,
    /// Seconds it lives.
    pub expires_in: i64,
    /// A (new) refresh token, if the gateway gave one.
    pub refresh_token: Option<String>,
}

/// What one poll of a device grant said.
#[derive(Clone, PartialEq, Eq)]
pub enum Poll {
    /// Signed in.
    Done(Tokens),
    /// Not yet.
    Pending,
    /// Not yet, and poll less often.
    SlowDown,
}

fn text(v: &Value, key: &str, max: usize) -> Option<String> {
    v[key]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control))
        .map(str::to_owned)
}

/// `POST /oauth/device_authorization`.
pub async fn start(gw: &Gateway) -> Result<DeviceStart, Error> {
    let a = gw
        .post_form("/oauth/device_authorization", &[("surface", "claude_aws")])
        .await?;
    if !a.ok() {
        return Err(match a.status {
            404 | 405 => Error::Usage(format!(
                "{} does not answer like a claude-gateway (no device sign-in there)",
                gw.base()
            )),
            _ => a.into_error(),
        });
    }
    parse_start(&a.json("the sign-in request")?, gw.base())
}

/// The device authorization answer, checked.
pub fn parse_start(v: &Value, base: &str) -> Result<DeviceStart, Error> {
    let bad =
        |what: &str| Error::Failed(format!("the gateway's sign-in answer has no valid {what}"));
    let device_code = text(v, "device_code", 512).ok_or_else(|| bad("device_code"))?;
    let user_code = text(v, "user_code", 64).ok_or_else(|| bad("user_code"))?;
    let complete = match text(v, "verification_uri_complete", 2048) {
        Some(u) => u,
        None => {
            let uri = text(v, "verification_uri", 2048).ok_or_else(|| bad("verification_uri"))?;
            format!("{uri}?user_code={user_code}")
        }
    };
    // Printed and maybe opened: a web page, and in its normalized form (no spaces).
    let complete = match url::Url::parse(&complete) {
        Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && base.starts_with("http://")) => {
            u.to_string()
        }
        _ => return Err(bad("verification_uri")),
    };
    // Bounded whatever the gateway says: at least 1 s between polls, at most 60 s; a grant lives
    // at most 30 minutes.
    let interval = v["interval"].as_u64().unwrap_or(5).clamp(1, 60);
    let expires_in = v["expires_in"].as_u64().unwrap_or(600).clamp(1, 1800);
    Ok(DeviceStart {
        device_code,
        user_code,
        verification_uri_complete: complete,
        expires_in,
        interval,
        login_notice: v["login_notice"].as_str().map(|n| printable(n, 500)),
    })
}

/// One poll of the device grant.
pub async fn poll(gw: &Gateway, device_code: &str) -> Result<Poll, Error> {
    let a = gw
        .post_form(
            "/oauth/token",
            &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
        )
        .await?;
    if a.ok() {
        return tokens(&a).map(Poll::Done);
    }
    let (code, message) = a.refusal();
    match code.as_deref() {
        Some("authorization_pending") => Ok(Poll::Pending),
        // The gateway also says slow_down (429) for too many sign-ins from one network: that
        // one carries a description and ends the attempt.
        Some("slow_down") if a.status != 429 || message == "slow_down" => Ok(Poll::SlowDown),
        Some("access_denied") => Err(Error::Refused("the sign-in was denied".into())),
        Some("expired_token") => Err(Error::not_signed_in(
            "the sign-in code expired before it was confirmed; start again",
        )),
        _ => Err(a.into_error()),
    }
}

/// `grant_type=refresh_token`: a new access token (and maybe a rotated refresh token).
pub async fn refresh(gw: &Gateway, refresh_token: &str) -> Result<Tokens, Error> {
    let a = gw
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await?;
    if a.ok() {
        return tokens(&a);
    }
    let (code, message) = a.refusal();
    match (a.status, code.as_deref()) {
        (_, Some("invalid_grant")) | (400 | 401, _) => Err(Error::not_signed_in(
            "your sign-in has expired or was revoked",
        )),
        (_, Some("temporarily_unavailable")) => Err(Error::Unreachable(format!(
            "the gateway could not renew your sign-in just now ({message}); try again shortly"
        ))),
        _ => Err(a.into_error()),
    }
}

fn tokens(a: &Answer) -> Result<Tokens, Error> {
    let v = a.json("the token request")?;
    let access_token = text(&v, "access_token", 16 << 10)
        .ok_or_else(|| Error::Failed("the gateway's token answer has no access_token".into()))?;
    Ok(Tokens {
        access_token,
        expires_in: v["expires_in"]
            .as_i64()
            .unwrap_or(300)
            .clamp(0, 31 * 24 * 3600),
        refresh_token: text(&v, "refresh_token", 16 << 10),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_device_answer_is_checked_and_bounded() {
        let v = json!({"device_code": "dc", "user_code": "BCDF-GHJK",
            "verification_uri": "https://gw/device",
            "verification_uri_complete": "https://gw/device?user_code=BCDF-GHJK",
            "expires_in": 600, "interval": 5, "login_notice": "Use\u{1b} SSO"});
        let s = parse_start(&v, "https://gw").unwrap();
        assert_eq!((s.interval, s.expires_in), (5, 600));
        assert_eq!(s.login_notice.as_deref(), Some("Use SSO"));

        let mut v2 = v.clone();
        v2["interval"] = json!(0);
        v2["expires_in"] = json!(1_000_000);
        let s = parse_start(&v2, "https://gw").unwrap();
        assert_eq!((s.interval, s.expires_in), (1, 1800));

        let mut v3 = v.clone();
        v3.as_object_mut()
            .unwrap()
            .remove("verification_uri_complete");
        assert_eq!(
            parse_start(&v3, "https://gw")
                .unwrap()
                .verification_uri_complete,
            "https://gw/device?user_code=BCDF-GHJK"
        );
        for (key, bad) in [
            ("verification_uri_complete", json!("javascript:alert(1)")),
            ("verification_uri_complete", json!("http://gw/device")),
            ("user_code", json!("A\nB")),
            ("device_code", json!(7)),
        ] {
            let mut b = v.clone();
            b[key] = bad;
            assert!(
                matches!(parse_start(&b, "https://gw"), Err(Error::Failed(_))),
                "{key}"
            );
        }
    }
}
