//! What a client holds as its refresh token: the IdP's refresh token sealed together with the IdP
//! subject of the session it continues. A refresh the IdP answers without an id_token (OpenID
//! Connect allows it) is then tied to that subject through userinfo, and one answered with an
//! id_token must name the same subject. The gateway still keeps no refresh state of its own.

use serde::{Deserialize, Serialize};

use super::seal::Sealer;

const PURPOSE: &str = "refresh";
/// How long a sealed refresh token opens: longer than any IdP keeps a refresh token alive, so
/// the IdP's own expiry is the one that counts.
pub const SEALED_FOR_SECONDS: i64 = 400 * 24 * 3600;

#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The IdP's refresh token.
    rt: String,
    /// The IdP subject it was issued for.
    sub: String,
}

/// A presented refresh token, opened.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented {
    /// The IdP's refresh token, to send to the IdP.
    pub idp_token: String,
    /// The session's IdP subject; `None` for a token handed out before tokens were sealed (the
    /// IdP's own, as it is).
    pub sub: Option<String>,
}

/// Seals the IdP's refresh token `rt` for subject `sub`. When sealing fails (no randomness), the
/// IdP's token is handed out as it is, which [`open`] still takes.
pub fn seal(sealer: &Sealer, rt: &str, sub: &str, now: i64) -> String {
    let data = Sealed {
        rt: rt.to_owned(),
        sub: sub.to_owned(),
    };
    match sealer.seal(PURPOSE, &data, now.saturating_add(SEALED_FOR_SECONDS)) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("could not seal a refresh token ({e}); handing out the IdP's own");
            rt.to_owned()
        }
    }
}

/// Opens what a client presented: a sealed token, or else the IdP's own token as it is.
pub fn open(sealer: &Sealer, presented: &str, now: i64) -> Presented {
    match sealer.open::<Sealed>(PURPOSE, presented, now) {
        Ok(s) => Presented {
            idp_token: s.rt,
            sub: Some(s.sub),
        },
        Err(_) => Presented {
            idp_token: presented.to_owned(),
            sub: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn a_sealed_token_carries_its_subject_and_a_raw_one_passes_through() {
        let sealer = Sealer::new(&[Secret::new("refresh-test-secret-0123456789abcdef")]);
        let sealed = seal(&sealer, "idp-rt-1", "alice", 1_000);
        assert!(!sealed.contains("idp-rt-1") && !sealed.contains("alice"));
        assert_eq!(
            open(&sealer, &sealed, 2_000),
            Presented {
                idp_token: "idp-rt-1".into(),
                sub: Some("alice".into())
            }
        );
        assert_eq!(
            open(&sealer, "legacy-idp-token", 2_000),
            Presented {
                idp_token: "legacy-idp-token".into(),
                sub: None
            }
        );
        let other = Sealer::new(&[Secret::new("another-secret-0123456789abcdef0123")]);
        assert_eq!(open(&other, &sealed, 2_000).sub, None);
    }
}
