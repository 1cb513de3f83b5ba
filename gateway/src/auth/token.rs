//! The gateway's session token: an HS256 JWT the gateway mints after sign-in and verifies locally.
//!
//! `kid` is the hex of the first 8 bytes of SHA-256(secret), so during a rotation (a list of
//! secrets) the verifier picks the right key without trying each. The first secret signs.

use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::config::{hex, Secret};

/// The audience every session token carries.
pub const AUDIENCE: &str = "claude-gateway";
/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The identity a session token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The IdP's subject.
    pub sub: String,
    /// Email, when the IdP gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// IdP groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// When the sign-in proved multiple factors (unix seconds; the IdP's `auth_time` when its
    /// `amr` shows them), for credentials that need recent MFA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_at: Option<i64>,
}

/// A verified token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Who.
    pub identity: Identity,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
}

/// Why a token was refused. The client only ever sees "invalid token"; the reason is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not HS256.
    #[error("unexpected algorithm")]
    Algorithm,
    /// `kid` names no current secret.
    #[error("unknown key id")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// Past `exp`.
    #[error("expired")]
    Expired,
    /// Wrong or missing `aud`.
    #[error("wrong audience")]
    Audience,
    /// Wrong or missing `iss`.
    #[error("wrong issuer")]
    Issuer,
    /// Missing `sub` or times.
    #[error("missing claims")]
    Claims,
}

/// The gateway's signing and verification keys.
pub struct SessionKeys {
    keys: Vec<(String, hmac::Key)>,
    issuer: Option<String>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("SessionKeys")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// The key id of a secret: hex of the first 8 bytes of its SHA-256.
pub fn kid(secret: &str) -> String {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    hex(&d.as_ref()[..8])
}

impl SessionKeys {
    /// Keys from `session.jwt_secret` (first signs, all verify) and the expected `iss`
    /// (`listen.public_url`, when set).
    pub fn new(secrets: &[Secret], issuer: Option<String>) -> Self {
        let keys = secrets
            .iter()
            .map(|s| {
                (
                    kid(s.expose()),
                    hmac::Key::new(hmac::HMAC_SHA256, s.expose().as_bytes()),
                )
            })
            .collect();
        Self { keys, issuer }
    }

    /// Mints a token for `identity`, valid from `now` for `ttl`.
    pub fn mint(&self, identity: &Identity, now: OffsetDateTime, ttl: time::Duration) -> String {
        let Some((kid, key)) = self.keys.first() else {
            return String::new();
        };
        let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid});
        let iat = now.unix_timestamp();
        let mut claims = serde_json::json!({
            "sub": identity.sub,
            "groups": identity.groups,
            "aud": AUDIENCE,
            "iat": iat,
            "exp": iat + ttl.whole_seconds(),
        });
        if let Some(map) = claims.as_object_mut() {
            if let Some(e) = &identity.email {
                map.insert("email".into(), e.clone().into());
            }
            if let Some(n) = &identity.name {
                map.insert("name".into(), n.clone().into());
            }
            if let Some(at) = identity.mfa_at {
                map.insert("mfa_at".into(), at.into());
            }
            if let Some(iss) = &self.issuer {
                map.insert("iss".into(), iss.clone().into());
            }
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = hmac::sign(key, input.as_bytes());
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    /// Verifies a token at `now` and returns its claims.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = decode_json(h)?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(TokenError::Algorithm);
        }
        if let Some(typ) = header.get("typ") {
            if typ.as_str() != Some("JWT") {
                return Err(TokenError::Malformed);
            }
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(TokenError::UnknownKey)?;
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .ok_or(TokenError::UnknownKey)?;
        let sig = B64.decode(s).map_err(|_| TokenError::Malformed)?;
        let signed = &token[..h.len() + 1 + p.len()];
        hmac::verify(key, signed.as_bytes(), &sig).map_err(|_| TokenError::Signature)?;

        let claims = decode_json(p)?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(TokenError::Claims)?;
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or(TokenError::Claims)?;
        if now.unix_timestamp() >= exp {
            return Err(TokenError::Expired);
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == AUDIENCE,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(AUDIENCE)),
            _ => false,
        };
        if !aud_ok {
            return Err(TokenError::Audience);
        }
        let iss = claims.get("iss").and_then(Value::as_str);
        if iss != self.issuer.as_deref() {
            return Err(TokenError::Issuer);
        }
        let identity: Identity = serde_json::from_value(claims).map_err(|_| TokenError::Claims)?;
        if identity.sub.is_empty() {
            return Err(TokenError::Claims);
        }
        Ok(Claims { identity, iat, exp })
    }
}

