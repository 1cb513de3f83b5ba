//! S3's `aws-chunked` bodies undone: the chunk framing removed and, for the signed forms, each
//! chunk's signature checked in its chain from the request's seed signature, and the trailer's
//! after the last. The whole body is in memory; no size it declares is believed before it is
//! checked against what is left of the body and the caller's limit.

use aws_lc_rs::{constant_time, hmac};
use http::HeaderMap;

use super::canonical::{hex, sha256_hex};
use super::form::{self, single_header};
use super::{signing_key, Payload, SigV4Error, Verified};

#[cfg(test)]
mod tests;

/// The most chunks a body may have, the last (empty) one included. At S3's smallest chunk
/// (8 KiB) that is 8 GiB of data, past the 5 GiB a single upload may carry.
pub const MAX_CHUNKS: usize = 1 << 20;
/// The most bytes of a chunk's header line (its size and signature), without its CRLF.
pub const MAX_CHUNK_LINE: usize = 128;
/// The most trailer headers, the trailer signature not counted.
pub const MAX_TRAILERS: usize = 8;
/// The most bytes of a trailer line, without its CRLF.
pub const MAX_TRAILER_LINE: usize = 256;

/// The one kind of trailer S3 takes: a checksum of the object.
const CHECKSUM_PREFIX: &str = "x-amz-checksum-";
/// The trailer line carrying the trailer's own signature.
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";
/// The SHA-256 of nothing, which stands in each chunk's string to sign.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The longest chunk size in hex digits (a `u64`).
const MAX_SIZE_DIGITS: usize = 16;
/// The chunk extension naming a chunk's signature.
const CHUNK_SIGNATURE: &[u8] = b"chunk-signature=";

/// An `aws-chunked` body, decoded and (for the signed forms) verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The object's bytes, the framing removed.
    pub body: Vec<u8>,
    /// The trailer headers (`x-amz-checksum-crc32` and the like), names lowercase, in the
    /// order sent; the trailer signature is not one of them.
    pub trailers: Vec<(String, String)>,
}

/// Decodes `body`, an `aws-chunked` body of a request `verify` accepted as `v` (with a
/// `StreamingUnverified` payload), whose secret access key is `secret`. Signed chunks must
/// chain from the seed signature and the trailer (if the payload has one) must carry its
/// signature; unsigned chunks carry none. `headers` are the request's: a given
/// `x-amz-decoded-content-length` must be the decoded size and `x-amz-trailer` must name
/// exactly the trailers sent. More than `max_decoded` bytes of object is refused.
pub fn decode_chunked(
    body: &[u8],
    v: &Verified,
    secret: &str,
    headers: &HeaderMap,
    max_decoded: usize,
) -> Result<Decoded, SigV4Error> {
    let Payload::StreamingUnverified {
        seed_signature,
        trailer,
    } = &v.payload
    else {
        return Err(SigV4Error::PayloadNotAllowed(
            "the request's payload is not aws-chunked",
        ));
    };
    let declared_length = decoded_length(headers, max_decoded)?;
    let declared_trailers = declared_trailers(headers, *trailer)?;
    let mut chain = seed_signature
        .as_deref()
        .map(|seed| Chain::new(v, secret, seed));

    let mut input = Input(body);
    let mut decoded = Vec::new();
    let mut chunks = 0usize;
    loop {
        if chunks == MAX_CHUNKS {
            return Err(SigV4Error::TooLarge {
                what: "the number of chunks",
                limit: MAX_CHUNKS,
            });
        }
        chunks += 1;
        if input.0.is_empty() {
            return Err(SigV4Error::Malformed(
                "the aws-chunked body ends before its final, empty chunk",
            ));
        }
        let (size, signature) = chunk_header(input.line(MAX_CHUNK_LINE)?, chain.is_some())?;
        let data = input.take(size)?;
        if size > max_decoded.saturating_sub(decoded.len()) {
            return Err(SigV4Error::TooLarge {
                what: "the decoded body",
                limit: max_decoded,
            });
        }
        if let (Some(chain), Some(signature)) = (chain.as_mut(), signature) {
            chain.chunk(data, &signature)?;
        }
        if size == 0 {
            break;
        }
        decoded.extend_from_slice(data);
        input.crlf()?;
    }

    let trailers = if *trailer {
        trailers(&mut input, chain.as_ref())?
    } else {
        input.crlf()?;
        Vec::new()
    };
    if !input.0.is_empty() {
        return Err(SigV4Error::Malformed(
            "the aws-chunked body goes on after its end",
        ));
    }
    // Neither list repeats a name: the same length and each sent one named is the same set.
    let named = |(name, _): &(String, String)| declared_trailers.contains(name);
    if trailers.len() != declared_trailers.len() || !trailers.iter().all(named) {
        return Err(SigV4Error::Malformed(
            "the trailers sent are not the ones x-amz-trailer names",
        ));
    }
    if declared_length.is_some_and(|n| n != decoded.len() as u64) {
        return Err(SigV4Error::Malformed(
            "the decoded body is not x-amz-decoded-content-length bytes long",
        ));
    }
    Ok(Decoded {
        body: decoded,
        trailers,
    })
}

