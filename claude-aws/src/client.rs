//! The HTTP side of talking to the gateway: its address checked (https, or http on loopback
//! only), every call bounded in time (connect 10 s, whole call 30 s) and size (1 MiB), and the
//! gateway's error bodies turned into one readable line.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use crate::error::{printable, Error};

/// The largest answer read from the gateway.
pub const MAX_BODY: usize = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks a gateway address and returns it without a trailing slash. https is required: the
/// session and AWS credentials travel over this connection. Plain http is accepted only for a
/// loopback address, where the traffic never leaves this machine.
pub fn gateway_url(input: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "the gateway address {:?} {why}",
            printable(input, 200)
        ))
    };
    let url = url::Url::parse(input.trim()).map_err(|_| bad("is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or a fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(bad(
                "must use https: tokens and AWS credentials would cross the network in clear \
                 text (http is allowed only for a loopback address such as 127.0.0.1)",
            ))
        }
        _ => return Err(bad("must start with https://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The AWS endpoint of the gateway at `base` (checked, no trailing slash): `<base>/aws/`, where
/// it takes AWS calls signed with its gateway-only credentials.
pub fn proxy_endpoint(base: &str) -> String {
    format!("{base}/aws/")
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A gateway answer: its status and its body (at most [`MAX_BODY`]).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as a JSON object, or a clear error naming `what` was expected.
    pub fn json(&self, what: &str) -> Result<Value, Error> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(Error::Failed(format!(
                "the gateway's answer to {what} is not a JSON object (HTTP {})",
                self.status
            ))),
        }
    }

    /// The gateway's own words for a refusal, from any of its error shapes:
    /// `{"code","message"}`, OAuth's `{"error","error_description"}`, or the
    /// `{"error":{"type","message"}}` envelope. Returns (code, message).
    pub fn refusal(&self) -> (Option<String>, String) {
        let v: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        let text = |v: &Value| v.as_str().map(|s| printable(s, 300));
        let code = text(&v["code"])
            .or_else(|| text(&v["error"]))
            .or_else(|| text(&v["error"]["type"]));
        let message = text(&v["message"])
            .or_else(|| text(&v["error_description"]))
            .or_else(|| text(&v["error"]["message"]))
            .or_else(|| code.clone())
            .unwrap_or_else(|| format!("the gateway answered HTTP {}", self.status));
        (code, message)
    }

    /// The error for this (non-2xx) answer: the gateway's message, and its code for scripts.
    pub fn into_error(self) -> Error {
        let (code, message) = self.refusal();
        let message = match code {
            Some(code) if code != message => format!("{message} ({code})"),
            _ => message,
        };
        Error::from_answer(self.status, message)
    }
}

/// A client for one gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    base: String,
    http: reqwest::Client,
}

impl Gateway {
    /// A client for the gateway at `base` (checked with [`gateway_url`]).
    pub fn new(base: &str) -> Result<Gateway, Error> {
        let base = gateway_url(base)?;
        // TLS is rustls on aws-lc-rs; installing it twice is harmless.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            // A redirect could carry the bearer token elsewhere; the gateway never sends one.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("claude-aws/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Failed(format!("could not set up HTTPS: {e}")))?;
        Ok(Gateway { base, http })
    }

    /// The gateway's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST path` with a form body.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Result<Answer, Error> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        self.send(req).await
    }

    /// `GET path` with the session's bearer token.
    pub async fn get(&self, path: &str, bearer: &str) -> Result<Answer, Error> {
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .header("accept", "application/json");
        self.send(req).await
    }

    /// `POST path` with a JSON body and the session's bearer token.
    pub async fn post_json(&self, path: &str, bearer: &str, body: &Value) -> Result<Answer, Error> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_string());
        self.send(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer, Error> {
        let unreachable = |e: reqwest::Error| {
            let why = if e.is_timeout() {
                "it did not answer in time"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "the connection failed"
            };
            Error::Unreachable(format!(
                "the gateway at {} is unreachable: {why}",
                self.base
            ))
        };
        let mut res = req.send().await.map_err(unreachable)?;
        let status = res.status().as_u16();
        if res.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, body })
    }
}

fn too_large() -> Error {
    Error::Failed("the gateway's answer is larger than 1 MiB; refusing to read it".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert_eq!(
            gateway_url("https://gw.example.com/").unwrap(),
            "https://gw.example.com"
        );
        assert_eq!(
            gateway_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(gateway_url("http://[::1]:80/").unwrap(), "http://[::1]");
        assert_eq!(
            gateway_url("http://localhost:3/").unwrap(),
            "http://localhost:3"
        );
        let e = gateway_url("http://gw.example.com").unwrap_err();
        assert!(matches!(e, Error::Usage(_)));
        assert!(e.to_string().contains("clear text"), "{e}");
        for bad in [
            "gw.example.com",
            "ftp://gw.example.com",
            "https://u:p@gw.example.com",
            "https://gw.example.com/?a=1",
            "http://10.0.0.1",
        ] {
            assert!(matches!(gateway_url(bad), Err(Error::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn refusals_read_every_error_shape_and_never_drive_the_terminal() {
        let a = |status, body: &str| Answer {
            status,
            body: body.as_bytes().to_vec(),
        };
        let (code, msg) = a(
            403,
            r#"{"code":"not_member","message":"you are not\u001b[31m a member"}"#,
        )
        .refusal();
        assert_eq!(code.as_deref(), Some("not_member"));
        assert_eq!(msg, "you are not[31m a member");
        let (code, msg) = a(400, r#"{"error":"slow_down","error_description":"wait"}"#).refusal();
        assert_eq!((code.as_deref(), msg.as_str()), (Some("slow_down"), "wait"));
        let (code, msg) = a(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"expired"}}"#,
        )
        .refusal();
        assert_eq!(
            (code.as_deref(), msg.as_str()),
            (Some("authentication_error"), "expired")
        );
        let (code, msg) = a(502, "<html>bad gateway</html>").refusal();
        assert_eq!(
            (code, msg.as_str()),
            (None, "the gateway answered HTTP 502")
        );
        assert!(matches!(a(503, "").into_error(), Error::Unreachable(_)));
        let e = a(
            403,
            r#"{"code":"mfa_needed","message":"sign in again with MFA"}"#,
        )
        .into_error();
        assert!(matches!(e, Error::Refused(_)));
        assert_eq!(e.to_string(), "sign in again with MFA (mfa_needed)");
    }
}