fn decode_json(part: &str) -> Result<Value, TokenError> {
    let bytes = B64.decode(part).map_err(|_| TokenError::Malformed)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: &str = "0123456789abcdef0123456789abcdef-one";
    const S2: &str = "0123456789abcdef0123456789abcdef-two";

    fn who() -> Identity {
        Identity {
            sub: "u1".into(),
            email: Some("a@example.com".into()),
            name: None,
            groups: vec!["eng".into()],
            mfa_at: None,
        }
    }

    fn keys(secrets: &[&str], iss: Option<&str>) -> SessionKeys {
        let s: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        SessionKeys::new(&s, iss.map(str::to_owned))
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn round_trip_and_expiry() {
        let k = keys(&[S1], Some("https://gw.example.com"));
        let t = k.mint(&who(), now(), time::Duration::hours(1));
        let c = k.verify(&t, now()).unwrap();
        assert_eq!(c.identity, who());
        assert_eq!(c.exp - c.iat, 3600);
        let strong = Identity {
            mfa_at: Some(1_799_999_000),
            ..who()
        };
        let t2 = k.mint(&strong, now(), time::Duration::hours(1));
        assert_eq!(k.verify(&t2, now()).unwrap().identity, strong);
        assert_eq!(
            k.verify(&t, now() + time::Duration::hours(1)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn rotation_signs_with_first_and_verifies_with_any() {
        let old = keys(&[S2], None);
        let rotated = keys(&[S1, S2], None);
        let t = old.mint(&who(), now(), time::Duration::hours(1));
        assert!(rotated.verify(&t, now()).is_ok());
        let t2 = rotated.mint(&who(), now(), time::Duration::hours(1));
        assert_eq!(old.verify(&t2, now()), Err(TokenError::UnknownKey));
    }

    #[test]
    fn refuses_forgeries() {
        let k = keys(&[S1], Some("https://gw.example.com"));
        let t = k.mint(&who(), now(), time::Duration::hours(1));
        let (h, rest) = t.split_once('.').unwrap();
        let (p, _s) = rest.split_once('.').unwrap();

        let none_header = B64.encode(r#"{"alg":"none","kid":"x"}"#);
        assert_eq!(
            k.verify(&format!("{none_header}.{p}."), now()),
            Err(TokenError::Algorithm)
        );

        let mut claims: Value = serde_json::from_slice(&B64.decode(p).unwrap()).unwrap();
        claims["groups"] = serde_json::json!(["admins"]);
        let forged = format!(
            "{h}.{}.{}",
            B64.encode(claims.to_string()),
            t.rsplit('.').next().unwrap()
        );
        assert_eq!(k.verify(&forged, now()), Err(TokenError::Signature));

        let other_iss = keys(&[S1], Some("https://evil.example.com"));
        assert_eq!(other_iss.verify(&t, now()), Err(TokenError::Issuer));
        let no_iss = keys(&[S1], None);
        assert_eq!(no_iss.verify(&t, now()), Err(TokenError::Issuer));

        assert_eq!(k.verify("a.b", now()), Err(TokenError::Malformed));
        assert_eq!(k.verify("", now()), Err(TokenError::Malformed));
    }

    #[test]
    fn kid_is_first_eight_bytes_of_sha256() {
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(kid("abc"), "ba7816bf8f01cfea");
    }
}