/// The body still to read.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// The next line, without its CRLF; a line over `max` bytes is refused after looking at no
    /// more than `max + 2` bytes.
    fn line(&mut self, max: usize) -> Result<&'a [u8], SigV4Error> {
        let window = self.0.get(..max.saturating_add(2)).unwrap_or(self.0);
        let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
            return Err(if window.len() > max.saturating_add(1) {
                SigV4Error::TooLarge {
                    what: "a chunk or trailer line",
                    limit: max,
                }
            } else {
                SigV4Error::Malformed("the aws-chunked body ends inside a line")
            });
        };
        let (line, rest) = self.0.split_at(end);
        self.0 = rest.get(2..).unwrap_or_default();
        Ok(line)
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], SigV4Error> {
        if n > self.0.len() {
            return Err(SigV4Error::Malformed(
                "a chunk is larger than what is left of the body",
            ));
        }
        let (data, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(data)
    }

    /// The CRLF that ends a chunk's data.
    fn crlf(&mut self) -> Result<(), SigV4Error> {
        let rest = self
            .0
            .strip_prefix(b"\r\n")
            .ok_or(SigV4Error::Malformed("a chunk's data does not end in CRLF"))?;
        self.0 = rest;
        Ok(())
    }
}

/// A chunk's header line: its size in hex and, for a signed chunk, `;chunk-signature=` and
/// the signature, nothing else.
fn chunk_header(line: &[u8], signed: bool) -> Result<(usize, Option<[u8; 32]>), SigV4Error> {
    let (size, extension) = match line.iter().position(|b| *b == b';') {
        Some(i) => (line.get(..i).unwrap_or_default(), line.get(i + 1..)),
        None => (line, None),
    };
    let size = parse_size(size)?;
    let signature = match (signed, extension) {
        (false, None) => None,
        (true, Some(ext)) => {
            let hex = ext
                .strip_prefix(CHUNK_SIGNATURE)
                .and_then(|h| std::str::from_utf8(h).ok())
                .ok_or(SigV4Error::Malformed(
                    "a signed chunk's header must be its size and ;chunk-signature=",
                ))?;
            Some(parse_signature(hex)?)
        }
        (true, None) => {
            return Err(SigV4Error::Malformed(
                "a signed chunk's header must be its size and ;chunk-signature=",
            ))
        }
        (false, Some(_)) => {
            return Err(SigV4Error::Malformed(
                "an unsigned chunk's header must be its size alone",
            ))
        }
    };
    Ok((size, signature))
}

/// A chunk's size: 1 to 16 hex digits.
fn parse_size(digits: &[u8]) -> Result<usize, SigV4Error> {
    if digits.is_empty() || digits.len() > MAX_SIZE_DIGITS {
        return Err(SigV4Error::Malformed(
            "a chunk's size must be 1 to 16 hex digits",
        ));
    }
    let mut size = 0u64;
    for b in digits {
        let digit = char::from(*b).to_digit(16).ok_or(SigV4Error::Malformed(
            "a chunk's size must be 1 to 16 hex digits",
        ))?;
        size = (size << 4) | u64::from(digit);
    }
    // Larger than memory: larger than any body, which the caller finds.
    Ok(usize::try_from(size).unwrap_or(usize::MAX))
}

/// A signature in a chunk or a trailer: 64 lowercase hex digits.
fn parse_signature(hex: &str) -> Result<[u8; 32], SigV4Error> {
    form::parse_signature(hex).map_err(|_| {
        SigV4Error::Malformed("a chunk or trailer signature must be 64 lowercase hex digits")
    })
}

/// The trailer after the final chunk: `name:value` lines, for a signed body the trailer
/// signature last, then an empty line (or the end of the body).
fn trailers(
    input: &mut Input<'_>,
    chain: Option<&Chain>,
) -> Result<Vec<(String, String)>, SigV4Error> {
    // Some signers end the final chunk with its (empty) data's CRLF before the trailer.
    if chain.is_some() && input.0.len() > 2 && input.0.starts_with(b"\r\n") {
        input.0 = input.0.get(2..).unwrap_or_default();
    }
    let mut canonical = Vec::new();
    let mut trailers: Vec<(String, String)> = Vec::new();
    let mut signature = None;
    while !input.0.is_empty() {
        let line = input.line(MAX_TRAILER_LINE)?;
        if line.is_empty() {
            break;
        }
        if signature.is_some() {
            return Err(SigV4Error::Malformed(
                "the trailer signature must be the trailer's last line",
            ));
        }
        let (name, value) = trailer_line(line)?;
        if name == TRAILER_SIGNATURE && chain.is_some() {
            signature = Some(parse_signature(&value)?);
            continue;
        }
        if !name.starts_with(CHECKSUM_PREFIX) {
            return Err(SigV4Error::Malformed(
                "a trailer must be a checksum (x-amz-checksum-...)",
            ));
        }
        if trailers.len() == MAX_TRAILERS {
            return Err(SigV4Error::TooLarge {
                what: "the number of trailers",
                limit: MAX_TRAILERS,
            });
        }
        if trailers.iter().any(|(n, _)| *n == name) {
            return Err(SigV4Error::Malformed("a trailer is repeated"));
        }
        canonical.extend_from_slice(line);
        canonical.push(b'\n');
        trailers.push((name, value));
    }
    if let Some(chain) = chain {
        let signature = signature.ok_or(SigV4Error::Malformed(
            "a signed trailer needs its x-amz-trailer-signature",
        ))?;
        chain.trailer(&canonical, &signature)?;
    }
    Ok(trailers)
}

