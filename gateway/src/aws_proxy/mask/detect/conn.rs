//! Passwords in connection URLs: `scheme://user:password@host…`. The authority runs from `://`
//! to the first `/ ? #`, whitespace, quote, `< > \` or backtick (at most 2 KiB); its user
//! information ends at the last `@`; the password is what follows the first `:` in it. Only the
//! password is masked. (ADO-style `Password=…;` strings are masked by key: see `assign`.)

use super::{maskable, Hit};
use crate::aws_proxy::mask::kind::Kind;

const MAX_AUTHORITY: usize = 2048;

fn ends_authority(c: u8) -> bool {
    matches!(
        c,
        b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\' | b'`'
    ) || c.is_ascii_whitespace()
        || c.is_ascii_control()
}

/// The passwords of connection URLs in `text`.
pub(super) fn url_passwords(text: &str, hits: &mut Vec<Hit>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(rel) = text.get(from..).and_then(|rest| rest.find("://")) {
        let sep = from + rel;
        let start = sep + 3;
        from = start;
        if sep == 0 || !b[sep - 1].is_ascii_alphanumeric() {
            continue;
        }
        let len = b[start..]
            .iter()
            .take(MAX_AUTHORITY)
            .take_while(|c| !ends_authority(**c))
            .count();
        let authority = &b[start..start + len];
        let Some(at) = authority.iter().rposition(|c| *c == b'@') else {
            continue;
        };
        let Some(colon) = authority[..at].iter().position(|c| *c == b':') else {
            continue;
        };
        let (pw_start, pw_end) = (start + colon + 1, start + at);
        if maskable(text, pw_start, pw_end) {
            hits.push(Hit {
                start: pw_start,
                end: pw_end,
                kind: Kind::Password,
            });
        }
        from = start + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut hits = Vec::new();
        url_passwords(text, &mut hits);
        hits.iter().map(|h| &text[h.start..h.end]).collect()
    }

    #[test]
    fn the_password_of_a_connection_url_is_found() {
        assert_eq!(
            found("postgres://app:s3cr3t@db.internal:5432/app"),
            vec!["s3cr3t"]
        );
        assert_eq!(
            found("DATABASE_URL=\"mysql://root:p@ss@h/db\""),
            vec!["p@ss"]
        );
        assert_eq!(
            found("amqps://u:pw@mq?x=1 redis://:only@cache"),
            vec!["pw", "only"]
        );
    }

    #[test]
    fn urls_without_a_password_are_left_alone() {
        for text in [
            "https://example.com/a:b@c",
            "https://user@example.com/",
            "postgres://app:@db/app",
            "://u:p@h",
            "s3://bucket/key",
            "postgres://app:[MASKED:password]@db/app",
        ] {
            assert!(found(text).is_empty(), "{text}");
        }
    }
}
