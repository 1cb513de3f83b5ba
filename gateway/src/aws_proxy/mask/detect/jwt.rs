//! JSON Web Tokens: three to five base64url parts separated by dots (a JWS, or a JWE's five),
//! starting at `eyJ` with no base64url character or dot before it, whose first part decodes to a
//! JSON object with a string `alg`. The signature may be empty (`alg: none`); the payload may not.

use base64::Engine as _;

use super::Hit;
use crate::aws_proxy::mask::kind::Kind;

/// A header longer than this is not decoded, and the run is not a token.
const MAX_HEADER: usize = 4096;

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// The JSON Web Tokens in `text`.
pub(super) fn tokens(text: &str, hits: &mut Vec<Hit>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 3 <= b.len() {
        let starts =
            b[i..].starts_with(b"eyJ") && (i == 0 || !(is_b64url(b[i - 1]) || b[i - 1] == b'.'));
        if starts {
            if let Some(end) = token_at(b, i) {
                hits.push(Hit {
                    start: i,
                    end,
                    kind: Kind::Jwt,
                });
                i = end;
                continue;
            }
        }
        i += 1;
    }
}

fn run_end(b: &[u8], from: usize) -> usize {
    from + b[from..].iter().take_while(|c| is_b64url(**c)).count()
}

fn token_at(b: &[u8], start: usize) -> Option<usize> {
    let header_end = run_end(b, start);
    let mut parts = 1;
    let mut end = header_end;
    let mut payload_len = 0;
    while parts < 5 && b.get(end) == Some(&b'.') {
        let next = run_end(b, end + 1);
        if parts == 1 {
            payload_len = next - (end + 1);
        }
        end = next;
        parts += 1;
    }
    if parts < 3 || payload_len == 0 || header_end - start > MAX_HEADER {
        return None;
    }
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&b[start..header_end])
        .ok()?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).ok()?;
    header.get("alg")?.as_str()?;
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn found(text: &str) -> Vec<&str> {
        let mut hits = Vec::new();
        tokens(text, &mut hits);
        hits.iter().map(|h| &text[h.start..h.end]).collect()
    }

    fn jwt(header: &str) -> String {
        format!("{}.{}.c2lnbmF0dXJl", b64(header), b64(r#"{"sub":"1"}"#))
    }

    #[test]
    fn signed_unsigned_and_encrypted_tokens_are_found() {
        let signed = jwt(r#"{"alg":"RS256","typ":"JWT"}"#);
        assert_eq!(
            found(&format!("Bearer {signed} rest")),
            vec![signed.as_str()]
        );
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
        assert_eq!(found(&unsigned), vec![unsigned.as_str()]);
        let jwe = format!("{}.a.b.c.d", b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#));
        assert_eq!(found(&jwe), vec![jwe.as_str()]);
    }

    #[test]
    fn near_misses_of_tokens_are_left_alone() {
        let no_alg = jwt(r#"{"typ":"JWT"}"#);
        let alg_not_string = jwt(r#"{"alg":1}"#);
        let two_parts = format!("{}.{}", b64(r#"{"alg":"HS256"}"#), b64("{}"));
        let empty_payload = format!("{}..sig", b64(r#"{"alg":"HS256"}"#));
        let glued = format!("x{}", jwt(r#"{"alg":"HS256"}"#));
        let not_json = "eyJub3QganNvbg.eyJ9.sig".to_owned();
        for text in [
            no_alg,
            alg_not_string,
            two_parts,
            empty_payload,
            glued,
            not_json,
        ] {
            assert!(found(&text).is_empty(), "{text}");
        }
    }
}
