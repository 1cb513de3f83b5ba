//! PEM private keys: from `-----BEGIN <label>-----` to the matching `-----END <label>-----`,
//! where the label (uppercase letters, digits and spaces, at most 64) contains `PRIVATE KEY`
//! (`RSA PRIVATE KEY`, `EC PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`,
//! `PGP PRIVATE KEY BLOCK`, …). A block with no end is masked to the end of the string: a
//! truncated key is still a key.

use super::Hit;
use crate::aws_proxy::mask::kind::Kind;

const BEGIN: &str = "-----BEGIN ";
const DASHES: &str = "-----";
const MAX_LABEL: usize = 64;

/// The PEM private-key blocks in `text`.
pub(super) fn private_keys(text: &str, hits: &mut Vec<Hit>) {
    let mut from = 0;
    while let Some(rel) = text.get(from..).and_then(|rest| rest.find(BEGIN)) {
        let begin = from + rel;
        let label_start = begin + BEGIN.len();
        let label_len = text.as_bytes()[label_start..]
            .iter()
            .take(MAX_LABEL + 1)
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b' ')
            .count();
        let label_end = label_start + label_len;
        let label = &text[label_start..label_end];
        let body_start = label_end + DASHES.len();
        if label_len > MAX_LABEL
            || !label.contains("PRIVATE KEY")
            || !text[label_end..].starts_with(DASHES)
        {
            from = label_start;
            continue;
        }
        let end_marker = format!("-----END {label}{DASHES}");
        let end = text[body_start..]
            .find(&end_marker)
            .map_or(text.len(), |r| body_start + r + end_marker.len());
        hits.push(Hit {
            start: begin,
            end,
            kind: Kind::PrivateKey,
        });
        from = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut hits = Vec::new();
        private_keys(text, &mut hits);
        hits.iter().map(|h| &text[h.start..h.end]).collect()
    }

    const KEY: &str =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn private_key_blocks_are_found_whole() {
        assert_eq!(found(&format!("key:\n{KEY}\nrest")), vec![KEY]);
        let openssh =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(found(openssh), vec![openssh]);
        let two = format!("{KEY}{KEY}");
        assert_eq!(found(&two), vec![KEY, KEY]);
    }

    #[test]
    fn a_block_without_its_end_is_masked_to_the_end() {
        let cut = "x -----BEGIN PRIVATE KEY-----\nMIIE";
        assert_eq!(found(cut), vec![&cut[2..]]);
        let mismatched = "-----BEGIN PRIVATE KEY-----\nA\n-----END RSA PRIVATE KEY-----";
        assert_eq!(found(mismatched), vec![mismatched]);
    }

    #[test]
    fn public_material_and_broken_headers_are_left_alone() {
        for text in [
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
            "-----BEGIN private key-----",
            "-----BEGIN PRIVATE KEY----",
            "-----BEGIN ",
        ] {
            assert!(found(text).is_empty(), "{text}");
        }
    }
}
