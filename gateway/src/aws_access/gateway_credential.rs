//! Gateway-only credentials: what `--via-gateway` hands an agent instead of STS credentials. They
//! have the shape of AWS session credentials, but AWS knows none of them: the key id is the
//! gateway's own (`AGW…`, the recording's session id), the session token is a sealed
//! [`ProxySession`], and the secret is derived from a server key and both, so only the gateway can
//! check a signature made with it. Taken elsewhere they reach nothing; when the gateway is down,
//! nothing reaches AWS with them.

use aws_lc_rs::digest;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::seal::{SealError, Sealer};
use crate::config::aws_access::Level;
use crate::config::Secret;

/// What every gateway key id starts with.
pub const KEY_ID_PREFIX: &str = "AGW";
/// Characters after the prefix.
const KEY_ID_RANDOM: usize = 17;
/// The purpose a session token is sealed for.
const PURPOSE: &str = "aws-proxy-session";
/// Bytes of the key fingerprint a session names its key by.
const KID_LEN: usize = 8;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Who a gateway credential was issued to, for what: sealed in its session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxySession {
    /// The key id, also the session id of its recordings.
    pub sid: String,
    /// Whose, for what.
    #[serde(flatten)]
    pub who: Grantee,
    /// The server key the secret is derived with (hex fingerprint).
    kid: String,
}

/// A gateway credential as handed out.
#[derive(Debug, Clone)]
pub struct Issued {
    /// `AGW…`.
    pub access_key_id: String,
    /// The derived secret.
    pub secret_access_key: String,
    /// The sealed session.
    pub token: String,
    /// When it ends.
    pub expiration: OffsetDateTime,
}

/// The server keys secrets are derived with, one per session secret (the first derives, any
/// checks, so rotating `session.jwt_secret` keeps credentials issued before good).
pub struct ProxyKeys {
    keys: Vec<(String, hmac::Key)>,
}

impl std::fmt::Debug for ProxyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyKeys({} keys)", self.keys.len())
    }
}

impl ProxyKeys {
    /// Keys derived from `secrets` (the list of `session.jwt_secret`), under their own label.
    pub fn new(secrets: &[Secret]) -> Self {
        let keys = secrets
            .iter()
            .map(|s| {
                let mut ctx = digest::Context::new(&digest::SHA256);
                ctx.update(b"claude-gateway aws-proxy key v1\0");
                ctx.update(s.expose().as_bytes());
                let key = ctx.finish();
                let id = digest::digest(&digest::SHA256, key.as_ref());
                let kid = hex(&id.as_ref()[..KID_LEN]);
                (kid, hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()))
            })
            .collect();
        Self { keys }
    }

    fn secret(&self, kid: &str, sid: &str, token: &str) -> Option<String> {
        let (_, key) = self.keys.iter().find(|(k, _)| k == kid)?;
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(sid.as_bytes());
        ctx.update(b"\0");
        ctx.update(token.as_bytes());
        let tag = ctx.sign();
        // 30 bytes: 40 characters, the length of an AWS secret access key.
        Some(B64.encode(&tag.as_ref()[..30]))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new key id: the prefix and random base32.
fn new_key_id() -> Result<String, SealError> {
    let mut raw = [0u8; KEY_ID_RANDOM];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| SealError::Random)?;
    let mut id = String::with_capacity(KEY_ID_PREFIX.len() + KEY_ID_RANDOM);
    id.push_str(KEY_ID_PREFIX);
    id.extend(raw.iter().map(|b| char::from(BASE32[usize::from(b & 31)])));
    Ok(id)
}

/// Who a credential is for, and for what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grantee {
    /// The developer's subject.
    pub sub: String,
    /// Their email.
    pub email: Option<String>,
    /// Their groups that matter on the project.
    pub groups: Vec<String>,
    /// The project.
    pub project: String,
    /// The level.
    pub level: Level,
    /// Recent MFA at issue.
    pub mfa: bool,
    /// The grant, if any.
    pub grant: Option<String>,
}

