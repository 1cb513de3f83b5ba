//! Masking by key: the field names (JSON object keys, XML element and attribute names, `key=value`
//! names in text) whose value is always masked, and the configured key paths.
//!
//! A name is compared after dropping everything but ASCII letters and digits and lowercasing, so
//! `SecretAccessKey`, `secret_access_key` and `AWS-SECRET-ACCESS-KEY` are one name. It is masked
//! when it ends with:
//!
//! - `secretaccesskey` → `aws_secret_access_key`;
//! - `secretstring`, `secretbinary`, `secret`, `secretkey`, `apikey`, `plaintext` (a KMS data
//!   key) → `secret`;
//! - `privatekey`, `keymaterial` → `private_key`;
//! - `password`, `passwd`, `passphrase`, `pwd` → `password`;
//! - `token` → `token`, except pagination and idempotency tokens, which a client needs back
//!   unchanged: names starting with `next` or `prev`, containing `continuation` or
//!   `pagination`, or ending with `pagetoken`, `startingtoken`, `clienttoken` or
//!   `idempotencytoken`.
//!
//! Names such as `SecretId`, `SecretArn` or `PasswordLastUsed` name or describe a secret without
//! holding it, and are left alone.
//!
//! A configured key path names further fields, as keys separated by dots: `Parameter.Value`
//! matches a `Value` inside a `Parameter` at any depth; a leading `$.` anchors the path at the
//! top (`$.Parameter.Value`; in XML the top is the root element); `*` matches any one key. Keys
//! compare case-insensitively; arrays do not count as a level, so `Parameters.Value` also
//! matches each element of a `Parameters` array. A key containing a dot cannot be named.

use super::budget::Budget;
use super::kind::Kind;
use super::Unmaskable;

/// The most paths one configuration may hold.
pub const MAX_PATHS: usize = 64;
/// The most keys one path may hold.
pub const MAX_SEGMENTS: usize = 16;
/// The longest key a path may name, in bytes.
pub const MAX_SEGMENT_BYTES: usize = 128;

/// The kind a field's value is masked as, from the field's name alone.
pub fn kind_for_key(key: &str) -> Option<Kind> {
    let name: String = key
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect();
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| name.ends_with(s));
    if ends(&["secretaccesskey"]) {
        Some(Kind::AwsSecretAccessKey)
    } else if ends(&["privatekey", "keymaterial"]) {
        Some(Kind::PrivateKey)
    } else if ends(&["password", "passwd", "passphrase", "pwd"]) {
        Some(Kind::Password)
    } else if ends(&[
        "secretstring",
        "secretbinary",
        "secret",
        "secretkey",
        "apikey",
        "plaintext",
    ]) {
        Some(Kind::Secret)
    } else if name.ends_with("token") && !is_pagination(&name) {
        Some(Kind::Token)
    } else {
        None
    }
}

fn is_pagination(name: &str) -> bool {
    name.starts_with("next")
        || name.starts_with("prev")
        || name.contains("continuation")
        || name.contains("pagination")
        || [
            "pagetoken",
            "startingtoken",
            "clienttoken",
            "idempotencytoken",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Why a configured key path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path names no key.
    #[error("key path `{0}` names no key")]
    Empty(String),
    /// Two dots in a row, or a dot at either end.
    #[error("key path `{0}` has an empty key")]
    EmptySegment(String),
    /// More keys than [`MAX_SEGMENTS`].
    #[error("key path `{0}` has more than {MAX_SEGMENTS} keys")]
    TooManySegments(String),
    /// A key longer than [`MAX_SEGMENT_BYTES`].
    #[error("key path `{0}` has a key longer than {MAX_SEGMENT_BYTES} bytes")]
    SegmentTooLong(String),
    /// More paths than [`MAX_PATHS`].
    #[error("more than {MAX_PATHS} key paths")]
    TooManyPaths,
}

/// One configured key path (see the module documentation for its syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    anchored: bool,
    /// Lowercased keys; `None` is `*`.
    segments: Vec<Option<String>>,
}

impl KeyPath {
    /// Reads a path such as `Parameter.Value`, `$.Parameter.Value` or `Items.*.Secret`.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let trimmed = text.trim();
        let (anchored, rest) = match trimmed.strip_prefix('$') {
            Some("") => return Err(PathError::Empty(text.to_owned())),
            Some(rest) => match rest.strip_prefix('.') {
                Some(rest) => (true, rest),
                None => return Err(PathError::EmptySegment(text.to_owned())),
            },
            None => (false, trimmed),
        };
        if rest.is_empty() {
            return Err(PathError::Empty(text.to_owned()));
        }
        let mut segments = Vec::new();
        for segment in rest.split('.') {
            if segment.is_empty() {
                return Err(PathError::EmptySegment(text.to_owned()));
            }
            if segment.len() > MAX_SEGMENT_BYTES {
                return Err(PathError::SegmentTooLong(text.to_owned()));
            }
            if segments.len() == MAX_SEGMENTS {
                return Err(PathError::TooManySegments(text.to_owned()));
            }
            segments.push((segment != "*").then(|| segment.to_ascii_lowercase()));
        }
        Ok(KeyPath { anchored, segments })
    }

    /// Whether the keys from the top down to a field (`stack`, last is the field) match.
    pub(crate) fn matches<S: AsRef<str>>(&self, stack: &[S]) -> bool {
        let n = self.segments.len();
        if stack.len() < n || (self.anchored && stack.len() != n) {
            return false;
        }
        let tail = &stack[stack.len() - n..];
        self.segments
            .iter()
            .zip(tail)
            .all(|(segment, key)| match segment {
                None => true,
                Some(want) => want.eq_ignore_ascii_case(key.as_ref()),
            })
    }

    fn last_matches(&self, key: &str) -> bool {
        self.segments
            .last()
            .is_some_and(|s| s.as_ref().is_none_or(|want| want.eq_ignore_ascii_case(key)))
    }
}

