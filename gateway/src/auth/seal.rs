//! Sealed blobs: data the gateway hands out or parks in the store and must get back untouched
//! (the OAuth `state`, device grants). AES-256-GCM from aws-lc-rs, a key derived from each session
//! secret (the first seals, any opens), a purpose bound in as associated data, and an expiry inside.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Secret;

const KID_LEN: usize = 8;

/// Why a blob did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Tampered, truncated, for another purpose, or sealed with an unknown key.
    #[error("invalid sealed data")]
    Invalid,
    /// Past its expiry.
    #[error("expired")]
    Expired,
    /// The random source failed.
    #[error("no randomness")]
    Random,
}

/// Sealing keys, one per session secret.
pub struct Sealer {
    keys: Vec<([u8; KID_LEN], LessSafeKey)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({} keys)", self.keys.len())
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    exp: i64,
    d: T,
}

impl Sealer {
    /// Keys derived from `secrets` (the same list as `session.jwt_secret`).
    pub fn new(secrets: &[Secret]) -> Self {
        let keys = secrets
            .iter()
            .filter_map(|s| {
                let mut ctx = digest::Context::new(&digest::SHA256);
                ctx.update(b"claude-gateway seal v1\0");
                ctx.update(s.expose().as_bytes());
                let key = ctx.finish();
                let id = digest::digest(&digest::SHA256, key.as_ref());
                let mut kid = [0u8; KID_LEN];
                kid.copy_from_slice(&id.as_ref()[..KID_LEN]);
                let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref()).ok()?;
                Some((kid, LessSafeKey::new(unbound)))
            })
            .collect();
        Self { keys }
    }

    /// Seals `data` for `purpose`, valid until `exp` (unix seconds).
    pub fn seal<T: Serialize>(
        &self,
        purpose: &str,
        data: &T,
        exp: i64,
    ) -> Result<String, SealError> {
        let (kid, key) = self.keys.first().ok_or(SealError::Invalid)?;
        let mut plain =
            serde_json::to_vec(&Envelope { exp, d: data }).map_err(|_| SealError::Invalid)?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.as_bytes()),
            &mut plain,
        )
        .map_err(|_| SealError::Invalid)?;
        let mut out = Vec::with_capacity(KID_LEN + NONCE_LEN + plain.len());
        out.extend_from_slice(kid);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&plain);
        Ok(B64.encode(out))
    }

    /// Opens a blob sealed for `purpose`, refusing it after its expiry at `now`.
    pub fn open<T: DeserializeOwned>(
        &self,
        purpose: &str,
        blob: &str,
        now: i64,
    ) -> Result<T, SealError> {
        if blob.len() > 64 * 1024 {
            return Err(SealError::Invalid);
        }
        let raw = B64.decode(blob).map_err(|_| SealError::Invalid)?;
        if raw.len() < KID_LEN + NONCE_LEN + 16 {
            return Err(SealError::Invalid);
        }
        let (kid, rest) = raw.split_at(KID_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .ok_or(SealError::Invalid)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Invalid)?;
        let mut buf = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf)
            .map_err(|_| SealError::Invalid)?;
        let env: Envelope<T> = serde_json::from_slice(plain).map_err(|_| SealError::Invalid)?;
        if now >= env.exp {
            return Err(SealError::Expired);
        }
        Ok(env.d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(s: &[&str]) -> Sealer {
        Sealer::new(&s.iter().map(|x| Secret::new(*x)).collect::<Vec<_>>())
    }

    #[test]
    fn round_trip_purpose_expiry_and_rotation() {
        let a = sealer(&["secret-a-0123456789abcdef0123456789"]);
        let blob = a.seal("oauth_state", &"hello", 100).unwrap();
        assert_eq!(a.open::<String>("oauth_state", &blob, 99).unwrap(), "hello");
        assert_eq!(
            a.open::<String>("oauth_state", &blob, 100),
            Err(SealError::Expired)
        );
        assert_eq!(
            a.open::<String>("device_grant", &blob, 0),
            Err(SealError::Invalid)
        );
        let rotated = sealer(&[
            "secret-b-0123456789abcdef0123456789",
            "secret-a-0123456789abcdef0123456789",
        ]);
        assert_eq!(
            rotated.open::<String>("oauth_state", &blob, 0).unwrap(),
            "hello"
        );
        let other = sealer(&["secret-c-0123456789abcdef0123456789"]);
        assert_eq!(
            other.open::<String>("oauth_state", &blob, 0),
            Err(SealError::Invalid)
        );
    }

    #[test]
    fn tampering_is_detected() {
        let a = sealer(&["secret-a-0123456789abcdef0123456789"]);
        let blob = a.seal("p", &42u32, 100).unwrap();
        let mut raw = B64.decode(&blob).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(
            a.open::<u32>("p", &B64.encode(raw), 0),
            Err(SealError::Invalid)
        );
        assert_eq!(a.open::<u32>("p", "!!", 0), Err(SealError::Invalid));
    }
}
