//! The random values of sign-in: device codes, user codes, PKCE verifiers, nonces and browser
//! secrets, all from the system's secure random source.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use crate::config::hex;

/// RFC 8628 §6.1's base-20 alphabet: no vowels, so no words.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// The random source failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the system random source failed")]
pub struct NoRandom;

/// `n` random bytes, base64url without padding.
pub fn token(n: usize) -> Result<String, NoRandom> {
    let mut b = vec![0u8; n];
    SystemRandom::new().fill(&mut b).map_err(|_| NoRandom)?;
    Ok(B64.encode(b))
}

/// A 256-bit device code.
pub fn device_code() -> Result<String, NoRandom> {
    token(32)
}

/// Eight letters of the base-20 alphabet, drawn without bias.
pub fn user_code() -> Result<String, NoRandom> {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(8);
    while out.len() < 8 {
        let mut b = [0u8; 16];
        rng.fill(&mut b).map_err(|_| NoRandom)?;
        // 240 = 12 × 20: bytes above it would favour the first letters.
        for x in b.into_iter().filter(|x| *x < 240) {
            if out.len() < 8 {
                out.push(USER_CODE_ALPHABET[usize::from(x % 20)] as char);
            }
        }
    }
    Ok(out)
}

/// `ABCDEFGH` shown as `ABCD-EFGH`.
pub fn display(code: &str) -> String {
    if code.len() == 8 {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// What a person typed, as a stored user code: upper-cased, separators dropped; `None` if it
/// cannot be one.
pub fn normalize(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

/// The PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    B64.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Hex SHA-256, for store keys and browser binding (never store a secret itself).
pub fn sha256_hex(s: &str) -> String {
    hex(digest::digest(&digest::SHA256, s.as_bytes()).as_ref())
}

/// Constant-time equality of two strings.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_documented_shape() {
        let d = device_code().unwrap();
        assert_eq!(d.len(), 43);
        let u = user_code().unwrap();
        assert_eq!(u.len(), 8);
        assert!(u.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        assert_eq!(display("BCDFGHJK"), "BCDF-GHJK");
        assert_ne!(user_code().unwrap(), user_code().unwrap());
    }

    #[test]
    fn typed_codes_are_forgiving_but_strict() {
        assert_eq!(normalize(" bcdf-ghjk ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize("BCDF GHJK").as_deref(), Some("BCDFGHJK"));
        assert_eq!(
            normalize("ABCD-EFGH"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize("BCDF-GHJ"), None);
    }

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
