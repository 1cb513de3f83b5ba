//! Session tokens (`SessionKeys::verify`): any string is refused without a panic, a minted token
//! verifies to the identity it was minted for, and no change to a token is ever accepted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use claude_gateway::auth::token::{Identity, SessionKeys, TokenError};
use claude_gateway::config::Secret;
use proptest::prelude::*;
use time::OffsetDateTime;

const SECRET: &str = "0123456789abcdef0123456789abcdef-props";
const OTHER: &str = "0123456789abcdef0123456789abcdef-other";
const ISSUER: &str = "https://gw.example.com";

fn keys() -> SessionKeys {
    SessionKeys::new(
        &[Secret::new(SECRET), Secret::new(OTHER)],
        Some(ISSUER.to_owned()),
    )
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn identity() -> impl Strategy<Value = Identity> {
    (
        ".{1,40}",
        prop::option::of(".{0,40}"),
        prop::option::of(".{0,40}"),
        prop::collection::vec(".{0,20}", 0..5),
    )
        .prop_map(|(sub, email, name, groups)| Identity {
            sub,
            email,
            name,
            groups,
            mfa_at: None,
        })
}

/// A valid token for a generated identity.
fn token() -> impl Strategy<Value = (Identity, String)> {
    (identity(), 1i64..100_000).prop_map(|(who, ttl)| {
        let t = keys().mint(&who, now(), time::Duration::seconds(ttl));
        (who, t)
    })
}

/// Strings shaped like tokens: base64url characters and dots.
fn token_like() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_=+/.-]{0,300}"
}

/// A header that is not the one the gateway signed, as JSON text.
fn foreign_header() -> impl Strategy<Value = String> {
    let kid = kid();
    let reordered = format!(r#"{{"kid":"{kid}","typ":"JWT","alg":"HS256"}}"#);
    let spaced = format!(r#"{{"alg": "HS256", "kid": "{kid}", "typ": "JWT"}}"#);
    let json = prop_oneof![
        Just(serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid})),
        Just(serde_json::json!({"alg": "None", "kid": kid})),
        Just(serde_json::json!({"alg": "NONE", "kid": kid})),
        Just(serde_json::json!({"alg": "", "kid": kid})),
        Just(serde_json::json!({"alg": null, "kid": kid})),
        Just(serde_json::json!({"kid": kid})),
        Just(serde_json::json!({"alg": "HS384", "kid": kid})),
        Just(serde_json::json!({"alg": "RS256", "kid": kid})),
        Just(serde_json::json!({"alg": ["HS256"], "kid": kid})),
        Just(serde_json::json!({"alg": "HS256", "typ": "JWT"})),
        Just(serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "0000000000000000"})),
        Just(serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})),
        Just(serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid, "x": 1})),
    ];
    prop_oneof![
        json.prop_map(|v| v.to_string()),
        // The same header, written differently: the signature covers the bytes, not the meaning.
        Just(reordered),
        Just(spaced),
    ]
}

/// The key id the first secret signs with.
pub fn kid() -> String {
    claude_gateway::auth::token::kid(SECRET)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_string_is_refused(s in prop_oneof![any::<String>(), token_like()]) {
        prop_assert!(keys().verify(&s, now()).is_err());
    }

    #[test]
    fn three_parts_of_any_json_are_refused(
        h in prop_oneof![any::<String>(), Just(r#"{"alg":"HS256","typ":"JWT"}"#.to_owned())],
        p in any::<String>(),
        s in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let t = format!("{}.{}.{}", B64.encode(h), B64.encode(p), B64.encode(s));
        prop_assert!(keys().verify(&t, now()).is_err());
    }

    #[test]
    fn a_minted_token_verifies_to_its_identity((who, t) in token()) {
        let claims = keys().verify(&t, now());
        prop_assert!(claims.is_ok(), "{:?}", claims);
        prop_assert_eq!(claims.unwrap().identity, who);
    }

    #[test]
    fn no_changed_character_is_accepted((_, t) in token(), at in any::<prop::sample::Index>(), c in any::<char>()) {
        let mut chars: Vec<char> = t.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != c);
        chars[i] = c;
        let changed: String = chars.into_iter().collect();
        prop_assert!(keys().verify(&changed, now()).is_err(), "accepted {}", changed);
    }

    #[test]
    fn no_flipped_bit_is_accepted((_, t) in token(), at in any::<prop::sample::Index>(), bit in 0u8..7) {
        let mut bytes = t.into_bytes();
        let i = at.index(bytes.len());
        // Flipping one of the low seven bits keeps an ASCII byte ASCII.
        bytes[i] ^= 1 << bit;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(keys().verify(&changed, now()).is_err(), "accepted {}", changed);
    }

    #[test]
    fn no_truncation_or_extension_is_accepted(
        (_, t) in token(),
        cut in any::<prop::sample::Index>(),
        tail in "[A-Za-z0-9_=.-]{1,8}",
    ) {
        let k = keys();
        let short = &t[..cut.index(t.len())];
        prop_assert!(k.verify(short, now()).is_err());
        let longer = format!("{t}{tail}");
        prop_assert!(k.verify(&longer, now()).is_err());
        let longer = format!("{tail}{t}");
        prop_assert!(k.verify(&longer, now()).is_err());
    }

    #[test]
    fn a_reencoded_header_is_refused((_, t) in token(), header in foreign_header(), keep_sig in any::<bool>()) {
        let mut parts = t.split('.');
        let (_, p, s) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let h = B64.encode(header);
        let forged = format!("{h}.{p}.{}", if keep_sig { s } else { "" });
        prop_assert!(keys().verify(&forged, now()).is_err());
    }

    #[test]
    fn changed_claims_are_refused((who, t) in token(), sub in ".{1,20}", admin in any::<bool>()) {
        let mut parts = t.split('.');
        let (h, p, s) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let mut claims: serde_json::Value = serde_json::from_slice(&B64.decode(p).unwrap()).unwrap();
        if admin {
            prop_assume!(who.groups != ["admins"]);
            claims["groups"] = serde_json::json!(["admins"]);
        } else {
            prop_assume!(sub != who.sub);
            claims["sub"] = sub.into();
        }
        let forged = format!("{h}.{}.{s}", B64.encode(claims.to_string()));
        prop_assert_eq!(keys().verify(&forged, now()), Err(TokenError::Signature));
    }
}
