//! Reading a signature from a request: the `Authorization` header or the presigned query
//! parameters, the credential scope, the signed headers and the request time. Everything is
//! checked for shape and size here, before any hashing.

use http::HeaderMap;
use time::macros::format_description;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime};

use super::canonical::{query_pairs, Pair};
use super::{
    Request, Scope, SigV4Error, MAX_AUTHORIZATION_BYTES, MAX_HEADER_VALUE_BYTES, MAX_PATH_BYTES,
    MAX_PRESIGNED_EXPIRY, MAX_QUERY_BYTES, MAX_SIGNED_HEADERS,
};

/// The query parameters of the presigned form.
const ALGORITHM: &[u8] = b"X-Amz-Algorithm";
const CREDENTIAL: &[u8] = b"X-Amz-Credential";
const DATE: &[u8] = b"X-Amz-Date";
const EXPIRES: &[u8] = b"X-Amz-Expires";
const SIGNED_HEADERS: &[u8] = b"X-Amz-SignedHeaders";
/// The presigned signature, left out of the canonical query.
pub(super) const SIGNATURE: &[u8] = b"X-Amz-Signature";
const SECURITY_TOKEN: &[u8] = b"X-Amz-Security-Token";

/// The one algorithm supported.
const AWS4_HMAC_SHA256: &str = "AWS4-HMAC-SHA256";

/// The bounds of the credential scope's fields.
const MIN_KEY_ID: usize = 16;
const MAX_KEY_ID: usize = 128;
const MAX_REGION: usize = 32;
const MAX_SERVICE: usize = 64;
/// The longest signed header name.
const MAX_HEADER_NAME: usize = 128;

/// A signature as read from a request, not yet checked against a secret.
#[derive(Debug)]
pub(super) struct Signature {
    pub access_key_id: String,
    pub scope: Scope,
    pub signed_headers: Vec<String>,
    pub signature: [u8; 32],
    /// The request time in ISO 8601 basic format, as the string to sign carries it.
    pub amz_date: String,
    pub signed_at: OffsetDateTime,
    pub session_token: Option<String>,
    pub presigned_for: Option<Duration>,
}

/// Reads the signature of `req` in whichever form it comes.
pub(super) fn read(req: &Request<'_>) -> Result<Signature, SigV4Error> {
    if req.path.len() > MAX_PATH_BYTES {
        return Err(SigV4Error::TooLarge {
            what: "the path",
            limit: MAX_PATH_BYTES,
        });
    }
    if req.query.is_some_and(|q| q.len() > MAX_QUERY_BYTES) {
        return Err(SigV4Error::TooLarge {
            what: "the query string",
            limit: MAX_QUERY_BYTES,
        });
    }
    let params = query_pairs(req.query)?;
    let presigned = params
        .iter()
        .any(|(k, _)| [ALGORITHM, CREDENTIAL, SIGNATURE, SIGNED_HEADERS].contains(&k.as_slice()));
    let authorization = single_header(req.headers, "authorization")?;
    let sig = match (authorization, presigned) {
        (Some(_), true) => return Err(SigV4Error::Incomplete(
            "a request carries either an Authorization header or presigned parameters, not both",
        )),
        (Some(a), false) => header_form(req.headers, a)?,
        (None, true) => query_form(&params)?,
        (None, false) => return Err(SigV4Error::Missing),
    };
    if !sig.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Incomplete("host must be a signed header"));
    }
    for name in req.headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-amz-")
            && name != "x-amz-content-sha256"
            && !sig.signed_headers.iter().any(|h| h == name)
        {
            return Err(SigV4Error::Unsigned(name.to_owned()));
        }
    }
    Ok(sig)
}

