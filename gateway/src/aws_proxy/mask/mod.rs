//! Masking on the way back: values in an AWS answer that must reach neither the model nor any
//! record become `[MASKED:kind]`. Pure and bounded: no I/O, a size limit, a nesting limit and a
//! cap on work per body. The stages, each a file:
//!
//! - [`kind`]: what a masked value was, and the counts per kind.
//! - [`keys`]: masking by key: secret-holding field names and configured key paths.
//! - [`detect`]: masking by value: AWS keys, private keys, JWTs, connection-string passwords,
//!   secret-named assignments in text, and (when enabled) emails and phone numbers.
//! - `json`, `xml`, `text`: the walkers, one per body format.
//! - [`rules`]: what a deployment masks; `budget`: the cap on work.
//!
//! [`mask`] picks the walker from the content type; a JSON or XML body that does not parse (or
//! nests deeper than [`MAX_DEPTH`]) is masked as text instead, which still applies every value
//! detector and the secret-named `key: value` shapes.

mod budget;
pub mod detect;
mod json;
pub mod keys;
pub mod kind;
pub mod rules;
mod text;
mod xml;

#[cfg(test)]
mod props;
#[cfg(test)]
mod shapes;

use std::borrow::Cow;

use budget::Budget;
pub use keys::{KeyPath, PathError};
pub use kind::{Counts, Kind};
pub use rules::Rules;

/// The deepest nesting of JSON arrays and objects, or XML elements, that is walked.
pub const MAX_DEPTH: usize = 100;

/// The body format a walker read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A JSON document.
    Json,
    /// An XML document.
    Xml,
    /// Anything else, or a JSON or XML body that did not parse.
    Text,
}

impl Format {
    /// The format's name, for records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Xml => "xml",
            Format::Text => "text",
        }
    }
}

/// A masked body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masked<'a> {
    /// The body to pass on: borrowed unchanged when nothing was masked.
    pub body: Cow<'a, [u8]>,
    /// How many values of each kind were masked.
    pub counts: Counts,
    /// The walker that read the body.
    pub format: Format,
    /// Whether the content type promised JSON or XML but the body was masked as text.
    pub fell_back: bool,
}

impl Masked<'_> {
    /// Whether anything was masked.
    pub fn changed(&self) -> bool {
        matches!(self.body, Cow::Owned(_))
    }
}

/// Why a body cannot be masked; the caller passes or refuses it by policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unmaskable {
    /// The body is larger than the configured limit.
    #[error("body of {size} bytes is over the masking limit of {limit} bytes")]
    TooLarge {
        /// The body's size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The body is not UTF-8: it is never partly masked.
    #[error("body is binary")]
    Binary,
    /// Masking the body would cost more work than its size allows.
    #[error("body costs more work to mask than allowed")]
    TooMuchWork,
}

/// Why a walker did not finish: the body is not its format, or it cannot be masked at all.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WalkError {
    NotThisFormat,
    Unmaskable(Unmaskable),
}

impl From<Unmaskable> for WalkError {
    fn from(e: Unmaskable) -> Self {
        WalkError::Unmaskable(e)
    }
}

/// One named value (a query or form parameter) masked: wholly when its name holds secrets
/// (`Password`, `SecretString`), else by the value detectors. Masked counts are added to `counts`.
pub fn field(name: &str, value: &str, rules: &Rules, counts: &mut Counts) -> String {
    if value.is_empty() || kind::is_token(value) {
        return value.to_owned();
    }
    if let Some(kind) = keys::kind_for_key(name) {
        counts.add(kind);
        return kind::token(kind);
    }
    let mut budget = Budget::for_body(value.len());
    match text::mask(value, rules, &mut budget, counts) {
        Ok(Some(masked)) => masked,
        Ok(None) => value.to_owned(),
        // Past the work cap: the whole value goes, as a secret would.
        Err(_) => {
            counts.add(Kind::Secret);
            kind::token(Kind::Secret)
        }
    }
}

