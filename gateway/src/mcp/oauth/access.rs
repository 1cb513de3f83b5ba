//! The access tokens of `/mcp`: HS256 JWTs of type `at+jwt` (RFC 9068), signed with a key
//! derived from each session secret for this use alone, so a session token is never an MCP
//! token and an MCP token is never a session token. Only the issuer `<origin>/mcp/oauth` and the
//! audience `<origin>/mcp` are taken.

use aws_lc_rs::digest;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::auth::jwt::{self, Typ};
use crate::auth::token::{Identity, TokenError};
use crate::config::Secret;

/// The only scope there is.
pub const SCOPE: &str = "aws";
/// The JOSE `typ` of an access token (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";
/// How far the clocks of the signer and the verifier may differ, in seconds.
pub const LEEWAY: i64 = 30;

/// A verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who it speaks for.
    pub identity: Identity,
    /// The client it was issued to.
    pub client_id: String,
    /// Its id (`jti`).
    pub jti: String,
}

/// The signing keys of access tokens, with the issuer and audience they carry.
pub struct AccessKeys {
    keys: jwt::Keys,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.keys.kids().len();
        write!(f, "AccessKeys({n} keys, {})", self.audience)
    }
}

/// The access-token key derived from a session secret, for this use alone.
fn derive(secret: &Secret) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"claude-gateway mcp access token v1\0");
    ctx.update(secret.expose().as_bytes());
    ctx.finish()
}