/// The value of a header that may appear at most once, as text.
pub(super) fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, SigV4Error> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SigV4Error::Malformed(
            "a header that must appear once (authorization, x-amz-date, date, x-amz-content-sha256, x-amz-security-token) is repeated",
        ));
    }
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return Err(SigV4Error::TooLarge {
            what: "a header value",
            limit: MAX_HEADER_VALUE_BYTES,
        });
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| SigV4Error::Malformed("a header is not visible ASCII text"))
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
fn header_form(headers: &HeaderMap, authorization: &str) -> Result<Signature, SigV4Error> {
    if authorization.len() > MAX_AUTHORIZATION_BYTES {
        return Err(SigV4Error::TooLarge {
            what: "the Authorization header",
            limit: MAX_AUTHORIZATION_BYTES,
        });
    }
    let rest = authorization
        .strip_prefix(AWS4_HMAC_SHA256)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(SigV4Error::Incomplete(
            "the Authorization header must begin with AWS4-HMAC-SHA256",
        ))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(SigV4Error::Incomplete(
            "the Authorization header's parameters are name=value",
        ))?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => {
                return Err(SigV4Error::Incomplete(
                    "the Authorization header has a parameter other than Credential, SignedHeaders and Signature",
                ))
            }
        };
        if slot.replace(value).is_some() {
            return Err(SigV4Error::Incomplete(
                "the Authorization header repeats a parameter",
            ));
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(SigV4Error::Incomplete(
            "the Authorization header needs Credential, SignedHeaders and Signature",
        ));
    };
    let (access_key_id, scope) = parse_scope(credential)?;
    let signed_headers = parse_signed_headers(signed)?;
    let signature = parse_signature(signature)?;
    let (signed_at, date_header) = match single_header(headers, "x-amz-date")? {
        Some(v) => (parse_amz_date(v)?, "x-amz-date"),
        None => match single_header(headers, "date")? {
            Some(v) => (parse_http_date(v)?, "date"),
            None => {
                return Err(SigV4Error::Incomplete(
                    "the request needs an X-Amz-Date or a Date header",
                ))
            }
        },
    };
    if !signed_headers.iter().any(|h| h == date_header) {
        return Err(SigV4Error::Incomplete(
            "the header giving the request time (X-Amz-Date or Date) must be signed",
        ));
    }
    check_scope_date(&scope, signed_at)?;
    let session_token = single_header(headers, "x-amz-security-token")?.map(str::to_owned);
    Ok(Signature {
        access_key_id,
        scope,
        signed_headers,
        signature,
        amz_date: basic_format(signed_at),
        signed_at,
        session_token,
        presigned_for: None,
    })
}

/// The presigned form: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders`, `X-Amz-Signature` (and `X-Amz-Security-Token`) in the query.
fn query_form(params: &[Pair]) -> Result<Signature, SigV4Error> {
    let one = |name: &[u8]| -> Result<Option<&str>, SigV4Error> {
        let mut found = params.iter().filter(|(k, _)| k == name);
        let Some((_, value)) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(SigV4Error::Incomplete(
                "a presigned URL repeats one of its X-Amz- parameters",
            ));
        }
        std::str::from_utf8(value)
            .map(Some)
            .map_err(|_| SigV4Error::Incomplete("a presigned parameter is not UTF-8"))
    };
    let need = |name: &[u8]| -> Result<&str, SigV4Error> {
        one(name)?.ok_or(SigV4Error::Incomplete(
            "a presigned URL needs X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature",
        ))
    };
    if need(ALGORITHM)? != AWS4_HMAC_SHA256 {
        return Err(SigV4Error::Incomplete(
            "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
        ));
    }
    let (access_key_id, scope) = parse_scope(need(CREDENTIAL)?)?;
    let signed_at = parse_amz_date(need(DATE)?)?;
    check_scope_date(&scope, signed_at)?;
    let expires = need(EXPIRES)?;
    let seconds =
        (!expires.is_empty() && expires.len() <= 7 && expires.bytes().all(|b| b.is_ascii_digit()))
            .then(|| expires.parse::<i64>().ok())
            .flatten()
            .filter(|s| *s >= 1 && *s <= MAX_PRESIGNED_EXPIRY.whole_seconds())
            .ok_or(SigV4Error::Incomplete(
                "X-Amz-Expires must be a number of seconds from 1 to 604800 (7 days)",
            ))?;
    Ok(Signature {
        access_key_id,
        scope,
        signed_headers: parse_signed_headers(need(SIGNED_HEADERS)?)?,
        signature: parse_signature(need(SIGNATURE)?)?,
        amz_date: basic_format(signed_at),
        signed_at,
        session_token: one(SECURITY_TOKEN)?.map(str::to_owned),
        presigned_for: Some(Duration::seconds(seconds)),
    })
}

