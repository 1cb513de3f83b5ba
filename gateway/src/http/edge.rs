//! The outermost layer: gives every request an id, renders error envelopes with it, and puts the
//! security headers on every response.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

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

/// A version 4 UUID: a process-wide counter through a keyed mix, the key drawn from the system
/// RNG once. Request ids are not secrets (a client may send its own), so they need no fresh
/// randomness each, which would cost a DRBG call on every request.
pub fn new_uuid() -> HeaderValue {
    static KEY: OnceLock<[u64; 2]> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let key = KEY.get_or_init(|| {
        let mut b = [0u8; 16];
        // The system RNG failing is not recoverable in any useful way; ids stay distinct.
        let _ = SystemRandom::new().fill(&mut b);
        let (hi, lo) = b.split_at(8);
        [
            u64::from_le_bytes(hi.try_into().unwrap_or_default()),
            u64::from_le_bytes(lo.try_into().unwrap_or_default()),
        ]
    });
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&mix(n ^ key[0]).to_be_bytes());
    b[8..].copy_from_slice(&mix(n.rotate_left(32) ^ key[1]).to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 36];
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[at] = b'-';
            at += 1;
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0x0f)];
        at += 2;
    }
    HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static(
        "00000000-0000-4000-8000-000000000000",
    ))
}

/// SplitMix64's finalizer: a bijection on u64 that spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
        assert!(s
            .bytes()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }));
    }

    #[test]
    fn uuids_do_not_repeat() {
        let ids: std::collections::HashSet<_> = (0..100_000).map(|_| new_uuid()).collect();
        assert_eq!(ids.len(), 100_000);
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
