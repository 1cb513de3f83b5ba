//! The outermost layer: gives every request an id, renders error envelopes with it, and puts the
//! security headers on every response.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{HeaderName, CONTENT_LENGTH, CONTENT_TYPE, STRICT_TRANSPORT_SECURITY};
use http::HeaderValue;

use super::error::Envelope;

/// The request's id, echoed in `x-request-id` and in error bodies.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-client-request-id");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// Sent when the gateway terminates TLS itself.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Layer function: request id in, envelope and headers out.
pub async fn edge(State(tls): State<TlsOn>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(CLIENT_REQUEST_ID)
        .filter(|v| valid_client_id(v.as_bytes()))
        .cloned()
        .unwrap_or_else(new_uuid);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).await;
    if let Some(env) = res.extensions_mut().remove::<Envelope>() {
        let body = serde_json::json!({
            "type": "error",
            "error": {"type": env.kind, "message": env.message},
            "request_id": id.to_str().unwrap_or_default(),
        })
        .to_string();
        res.headers_mut().remove(CONTENT_LENGTH);
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        *res.body_mut() = Body::from(body);
    }
    let h = res.headers_mut();
    h.insert(REQUEST_ID, id);
    for (name, value) in SECURITY_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    if tls.0 {
        h.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    res
}

/// Whether this listener terminates TLS.
#[derive(Debug, Clone, Copy)]
pub struct TlsOn(pub bool);

/// An inbound id is echoed only if it is short and made of safe characters.
fn valid_client_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A random (version 4) UUID.
pub fn new_uuid() -> HeaderValue {
    let mut b = [0u8; 16];
    // The system RNG failing is not recoverable in any useful way; an all-zero id still works.
    let _ = SystemRandom::new().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::config::hex(&b);
    let s = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(
        "00000000-0000-4000-8000-000000000000",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let a = new_uuid();
        let s = a.to_str().unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, new_uuid());
    }

    #[test]
    fn client_ids_are_checked() {
        assert!(valid_client_id(b"abc-123_x.yz"));
        assert!(!valid_client_id(b"a:b"));
        assert!(!valid_client_id(b""));
        assert!(!valid_client_id(b"a b"));
        assert!(!valid_client_id(b"<script>"));
        assert!(valid_client_id(&[b'a'; 64]));
        assert!(!valid_client_id(&[b'a'; 65]));
    }
}