/// Issues a gateway credential for `who`, ending at `expiration`.
pub fn issue(
    keys: &ProxyKeys,
    sealer: &Sealer,
    who: Grantee,
    expiration: OffsetDateTime,
) -> Result<Issued, SealError> {
    let (kid, _) = keys.keys.first().ok_or(SealError::Invalid)?;
    let sid = new_key_id()?;
    let session = ProxySession {
        sid: sid.clone(),
        who,
        kid: kid.clone(),
    };
    let token = sealer.seal(PURPOSE, &session, expiration.unix_timestamp())?;
    let secret_access_key = keys.secret(kid, &sid, &token).ok_or(SealError::Invalid)?;
    Ok(Issued {
        access_key_id: sid,
        secret_access_key,
        token,
        expiration,
    })
}

/// Opens the session behind `access_key_id` and `token` at `now`, and the secret a signature
/// made with it must use; `None` for anything the gateway did not issue, or past its end.
pub fn open(
    keys: &ProxyKeys,
    sealer: &Sealer,
    access_key_id: &str,
    token: Option<&str>,
    now: OffsetDateTime,
) -> Option<(ProxySession, String)> {
    if !access_key_id.starts_with(KEY_ID_PREFIX) {
        return None;
    }
    let token = token?;
    let session: ProxySession = sealer.open(PURPOSE, token, now.unix_timestamp()).ok()?;
    // The token is bound to its key id: a session cannot be replayed under another.
    if session.sid != access_key_id {
        return None;
    }
    let secret = keys.secret(&session.kid, &session.sid, token)?;
    Some((session, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    const NOW: OffsetDateTime = time::macros::datetime!(2026-12-06 12:00 UTC);

    fn parts(secrets: &[&str]) -> (ProxyKeys, Sealer) {
        let s: Vec<Secret> = secrets.iter().map(|x| Secret::new(*x)).collect();
        (ProxyKeys::new(&s), Sealer::new(&s))
    }

    fn ana() -> Grantee {
        Grantee {
            sub: "sub-ana".into(),
            email: Some("ana@example.com".into()),
            groups: vec!["payments".into()],
            project: "payments".into(),
            level: Level::Read,
            mfa: false,
            grant: None,
        }
    }

    const A: &str = "secret-a-0123456789abcdef0123456789";
    const B: &str = "secret-b-0123456789abcdef0123456789";

    #[test]
    fn issued_opens_with_its_secret_and_nothing_else_does() {
        let (keys, sealer) = parts(&[A]);
        let c = issue(&keys, &sealer, ana(), NOW + Duration::hours(1)).unwrap();
        assert!(c.access_key_id.starts_with("AGW") && c.access_key_id.len() == 20);
        assert_eq!(c.secret_access_key.len(), 40);
        let (session, secret) =
            open(&keys, &sealer, &c.access_key_id, Some(&c.token), NOW).unwrap();
        assert_eq!(secret, c.secret_access_key);
        assert_eq!(
            (session.who.sub.as_str(), session.sid.as_str()),
            ("sub-ana", c.access_key_id.as_str())
        );
        // Past its end, without its token, under another key id, or a real AWS key: nothing.
        let later = NOW + Duration::hours(1);
        assert!(open(&keys, &sealer, &c.access_key_id, Some(&c.token), later).is_none());
        assert!(open(&keys, &sealer, &c.access_key_id, None, NOW).is_none());
        let other = issue(&keys, &sealer, ana(), NOW + Duration::hours(1)).unwrap();
        assert_ne!(other.access_key_id, c.access_key_id);
        assert!(open(&keys, &sealer, &other.access_key_id, Some(&c.token), NOW).is_none());
        assert!(open(&keys, &sealer, "ASIAQNZGKIQY56JQ7WML", Some(&c.token), NOW).is_none());
        // A token touched anywhere does not open.
        let mut bytes = c.token.clone().into_bytes();
        bytes[30] = if bytes[30] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(open(&keys, &sealer, &c.access_key_id, Some(&tampered), NOW).is_none());
    }

    #[test]
    fn another_gateway_cannot_open_it_and_rotation_keeps_it() {
        let (keys, sealer) = parts(&[A]);
        let c = issue(&keys, &sealer, ana(), NOW + Duration::hours(1)).unwrap();
        let (k2, s2) = parts(&[B]);
        assert!(open(&k2, &s2, &c.access_key_id, Some(&c.token), NOW).is_none());
        // B is the new first secret, A still accepted: the credential and its secret hold.
        let (rotated, rs) = parts(&[B, A]);
        let (_, secret) = open(&rotated, &rs, &c.access_key_id, Some(&c.token), NOW).unwrap();
        assert_eq!(secret, c.secret_access_key);
    }
}