/// `AKID/yyyymmdd/region/service/aws4_request`.
fn parse_scope(credential: &str) -> Result<(String, Scope), SigV4Error> {
    let bad =
        SigV4Error::Incomplete("the credential must be AKID/yyyymmdd/region/service/aws4_request");
    let mut parts = credential.split('/');
    let (Some(key), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad);
    };
    let key_ok = (MIN_KEY_ID..=MAX_KEY_ID).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric());
    let name_ok = |s: &str, max: usize| {
        (1..=max).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !key_ok
        || !name_ok(region, MAX_REGION)
        || !name_ok(service, MAX_SERVICE)
        || terminator != "aws4_request"
    {
        return Err(bad);
    }
    let date = parse_day(date).ok_or(bad)?;
    Ok((
        key.to_owned(),
        Scope {
            date,
            region: region.to_owned(),
            service: service.to_owned(),
        },
    ))
}

/// A day as `yyyymmdd`.
fn parse_day(s: &str) -> Option<Date> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(4..6)?.parse().ok()?;
    let day: u8 = s.get(6..8)?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// The scope's day as `yyyymmdd`.
pub(super) fn scope_date(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A time in ISO 8601 basic format (`yyyymmddThhmmssZ`).
pub(super) fn basic_format(t: OffsetDateTime) -> String {
    format!(
        "{}T{:02}{:02}{:02}Z",
        scope_date(t.date()),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `X-Amz-Date`: `yyyymmddThhmmssZ`, UTC.
fn parse_amz_date(s: &str) -> Result<OffsetDateTime, SigV4Error> {
    let bad = SigV4Error::Incomplete("X-Amz-Date must be yyyymmddThhmmssZ");
    if s.len() != 16 || !s.is_ascii() {
        return Err(bad);
    }
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, format)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| bad)
}

/// `Date`: an HTTP date (`Sun, 06 Dec 2026 12:00:00 GMT`).
fn parse_http_date(s: &str) -> Result<OffsetDateTime, SigV4Error> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(s, format)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| SigV4Error::Incomplete("the Date header must be an HTTP date"))
}

fn check_scope_date(scope: &Scope, signed_at: OffsetDateTime) -> Result<(), SigV4Error> {
    if scope.date == signed_at.date() {
        Ok(())
    } else {
        Err(SigV4Error::Incomplete(
            "the credential scope's date is not the request's date",
        ))
    }
}

/// `SignedHeaders`: lowercase names, sorted, no repeats, at most [`MAX_SIGNED_HEADERS`].
fn parse_signed_headers(s: &str) -> Result<Vec<String>, SigV4Error> {
    let mut names = Vec::new();
    for name in s.split(';') {
        if names.len() == MAX_SIGNED_HEADERS {
            return Err(SigV4Error::TooLarge {
                what: "the number of signed headers",
                limit: MAX_SIGNED_HEADERS,
            });
        }
        let token = (1..=MAX_HEADER_NAME).contains(&name.len())
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            });
        if !token {
            return Err(SigV4Error::Incomplete(
                "SignedHeaders must be lowercase header names separated by ;",
            ));
        }
        if names
            .last()
            .is_some_and(|last: &String| last.as_str() >= name)
        {
            return Err(SigV4Error::Incomplete(
                "SignedHeaders must be sorted, without repeats",
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// The signature: 64 lowercase hex digits.
pub(super) fn parse_signature(s: &str) -> Result<[u8; 32], SigV4Error> {
    let bad = || SigV4Error::Incomplete("the signature must be 64 lowercase hex digits");
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    if s.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let [hi, lo] = pair else {
            return Err(bad());
        };
        match (digit(*hi), digit(*lo)) {
            (Some(h), Some(l)) => *o = (h << 4) | l,
            _ => return Err(bad()),
        }
    }
    Ok(out)
}
