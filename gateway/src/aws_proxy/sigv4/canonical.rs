//! The canonical request SigV4 signs: method, URI, query, headers, signed header names and
//! payload hash, each in the one form the signer produced. S3 signs the path as sent; every
//! other service signs it encoded once more.

use std::fmt::Write as _;

use aws_lc_rs::digest;
use percent_encoding::{
    percent_decode, percent_encode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC,
};

use super::form::{Signature, SIGNATURE};
use super::{
    Request, SigV4Error, MAX_CANONICAL_HEADERS_BYTES, MAX_HEADER_VALUE_BYTES, MAX_QUERY_PARAMS,
};

/// SigV4's URI encoding: everything but the unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The longest method name.
const MAX_METHOD: usize = 16;

/// Lowercase hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The SHA-256 of `data` in lowercase hex.
pub(super) fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// A query parameter's name and value, percent-decoded.
pub(super) type Pair = (Vec<u8>, Vec<u8>);

/// The query's parameters, at most [`MAX_QUERY_PARAMS`].
pub(super) fn query_pairs(query: Option<&str>) -> Result<Vec<Pair>, SigV4Error> {
    let mut pairs = Vec::new();
    for part in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        if pairs.len() == MAX_QUERY_PARAMS {
            return Err(SigV4Error::TooLarge {
                what: "the number of query parameters",
                limit: MAX_QUERY_PARAMS,
            });
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((
            percent_decode(k.as_bytes()).collect(),
            percent_decode(v.as_bytes()).collect(),
        ));
    }
    Ok(pairs)
}

/// The canonical request of `req` under `sig`.
pub(super) fn canonical_request(
    req: &Request<'_>,
    sig: &Signature,
    payload_hash: &str,
    s3: bool,
) -> Result<String, SigV4Error> {
    let method_ok = (1..=MAX_METHOD).contains(&req.method.len())
        && req.method.bytes().all(|b| b.is_ascii_uppercase());
    if !method_ok {
        return Err(SigV4Error::Malformed("the method is not an HTTP method"));
    }
    let uri = canonical_uri(req.path, s3)?;
    let query = canonical_query(req.query, sig.presigned_for.is_some())?;
    let headers = canonical_headers(req, &sig.signed_headers)?;
    Ok(format!(
        "{}\n{uri}\n{query}\n{headers}\n{}\n{payload_hash}",
        req.method,
        sig.signed_headers.join(";"),
    ))
}

/// The canonical URI: S3's path as sent; for other services, the path (which must be
/// normalized: no `.`, `..` or empty segment) with each segment encoded once more.
fn canonical_uri(path: &str, s3: bool) -> Result<String, SigV4Error> {
    if path.is_empty() {
        return Ok("/".into());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(SigV4Error::Malformed("the path must begin with /"));
    };
    if s3 {
        return Ok(path.to_owned());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let normalized = segments
        .iter()
        .enumerate()
        .all(|(i, s)| *s != "." && *s != ".." && (!s.is_empty() || i == last));
    if !normalized {
        return Err(SigV4Error::Malformed(
            "the path must be normalized: no '.', '..' or empty segment",
        ));
    }
    let mut out = String::with_capacity(path.len() * 3);
    for s in segments {
        out.push('/');
        out.extend(utf8_percent_encode(s, UNRESERVED));
    }
    Ok(out)
}

/// The canonical query: names and values decoded then encoded, sorted by name then value; the
/// presigned signature itself left out.
fn canonical_query(query: Option<&str>, presigned: bool) -> Result<String, SigV4Error> {
    let mut pairs: Vec<(String, String)> = query_pairs(query)?
        .into_iter()
        .filter(|(k, _)| !(presigned && k == SIGNATURE))
        .map(|(k, v)| {
            (
                percent_encode(&k, UNRESERVED).to_string(),
                percent_encode(&v, UNRESERVED).to_string(),
            )
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    Ok(out)
}

/// The canonical headers: each signed header as `name:value\n`, its values trimmed, inner runs
/// of whitespace made one space, and several lines joined by `,`. `host` falls back to the
/// request's authority (HTTP/2).
fn canonical_headers(req: &Request<'_>, signed: &[String]) -> Result<String, SigV4Error> {
    let mut out = String::new();
    for name in signed {
        let mut value = String::new();
        let mut lines = 0usize;
        for line in req.headers.get_all(name.as_str()) {
            if line.len() > MAX_HEADER_VALUE_BYTES {
                return Err(SigV4Error::TooLarge {
                    what: "a signed header's value",
                    limit: MAX_HEADER_VALUE_BYTES,
                });
            }
            let text = line
                .to_str()
                .map_err(|_| SigV4Error::Malformed("a signed header is not visible ASCII text"))?;
            if lines > 0 {
                value.push(',');
            }
            lines += 1;
            for (i, word) in text.split_ascii_whitespace().enumerate() {
                if i > 0 {
                    value.push(' ');
                }
                value.push_str(word);
            }
            if value.len() > MAX_HEADER_VALUE_BYTES {
                return Err(SigV4Error::TooLarge {
                    what: "a signed header's value",
                    limit: MAX_HEADER_VALUE_BYTES,
                });
            }
        }
        if lines == 0 && name == "host" {
            if let Some(authority) = req.authority {
                value.push_str(authority);
                lines = 1;
            }
        }
        if lines == 0 {
            // Signed by the client, gone on the way: the signature cannot hold.
            return Err(SigV4Error::Mismatch);
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
        if out.len() > MAX_CANONICAL_HEADERS_BYTES {
            return Err(SigV4Error::TooLarge {
                what: "the signed headers together",
                limit: MAX_CANONICAL_HEADERS_BYTES,
            });
        }
    }
    Ok(out)
}
