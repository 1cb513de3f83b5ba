//! The gateway's session token: an HS256 JWT (`auth::jwt`) the gateway mints after sign-in and
//! verifies locally, keyed by the session secrets themselves (`kid` = hex of the first 8 bytes of
//! SHA-256(secret); the first secret signs).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::jwt::{self, Typ};
use crate::config::Secret;

/// The audience every session token carries.
pub const AUDIENCE: &str = "claude-gateway";
/// The `typ` of a session token (optional in the header).
const TYP: Typ = Typ::Optional("JWT");

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
    keys: jwt::Keys,
    issuer: Option<String>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("kids", &self.keys.kids())
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// The key id of a secret: hex of the first 8 bytes of its SHA-256.
pub fn kid(secret: &str) -> String {
    jwt::kid(secret.as_bytes())
}

impl SessionKeys {
    /// Keys from `session.jwt_secret` (first signs, all verify) and the expected `iss`
    /// (`listen.public_url`, when set).
    pub fn new(secrets: &[Secret], issuer: Option<String>) -> Self {
        let keys = jwt::Keys::new(secrets.iter().map(|s| s.expose().as_bytes()));
        Self { keys, issuer }
    }

    /// Mints a token for `identity`, valid from `now` for `ttl`.
    pub fn mint(&self, identity: &Identity, now: OffsetDateTime, ttl: time::Duration) -> String {
        let iat = now.unix_timestamp();
        let mut claims = jwt::identity_claims(identity);
        claims.insert("aud".into(), AUDIENCE.into());
        claims.insert("iat".into(), iat.into());
        claims.insert("exp".into(), (iat + ttl.whole_seconds()).into());
        if let Some(iss) = &self.issuer {
            claims.insert("iss".into(), iss.clone().into());
        }
        self.keys.sign(TYP, &Value::Object(claims))
    }

    /// Verifies a token at `now` and returns its claims.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, TokenError> {
        let claims = self.keys.open(token, TYP)?;
        let (iat, exp) = jwt::times(&claims, now.unix_timestamp(), 0)?;
        if !jwt::audience_ok(&claims, AUDIENCE) {
            return Err(TokenError::Audience);
        }
        let iss = claims.get("iss").and_then(Value::as_str);
        if iss != self.issuer.as_deref() {
            return Err(TokenError::Issuer);
        }
        let identity = jwt::identity(claims)?;
        Ok(Claims { identity, iat, exp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;

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