impl AccessKeys {
    /// Keys derived from `secrets` (`session.jwt_secret`: the first signs, all verify).
    pub fn new(secrets: &[Secret], issuer: &str, audience: &str) -> Self {
        Self {
            keys: jwt::Keys::new(secrets.iter().map(derive)),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// A token for `who`, issued to `client_id` at `now` for `ttl_seconds`, with id `jti`.
    pub fn mint(
        &self,
        who: &Identity,
        client_id: &str,
        jti: &str,
        now: OffsetDateTime,
        ttl_seconds: i64,
    ) -> String {
        let iat = now.unix_timestamp();
        let mut claims = jwt::identity_claims(who);
        for (k, v) in [
            ("iss", json!(self.issuer)),
            ("aud", json!(self.audience)),
            ("client_id", json!(client_id)),
            ("scope", json!(SCOPE)),
            ("iat", json!(iat)),
            ("exp", json!(iat.saturating_add(ttl_seconds))),
            ("jti", json!(jti)),
        ] {
            claims.insert(k.into(), v);
        }
        self.keys.sign(Typ::Required(TYP), &Value::Object(claims))
    }

    /// Verifies `token` at `now` (with [`LEEWAY`] on its times).
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Verified, TokenError> {
        let claims = self.keys.open(token, Typ::Required(TYP))?;
        let now = now.unix_timestamp();
        let (iat, _) = jwt::times(&claims, now, LEEWAY)?;
        if iat > now.saturating_add(LEEWAY) {
            return Err(TokenError::Claims);
        }
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        if text("iss") != Some(self.issuer.as_str()) {
            return Err(TokenError::Issuer);
        }
        if !jwt::audience_ok(&claims, &self.audience) {
            return Err(TokenError::Audience);
        }
        let scoped = text("scope").is_some_and(|s| s.split(' ').any(|x| x == SCOPE));
        let (Some(client_id), Some(jti), true) = (text("client_id"), text("jti"), scoped) else {
            return Err(TokenError::Claims);
        };
        let (client_id, jti) = (client_id.to_owned(), jti.to_owned());
        Ok(Verified {
            identity: jwt::identity(claims)?,
            client_id,
            jti,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::MAX_TOKEN_LEN;
    use crate::auth::token::SessionKeys;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;

    const S1: &str = "0123456789abcdef0123456789abcdef-one";
    const S2: &str = "0123456789abcdef0123456789abcdef-two";
    const ISS: &str = "https://gw.example.com/mcp/oauth";
    const AUD: &str = "https://gw.example.com/mcp";

    fn who() -> Identity {
        Identity {
            sub: "u1".into(),
            email: Some("a@example.com".into()),
            name: Some("A".into()),
            groups: vec!["eng".into()],
            mfa_at: Some(1_799_999_000),
        }
    }

    fn keys(secrets: &[&str], iss: &str, aud: &str) -> AccessKeys {
        let s: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        AccessKeys::new(&s, iss, aud)
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn claims_of(t: &str) -> Value {
        serde_json::from_slice(&B64.decode(t.split('.').nth(1).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_and_carries_its_claims() {
        let k = keys(&[S1], ISS, AUD);
        let t = k.mint(&who(), "client-1", "jti-1", now(), 900);
        let v = k.verify(&t, now()).unwrap();
        assert_eq!(v.identity, who());
        assert_eq!(v.client_id, "client-1");
        assert_eq!(v.jti, "jti-1");
        let c = claims_of(&t);
        assert_eq!(c["iss"], ISS);
        assert_eq!(c["aud"], AUD);
        assert_eq!(c["scope"], "aws");
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
        let h: Value =
            serde_json::from_slice(&B64.decode(t.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(h["typ"], "at+jwt");
    }

    #[test]
    fn expiry_allows_thirty_seconds_of_leeway_and_no_more() {
        let k = keys(&[S1], ISS, AUD);
        let t = k.mint(&who(), "c", "j", now(), 900);
        let at = |s: i64| now() + time::Duration::seconds(s);
        assert!(k.verify(&t, at(900 + 29)).is_ok());
        assert_eq!(k.verify(&t, at(900 + 30)), Err(TokenError::Expired));
        // Issued in the future beyond the leeway: refused.
        let early = k.mint(&who(), "c", "j", at(31), 900);
        assert_eq!(k.verify(&early, now()), Err(TokenError::Claims));
    }

    #[test]
    fn tokens_of_another_key_issuer_or_audience_are_refused() {
        let k = keys(&[S1], ISS, AUD);
        let t = k.mint(&who(), "c", "j", now(), 900);
        assert_eq!(
            keys(&[S2], ISS, AUD).verify(&t, now()),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            keys(&[S1], "https://other.example.com/mcp/oauth", AUD).verify(&t, now()),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            keys(&[S1], ISS, "https://gw.example.com/other").verify(&t, now()),
            Err(TokenError::Audience)
        );
        // Rotation: the old secret still verifies while listed.
        assert!(keys(&[S2, S1], ISS, AUD).verify(&t, now()).is_ok());
    }

    #[test]
    fn session_tokens_and_access_tokens_are_not_interchangeable() {
        let s: Vec<Secret> = vec![Secret::new(S1)];
        let session = SessionKeys::new(&s, Some("https://gw.example.com".into()));
        let st = session.mint(&who(), now(), time::Duration::hours(1));
        let k = keys(&[S1], ISS, AUD);
        assert!(k.verify(&st, now()).is_err(), "a session token at /mcp");
        let at = k.mint(&who(), "c", "j", now(), 900);
        assert!(
            session.verify(&at, now()).is_err(),
            "an MCP token elsewhere"
        );
    }

    #[test]
    fn forgeries_are_refused() {
        let k = keys(&[S1], ISS, AUD);
        let t = k.mint(&who(), "c", "j", now(), 900);
        let (h, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let mut c = claims_of(&t);
        c["groups"] = json!(["admins"]);
        let forged = format!("{h}.{}.{sig}", B64.encode(c.to_string()));
        assert_eq!(k.verify(&forged, now()), Err(TokenError::Signature));
        let none = B64.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
        assert_eq!(
            k.verify(
                &format!("{none}.{}.", rest.split_once('.').unwrap().0),
                now()
            ),
            Err(TokenError::Algorithm)
        );
        assert_eq!(k.verify("a.b", now()), Err(TokenError::Malformed));
        assert_eq!(
            k.verify(&"x".repeat(MAX_TOKEN_LEN + 1), now()),
            Err(TokenError::Malformed)
        );
    }
}
