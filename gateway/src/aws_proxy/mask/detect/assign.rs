//! Masking by key inside text: `key=value`, `key: value`, `"key": "value"` and
//! `<key>value</…>`, where the key is a secret-holding name (see `keys`). This covers env files
//! (`AWS_SECRET_ACCESS_KEY=…`), ADO connection strings (`…;Password=…;`), query strings, YAML,
//! and JSON or XML that did not parse.
//!
//! A key is a run of letters, digits, `_ . -` starting with a letter or `_`, not glued to a
//! preceding one, optionally closed by a quote (`"`, `'`, or an escaped `\"`). Blanks may surround
//! the separator (`=`, `:`, `:=`; `>` only when the key follows `<`; not `==`, `::` or `://`).
//! The value is quoted (up to the matching quote, or the end) or unquoted: after `=` it runs to
//! `; &`, a line end, a quote, `<` or an escaped `\n \r \"`, trailing blanks dropped (passwords in
//! ADO strings may hold spaces); after `:` it also stops at blanks and `, } ] )`; after `>` it
//! runs to the next `<`. Empty values, `null` and tokens are left alone, and so is a key right
//! after a `:` (an ARN's `…:secret:name` names a secret, it does not hold one).

use super::{maskable, Hit};
use crate::aws_proxy::mask::keys::kind_for_key;
use crate::aws_proxy::mask::kind::{is_token, TOKEN_PREFIX};

const MAX_KEY: usize = 256;
const MAX_BLANKS: usize = 16;

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

/// The values of secret-named assignments in `text`.
pub(super) fn assignments(text: &str, hits: &mut Vec<Hit>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_alphabetic() || c == b'_') || (i > 0 && is_key_char(b[i - 1])) {
            i += 1;
            continue;
        }
        let key_start = i;
        while i < b.len() && is_key_char(b[i]) {
            i += 1;
        }
        if i - key_start > MAX_KEY || (key_start > 0 && b[key_start - 1] == b':') {
            continue;
        }
        let Some(kind) = kind_for_key(&text[key_start..i]) else {
            continue;
        };
        let after_lt = key_start > 0 && b[key_start - 1] == b'<';
        if let Some((start, end, resume)) = value_after(b, i, after_lt) {
            if maskable(text, start, end) && text.get(start..end) != Some("null") {
                hits.push(Hit { start, end, kind });
            }
            i = resume.max(i);
        }
    }
}

/// The length of the token `b` starts with, if it starts with one.
fn token_len(b: &[u8]) -> Option<usize> {
    if !b.starts_with(TOKEN_PREFIX.as_bytes()) {
        return None;
    }
    let close = b.iter().take(40).position(|c| *c == b']')?;
    std::str::from_utf8(&b[..=close])
        .ok()
        .filter(|t| is_token(t))
        .map(|_| close + 1)
}

fn skip_blanks(b: &[u8], mut j: usize) -> usize {
    let from = j;
    while j < b.len() && j - from < MAX_BLANKS && matches!(b[j], b' ' | b'\t') {
        j += 1;
    }
    j
}

fn escaped_break(b: &[u8], j: usize) -> bool {
    b[j] == b'\\' && matches!(b.get(j + 1), Some(b'n' | b'r' | b'"'))
}

