//! AWS access key ids and secret access keys.
//!
//! An access key id is `AKIA`, `ASIA`, `ABIA` or `ACCA` followed by 16 uppercase letters or
//! digits, with no letter or digit on either side.
//!
//! A secret access key is a run of exactly 40 characters from `A-Z a-z 0-9 / +` with none of
//! those on either side; since many 40-character strings are not secrets (hashes, ids), a run is
//! masked only when it stands near evidence: an access key id ends or starts within 256 bytes of
//! it, or the word `secret` (any case, not inside a token) appears in the 64 bytes before it.
//! Values of secret-named fields are masked by key whatever their shape.

use super::Hit;
use crate::aws_proxy::mask::kind::{Kind, TOKEN_PREFIX};

const KEY_ID_PREFIXES: [&[u8]; 4] = [b"AKIA", b"ASIA", b"ABIA", b"ACCA"];
const KEY_ID_LEN: usize = 20;
const SECRET_LEN: usize = 40;
const NEAR_KEY_ID: usize = 256;
const KEYWORD_WINDOW: usize = 64;

/// The access key ids in `text`, in order.
pub(super) fn access_key_ids(text: &str) -> Vec<Hit> {
    let b = text.as_bytes();
    let mut hits = Vec::new();
    let mut i = 0;
    while i + KEY_ID_LEN <= b.len() {
        let candidate = &b[i..i + KEY_ID_LEN];
        let bounded = (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && b.get(i + KEY_ID_LEN)
                .is_none_or(|c| !c.is_ascii_alphanumeric());
        if bounded
            && KEY_ID_PREFIXES.contains(&&candidate[..4])
            && candidate[4..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            hits.push(Hit {
                start: i,
                end: i + KEY_ID_LEN,
                kind: Kind::AwsAccessKeyId,
            });
            i += KEY_ID_LEN;
        } else {
            i += 1;
        }
    }
    hits
}

fn is_secret_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'/' || c == b'+'
}

/// The secret access keys in `text`, given its access key ids (sorted).
pub(super) fn secret_access_keys(text: &str, key_ids: &[Hit], hits: &mut Vec<Hit>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !is_secret_char(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_secret_char(b[i]) {
            i += 1;
        }
        if i - start == SECRET_LEN && (near_key_id(start, i, key_ids) || keyword_before(b, start)) {
            hits.push(Hit {
                start,
                end: i,
                kind: Kind::AwsSecretAccessKey,
            });
        }
    }
}

fn near_key_id(start: usize, end: usize, key_ids: &[Hit]) -> bool {
    let after = key_ids.partition_point(|id| id.start < start);
    let before_is_near = after
        .checked_sub(1)
        .and_then(|k| key_ids.get(k))
        .is_some_and(|id| start.saturating_sub(id.end) <= NEAR_KEY_ID);
    let after_is_near = key_ids
        .get(after)
        .is_some_and(|id| id.start.saturating_sub(end) <= NEAR_KEY_ID);
    before_is_near || after_is_near
}

fn keyword_before(b: &[u8], start: usize) -> bool {
    let from = start.saturating_sub(KEYWORD_WINDOW);
    (from..start.saturating_sub(5)).any(|p| {
        b.get(p..p + 6)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"secret"))
            && !inside_token(b, p)
    })
}

/// Whether position `p` lies in the kind name of a `[MASKED:kind]` token.
fn inside_token(b: &[u8], p: usize) -> bool {
    let mut j = p;
    while j > 0 && p - j < 32 && (b[j - 1].is_ascii_lowercase() || b[j - 1] == b'_') {
        j -= 1;
    }
    b[..j].ends_with(TOKEN_PREFIX.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn ids(text: &str) -> Vec<&str> {
        access_key_ids(text)
            .iter()
            .map(|h| &text[h.start..h.end])
            .collect()
    }

    fn secrets(text: &str) -> Vec<&str> {
        let mut hits = Vec::new();
        secret_access_keys(text, &access_key_ids(text), &mut hits);
        hits.iter().map(|h| &text[h.start..h.end]).collect()
    }

    #[test]
    fn access_key_ids_of_every_prefix_are_found() {
        assert_eq!(ids(ID), vec![ID]);
        assert_eq!(
            ids("id=ASIAY34FZKBOKMUTVV7A, other ABIAY34FZKBOKMUTVV7A"),
            vec!["ASIAY34FZKBOKMUTVV7A", "ABIAY34FZKBOKMUTVV7A"]
        );
        assert_eq!(
            ids("\"ACCAY34FZKBOKMUTVV7A\""),
            vec!["ACCAY34FZKBOKMUTVV7A"]
        );
    }

    #[test]
    fn near_misses_of_access_key_ids_are_left_alone() {
        for text in [
            "AKIAIOSFODNN7EXAMPL",   // 19 characters
            "AKIAIOSFODNN7EXAMPLEX", // 21 characters
            "xAKIAIOSFODNN7EXAMPLE", // glued to a word
            "AKIAiosfodnn7example",  // lowercase
            "AROAIOSFODNN7EXAMPLE",  // a role id, not a key
            "AIDAIOSFODNN7EXAMPLE",  // a user id, not a key
        ] {
            assert!(ids(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn a_secret_next_to_a_key_id_or_the_word_secret_is_found() {
        assert_eq!(secrets(&format!("{ID} {SECRET}")), vec![SECRET]);
        assert_eq!(secrets(&format!("{SECRET}\n{ID}")), vec![SECRET]);
        assert_eq!(
            secrets(&format!("aws_secret_access_key = {SECRET}")),
            vec![SECRET]
        );
        assert_eq!(secrets(&format!("\"Secret\": \"{SECRET}\"")), vec![SECRET]);
    }

    #[test]
    fn a_forty_character_run_without_evidence_is_left_alone() {
        let far = format!("{ID}{}{SECRET}", " ".repeat(300));
        assert!(secrets(&far).is_empty());
        assert!(secrets(&format!("commit {SECRET}")).is_empty());
        let long = format!("secret {SECRET}A");
        assert!(secrets(&long).is_empty(), "41 characters");
        let short = format!("secret {}", &SECRET[1..]);
        assert!(secrets(&short).is_empty(), "39 characters");
        let token = format!("[MASKED:aws_secret_access_key] {SECRET}");
        assert!(secrets(&token).is_empty(), "a token is no evidence");
    }
}