/// The kind a configured path gives the field at the end of `stack` (last is the field), the
/// work spent from `budget`: one unit per path, and a path's length for each path whose last
/// key matches.
pub(crate) fn path_kind<S: AsRef<str>>(
    paths: &[KeyPath],
    stack: &[S],
    budget: &mut Budget,
) -> Result<Option<Kind>, Unmaskable> {
    budget.spend(paths.len())?;
    let Some(key) = stack.last() else {
        return Ok(None);
    };
    for path in paths.iter().filter(|p| p.last_matches(key.as_ref())) {
        budget.spend(path.segments.len())?;
        if path.matches(stack) {
            return Ok(Some(Kind::Secret));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_holding_names_are_masked_with_their_kind() {
        for (key, kind) in [
            ("SecretString", Kind::Secret),
            ("SecretBinary", Kind::Secret),
            ("ClientSecret", Kind::Secret),
            ("x-api-key", Kind::Secret),
            ("Plaintext", Kind::Secret),
            ("Password", Kind::Password),
            ("MasterUserPassword", Kind::Password),
            ("db_pwd", Kind::Password),
            ("SecretAccessKey", Kind::AwsSecretAccessKey),
            ("AWS_SECRET_ACCESS_KEY", Kind::AwsSecretAccessKey),
            ("SessionToken", Kind::Token),
            ("access_token", Kind::Token),
            ("Token", Kind::Token),
            ("authorizationToken", Kind::Token),
            ("PrivateKey", Kind::PrivateKey),
            ("KeyMaterial", Kind::PrivateKey),
        ] {
            assert_eq!(kind_for_key(key), Some(kind), "{key}");
        }
    }

    #[test]
    fn names_of_secrets_and_pagination_tokens_are_left_alone() {
        for key in [
            "SecretId",
            "SecretArn",
            "Name",
            "PasswordLastUsed",
            "NextToken",
            "NextForwardToken",
            "NextContinuationToken",
            "ContinuationToken",
            "PaginationToken",
            "nextPageToken",
            "ClientToken",
            "IdempotencyToken",
            "TokenCode",
            "",
        ] {
            assert_eq!(kind_for_key(key), None, "{key}");
        }
    }

    #[test]
    fn an_unanchored_path_matches_the_end_of_the_key_stack() {
        let path = KeyPath::parse("Parameter.Value").unwrap();
        assert!(path.matches(&["Parameter", "Value"]));
        assert!(path.matches(&["Outer", "parameter", "VALUE"]));
        assert!(!path.matches(&["Parameter", "Name"]));
        assert!(!path.matches(&["Value"]));
    }

    #[test]
    fn an_anchored_path_matches_only_from_the_top() {
        let path = KeyPath::parse("$.Parameter.Value").unwrap();
        assert!(path.matches(&["Parameter", "Value"]));
        assert!(!path.matches(&["Outer", "Parameter", "Value"]));
        let wild = KeyPath::parse("$.*.Value").unwrap();
        assert!(wild.matches(&["Anything", "Value"]));
    }

    #[test]
    fn malformed_paths_are_refused() {
        assert!(matches!(KeyPath::parse(""), Err(PathError::Empty(_))));
        assert!(matches!(KeyPath::parse("$"), Err(PathError::Empty(_))));
        assert!(matches!(KeyPath::parse("$."), Err(PathError::Empty(_))));
        assert!(matches!(
            KeyPath::parse("$x"),
            Err(PathError::EmptySegment(_))
        ));
        assert!(matches!(
            KeyPath::parse("a..b"),
            Err(PathError::EmptySegment(_))
        ));
        assert!(matches!(
            KeyPath::parse("a."),
            Err(PathError::EmptySegment(_))
        ));
        let long = "a".repeat(MAX_SEGMENT_BYTES + 1);
        assert!(matches!(
            KeyPath::parse(&long),
            Err(PathError::SegmentTooLong(_))
        ));
        let deep = vec!["a"; MAX_SEGMENTS + 1].join(".");
        assert!(matches!(
            KeyPath::parse(&deep),
            Err(PathError::TooManySegments(_))
        ));
    }
}