/// The value after a key ending at `j`: its range and where scanning resumes.
fn value_after(b: &[u8], mut j: usize, after_lt: bool) -> Option<(usize, usize, usize)> {
    if b.get(j) == Some(&b'\\') && b.get(j + 1) == Some(&b'"') {
        j += 2;
    } else if matches!(b.get(j), Some(b'"' | b'\'')) {
        j += 1;
    }
    j = skip_blanks(b, j);
    let sep = *b.get(j)?;
    match (sep, b.get(j + 1)) {
        (b'>', _) if after_lt => {
            let end = j + 1 + b[j + 1..].iter().take_while(|c| **c != b'<').count();
            return Some((j + 1, end, end));
        }
        (b'=', Some(b'=')) | (b':', Some(b':' | b'/')) => return None,
        (b':', Some(b'=')) => j += 2,
        (b'=' | b':', _) => j += 1,
        _ => return None,
    }
    j = skip_blanks(b, j);
    if b.get(j) == Some(&b'\\') && b.get(j + 1) == Some(&b'"') {
        let start = j + 2;
        let end = b[start..]
            .windows(2)
            .position(|w| w == b"\\\"")
            .map_or(b.len(), |r| start + r);
        return Some((start, end, (end + 2).min(b.len())));
    }
    if let Some(&q @ (b'"' | b'\'')) = b.get(j) {
        let start = j + 1;
        let mut k = start;
        while k < b.len() && b[k] != q {
            k += if q == b'"' && b[k] == b'\\' { 2 } else { 1 };
        }
        let end = k.min(b.len());
        return Some((start, end, (end + 1).min(b.len())));
    }
    if let Some(len) = token_len(&b[j..]) {
        return Some((j, j + len, j + len));
    }
    let start = j;
    let mut end = start;
    while end < b.len() {
        let c = b[end];
        let stop = matches!(c, b';' | b'&' | b'\n' | b'\r' | b'"' | b'\'' | b'<')
            || escaped_break(b, end)
            || (sep == b':' && (c.is_ascii_whitespace() || matches!(c, b',' | b'}' | b']' | b')')));
        if stop {
            break;
        }
        end += 1;
    }
    let resume = end;
    while end > start && matches!(b[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    Some((start, end, resume))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_proxy::mask::kind::Kind;

    fn found(text: &str) -> Vec<(&str, Kind)> {
        let mut hits = Vec::new();
        assignments(text, &mut hits);
        hits.iter()
            .map(|h| (&text[h.start..h.end], h.kind))
            .collect()
    }

    #[test]
    fn env_files_mask_their_secret_values() {
        let env = "AWS_ACCESS_KEY_ID=AKIA\nAWS_SECRET_ACCESS_KEY=abc/def+ghi\nexport DB_PASSWORD='p w'\nREGION=eu\n";
        assert_eq!(
            found(env),
            vec![
                ("abc/def+ghi", Kind::AwsSecretAccessKey),
                ("p w", Kind::Password)
            ]
        );
    }

    #[test]
    fn ado_strings_mask_the_password_with_its_spaces() {
        let ado = "Server=db;User Id=app;Password=my pass word ;Encrypt=true";
        assert_eq!(found(ado), vec![("my pass word", Kind::Password)]);
        assert_eq!(
            found("Data Source=x;Pwd=abc"),
            vec![("abc", Kind::Password)]
        );
    }

    #[test]
    fn json_yaml_query_and_xml_shapes_are_understood() {
        assert_eq!(
            found(r#"{"SessionToken": "FwoG\"x", "NextToken": "n1"}"#),
            vec![(r#"FwoG\"x"#, Kind::Token)]
        );
        assert_eq!(
            found(r#"{\"password\":\"hunter2\"}"#),
            vec![("hunter2", Kind::Password)]
        );
        assert_eq!(found("client_secret: abc def"), vec![("abc", Kind::Secret)]);
        assert_eq!(found("?user=a&password=b&x=1"), vec![("b", Kind::Password)]);
        assert_eq!(
            found("<Password>p&amp;q</Password>"),
            vec![("p&amp;q", Kind::Password)]
        );
        assert_eq!(found("api_key := \"k\""), vec![("k", Kind::Secret)]);
    }

    #[test]
    fn near_misses_of_assignments_are_left_alone() {
        for text in [
            "password",
            "password=",
            "password = null",
            "password==x",
            "mypassword_hint=x",
            "xpassword:",
            "token://host",
            "token::Type",
            "Password=[MASKED:password];",
            "password: [MASKED:password], x",
            "arn:aws:secretsmanager:eu-west-1:1:secret:prod/db-Ab12Cd",
            "NextToken=abc",
            "</Password>x",
        ] {
            assert!(found(text).is_empty(), "{text}");
        }
    }
}