/// Masks `body`, read as the format its `content_type` names: JSON for `application/json`,
/// `application/x-amz-json-1.0`/`1.1` and `+json` types; XML for `text/xml`, `application/xml`
/// and `+xml` types; text otherwise. With no content type or an octet-stream one, the first
/// non-blank character decides (`{` or `[` JSON, `<` XML). A body over the limit is `TooLarge`
/// and a non-UTF-8 body `Binary`, neither read at all.
pub fn mask<'a>(
    body: &'a [u8],
    content_type: Option<&str>,
    rules: &Rules,
) -> Result<Masked<'a>, Unmaskable> {
    if body.len() > rules.max_body_bytes() {
        return Err(Unmaskable::TooLarge {
            size: body.len(),
            limit: rules.max_body_bytes(),
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| Unmaskable::Binary)?;
    let mut budget = Budget::for_body(body.len());
    let wanted = format_of(content_type, text);
    if text.trim().is_empty() {
        return Ok(masked(body, None, Counts::default(), wanted, false));
    }
    let structured = match wanted {
        Format::Json => Some(json::mask as Walker),
        Format::Xml => Some(xml::mask as Walker),
        Format::Text => None,
    };
    if let Some(walk) = structured {
        let mut counts = Counts::default();
        match walk(text, rules, &mut budget, &mut counts) {
            Ok(out) => return Ok(masked(body, out, counts, wanted, false)),
            Err(WalkError::Unmaskable(e)) => return Err(e),
            Err(WalkError::NotThisFormat) => {}
        }
    }
    let mut counts = Counts::default();
    let out = text::mask(text, rules, &mut budget, &mut counts)?;
    Ok(masked(
        body,
        out,
        counts,
        Format::Text,
        wanted != Format::Text,
    ))
}

type Walker = fn(&str, &Rules, &mut Budget, &mut Counts) -> Result<Option<String>, WalkError>;

fn masked(
    body: &[u8],
    out: Option<String>,
    counts: Counts,
    format: Format,
    fell_back: bool,
) -> Masked<'_> {
    Masked {
        body: out.map_or(Cow::Borrowed(body), |s| Cow::Owned(s.into_bytes())),
        counts,
        format,
        fell_back,
    }
}

fn format_of(content_type: Option<&str>, text: &str) -> Format {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        None | Some("" | "application/octet-stream" | "binary/octet-stream") => {
            match text.trim_start().bytes().next() {
                Some(b'{' | b'[') => Format::Json,
                Some(b'<') => Format::Xml,
                _ => Format::Text,
            }
        }
        Some(m)
            if m == "application/json"
                || m.starts_with("application/x-amz-json")
                || m.ends_with("+json") =>
        {
            Format::Json
        }
        Some(m) if m == "text/xml" || m == "application/xml" || m.ends_with("+xml") => Format::Xml,
        Some(_) => Format::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_type_picks_the_walker() {
        for (ct, format) in [
            ("application/json", Format::Json),
            ("application/x-amz-json-1.1", Format::Json),
            ("application/X-AMZ-JSON-1.0; charset=utf-8", Format::Json),
            ("application/problem+json", Format::Json),
            ("text/xml", Format::Xml),
            ("application/xml;charset=UTF-8", Format::Xml),
            ("text/plain", Format::Text),
            ("text/html", Format::Text),
        ] {
            assert_eq!(format_of(Some(ct), "{}"), format, "{ct}");
        }
        assert_eq!(format_of(None, " {\"a\":1}"), Format::Json);
        assert_eq!(
            format_of(Some("binary/octet-stream"), "\n<a/>"),
            Format::Xml
        );
        assert_eq!(format_of(None, "A=1"), Format::Text);
    }

    #[test]
    fn a_body_over_the_limit_is_too_large_and_binary_is_binary() {
        let rules = Rules::default().with_max_body_bytes(4);
        assert_eq!(
            mask(b"12345", None, &rules),
            Err(Unmaskable::TooLarge { size: 5, limit: 4 })
        );
        assert_eq!(mask(b"\xff\xfe", None, &rules), Err(Unmaskable::Binary));
        let fits = mask(b"1234", None, &rules).unwrap();
        assert!(!fits.changed());
    }

    #[test]
    fn an_empty_body_is_passed_through_as_its_format() {
        let out = mask(b"", Some("application/x-amz-json-1.0"), &Rules::default()).unwrap();
        assert_eq!(out.format, Format::Json);
        assert!(!out.fell_back && !out.changed());
    }

    #[test]
    fn json_that_does_not_parse_is_masked_as_text() {
        let body = br#"{"Password": "hunter2", "id": "AKIAIOSFODNN7EXAMPLE""#;
        let out = mask(body, Some("application/json"), &Rules::default()).unwrap();
        assert_eq!(out.format, Format::Text);
        assert!(out.fell_back);
        assert_eq!(
            std::str::from_utf8(&out.body).unwrap(),
            r#"{"Password": "[MASKED:password]", "id": "[MASKED:aws_access_key_id]""#
        );
    }

    #[test]
    fn the_most_paths_over_many_small_objects_stay_within_the_work_cap() {
        let paths: Vec<String> = (0..keys::MAX_PATHS).map(|i| format!("p{i}.*")).collect();
        let rules = Rules::default().with_paths(&paths).unwrap();
        let body = format!("[{}{{\"a\":1}}]", "{\"a\":1},".repeat(100_000));
        let out = mask(body.as_bytes(), Some("application/json"), &rules).unwrap();
        assert_eq!(out.format, Format::Json);
        assert!(!out.changed());
    }

    #[test]
    fn clean_bodies_are_passed_through_borrowed() {
        let body = br#"{"Buckets":[{"Name":"logs"}]}"#;
        let out = mask(body, Some("application/json"), &Rules::default()).unwrap();
        assert!(matches!(out.body, Cow::Borrowed(b) if b == body));
        assert_eq!(out.format, Format::Json);
        assert!(!out.fell_back);
    }
}