/// A trailer line, `name:value`: the name lowercased, the value trimmed.
fn trailer_line(line: &[u8]) -> Result<(String, String), SigV4Error> {
    let bad = SigV4Error::Malformed("a trailer line must be name:value in visible ASCII");
    let i = line.iter().position(|b| *b == b':').ok_or(bad.clone())?;
    let (name, value) = (line.get(..i), line.get(i + 1..));
    let (Some(name), Some(value)) = (name, value) else {
        return Err(bad);
    };
    let name_ok = !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-');
    let value = value.trim_ascii();
    let value_ok = !value.is_empty() && value.iter().all(|b| matches!(b, b' '..=b'~'));
    if !name_ok || !value_ok {
        return Err(bad);
    }
    Ok((
        String::from_utf8_lossy(name).to_ascii_lowercase(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

/// `x-amz-decoded-content-length`, if given: at most `max_decoded`.
fn decoded_length(headers: &HeaderMap, max_decoded: usize) -> Result<Option<u64>, SigV4Error> {
    let Some(text) = single_header(headers, "x-amz-decoded-content-length")? else {
        return Ok(None);
    };
    let n = (!text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .ok_or(SigV4Error::Malformed(
            "x-amz-decoded-content-length must be a number of bytes",
        ))?;
    if n > max_decoded as u64 {
        return Err(SigV4Error::TooLarge {
            what: "the decoded body",
            limit: max_decoded,
        });
    }
    Ok(Some(n))
}

/// The trailer names `x-amz-trailer` gives (comma-separated), lowercase; only a payload with
/// a trailer may give any.
fn declared_trailers(headers: &HeaderMap, trailer: bool) -> Result<Vec<String>, SigV4Error> {
    let Some(text) = single_header(headers, "x-amz-trailer")? else {
        return Ok(Vec::new());
    };
    if !trailer {
        return Err(SigV4Error::Malformed(
            "x-amz-trailer needs a payload with a trailer (STREAMING-...-TRAILER)",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim) {
        if names.len() == MAX_TRAILERS {
            return Err(SigV4Error::TooLarge {
                what: "the number of trailers",
                limit: MAX_TRAILERS,
            });
        }
        let name = name.to_ascii_lowercase();
        if name.is_empty() || names.contains(&name) {
            return Err(SigV4Error::Malformed(
                "x-amz-trailer must name each trailer once",
            ));
        }
        names.push(name);
    }
    Ok(names)
}

/// The chain of signatures: each chunk's signs its data and the signature before it.
struct Chain {
    key: hmac::Key,
    /// `<amz-date>\n<scope>\n`, the same in every string to sign.
    stamp: String,
    /// The last signature checked, in hex (at first, the seed).
    previous: String,
}

impl Chain {
    fn new(v: &Verified, secret: &str, seed: &str) -> Self {
        let date = form::scope_date(v.scope.date);
        Self {
            key: signing_key(secret, &date, &v.scope.region, &v.scope.service),
            stamp: format!(
                "{}\n{date}/{}/{}/aws4_request\n",
                form::basic_format(v.signed_at),
                v.scope.region,
                v.scope.service
            ),
            previous: seed.to_owned(),
        }
    }

    /// Checks a chunk's signature: `AWS4-HMAC-SHA256-PAYLOAD`, the stamp, the previous
    /// signature, the hash of nothing and the hash of the chunk's data.
    fn chunk(&mut self, data: &[u8], signature: &[u8; 32]) -> Result<(), SigV4Error> {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}{}\n{EMPTY_SHA256}\n{}",
            self.stamp,
            self.previous,
            sha256_hex(data)
        );
        self.check(&string_to_sign, signature)?;
        self.previous = hex(signature);
        Ok(())
    }

    /// Checks the trailer's signature: `AWS4-HMAC-SHA256-TRAILER`, the stamp, the final
    /// chunk's signature and the hash of the trailer lines, each `name:value\n`.
    fn trailer(&self, canonical: &[u8], signature: &[u8; 32]) -> Result<(), SigV4Error> {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}{}\n{}",
            self.stamp,
            self.previous,
            sha256_hex(canonical)
        );
        self.check(&string_to_sign, signature)
    }

    fn check(&self, string_to_sign: &str, signature: &[u8; 32]) -> Result<(), SigV4Error> {
        let expected = hmac::sign(&self.key, string_to_sign.as_bytes());
        constant_time::verify_slices_are_equal(expected.as_ref(), signature)
            .map_err(|_| SigV4Error::Mismatch)
    }
}
