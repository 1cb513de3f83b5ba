//! The one HS256 JWT core under the gateway's two kinds of token (the session token in
//! `auth::token`, the MCP access token in `mcp::oauth::access`): keys and their ids, the JOSE
//! header, the signature, and the claim checks both share (times, audience, identity). Each
//! kind keeps its own key material, `typ`, issuer, audience and claims in a thin wrapper.
//!
//! A key's id (`kid`) is the hex of the first 8 bytes of SHA-256 of the key, so during a
//! rotation (a list of keys) the verifier picks the right key without trying each. The first
//! key signs.

use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::token::{Identity, TokenError};
use crate::config::hex;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The key id of key material: hex of the first 8 bytes of its SHA-256.
pub fn kid(key: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, key);
    hex(&d.as_ref()[..8])
}

/// What a token's `typ` header must be.
#[derive(Debug, Clone, Copy)]
pub enum Typ {
    /// This value, or no `typ` at all.
    Optional(&'static str),
    /// Exactly this value.
    Required(&'static str),
}

impl Typ {
    fn name(self) -> &'static str {
        match self {
            Typ::Optional(t) | Typ::Required(t) => t,
        }
    }

    fn admits(self, header: &Value) -> bool {
        match (self, header.get("typ")) {
            (Typ::Optional(_), None) => true,
            (t, Some(v)) => v.as_str() == Some(t.name()),
            (Typ::Required(_), None) => false,
        }
    }
}

/// HS256 signing and verification keys: the first signs, all verify.
pub struct Keys {
    keys: Vec<(String, hmac::Key)>,
}

impl Keys {
    /// Keys from key material, in order.
    pub fn new<K: AsRef<[u8]>>(material: impl IntoIterator<Item = K>) -> Self {
        let keys = material
            .into_iter()
            .map(|m| {
                let m = m.as_ref();
                (kid(m), hmac::Key::new(hmac::HMAC_SHA256, m))
            })
            .collect();
        Self { keys }
    }

    /// The key ids, signing key first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// A token of `typ` carrying `claims`, signed with the first key (empty with no key).
    pub fn sign(&self, typ: Typ, claims: &Value) -> String {
        let Some((kid, key)) = self.keys.first() else {
            return String::new();
        };
        let header = json!({"alg": "HS256", "typ": typ.name(), "kid": kid});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = hmac::sign(key, input.as_bytes());
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    /// The claims of `token` once its shape, header (`alg` HS256, `typ`, a known `kid`) and
    /// signature check out; nothing in the claims is checked yet.
    pub fn open(&self, token: &str, typ: Typ) -> Result<Value, TokenError> {
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
        if !typ.admits(&header) {
            return Err(TokenError::Malformed);
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
        decode_json(p)
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

/// The identity claims of `who`: `sub`, `groups`, and `email`, `name`, `mfa_at` when known.
pub fn identity_claims(who: &Identity) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("sub".into(), who.sub.clone().into());
    map.insert("groups".into(), who.groups.clone().into());
    if let Some(e) = &who.email {
        map.insert("email".into(), e.clone().into());
    }
    if let Some(n) = &who.name {
        map.insert("name".into(), n.clone().into());
    }
    if let Some(at) = who.mfa_at {
        map.insert("mfa_at".into(), at.into());
    }
    map
}

/// The token's (`iat`, `exp`), both required, once it is not past `exp` + `leeway` at `now`
/// (unix seconds).
pub fn times(claims: &Value, now: i64, leeway: i64) -> Result<(i64, i64), TokenError> {
    let int = |k: &str| claims.get(k).and_then(Value::as_i64);
    let (Some(iat), Some(exp)) = (int("iat"), int("exp")) else {
        return Err(TokenError::Claims);
    };
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    Ok((iat, exp))
}

/// Whether `aud` (a string or a list) names `audience`.
pub fn audience_ok(claims: &Value, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(audience)),
        _ => false,
    }
}

/// The identity the claims assert; a subject is required.
pub fn identity(claims: Value) -> Result<Identity, TokenError> {
    let identity: Identity = serde_json::from_value(claims).map_err(|_| TokenError::Claims)?;
    if identity.sub.is_empty() {
        return Err(TokenError::Claims);
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_rules() {
        let keys = Keys::new([b"0123456789abcdef0123456789abcdef"]);
        let claims = json!({"sub": "u"});
        let jwt = keys.sign(Typ::Optional("JWT"), &claims);
        let at = keys.sign(Typ::Required("at+jwt"), &claims);
        assert!(keys.open(&jwt, Typ::Optional("JWT")).is_ok());
        assert_eq!(
            keys.open(&jwt, Typ::Required("at+jwt")),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            keys.open(&at, Typ::Optional("JWT")),
            Err(TokenError::Malformed)
        );
        assert!(keys.open(&at, Typ::Required("at+jwt")).is_ok());
    }

    #[test]
    fn expiry_and_missing_times() {
        let c = json!({"iat": 100, "exp": 200});
        assert_eq!(times(&c, 199, 0), Ok((100, 200)));
        assert_eq!(times(&c, 200, 0), Err(TokenError::Expired));
        assert_eq!(times(&c, 229, 30), Ok((100, 200)));
        assert_eq!(times(&json!({"exp": 200}), 0, 0), Err(TokenError::Claims));
    }
}
