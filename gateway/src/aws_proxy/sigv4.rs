//! Verifying a client's AWS Signature Version 4, pure: the request as received, the time now and
//! a lookup of the secret behind an access key id go in; the key, the credential scope, the
//! signed headers and what became of the payload come out, or an error AWS SDKs understand.
//! Both forms are read: the `Authorization` header and the presigned query. Every size an
//! input controls is bounded before work is done on it. An `aws-chunked` body is decoded, and
//! its chunk signatures checked, by [`decode_chunked`] once the request is verified.

mod canonical;
pub mod chunked;
mod form;
#[cfg(test)]
mod tests;

use aws_lc_rs::{constant_time, hmac};
use http::{HeaderMap, StatusCode};
use time::{Date, Duration, OffsetDateTime};

pub use chunked::{decode_chunked, Decoded};

use canonical::{canonical_request, hex, sha256_hex};
use form::Signature;

/// How far the request's time may be from the gateway's, either way.
pub const MAX_SKEW: Duration = Duration::minutes(5);
/// The longest life a presigned URL may ask for (`X-Amz-Expires`), as AWS allows.
pub const MAX_PRESIGNED_EXPIRY: Duration = Duration::days(7);
/// The most bytes of an `Authorization` header.
pub const MAX_AUTHORIZATION_BYTES: usize = 4_096;
/// The most bytes of a request path.
pub const MAX_PATH_BYTES: usize = 8_192;
/// The most bytes of a query string.
pub const MAX_QUERY_BYTES: usize = 16_384;
/// The most parameters in a query string.
pub const MAX_QUERY_PARAMS: usize = 256;
/// The most headers a signature may cover.
pub const MAX_SIGNED_HEADERS: usize = 64;
/// The most bytes of one signed header's value (all its lines together).
pub const MAX_HEADER_VALUE_BYTES: usize = 8_192;
/// The most bytes of all the signed headers together, as canonicalized.
pub const MAX_CANONICAL_HEADERS_BYTES: usize = 32_768;

/// The parts of a request a signature covers, as received.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method (`GET`, `POST`...).
    pub method: &'a str,
    /// The path exactly as received, still percent-encoded, with any prefix the client signed.
    pub path: &'a str,
    /// The query string as received, without the `?`.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The request target's authority, which stands for `host` where there is no such header
    /// (HTTP/2).
    pub authority: Option<&'a str>,
}

/// The key a request is signed with, as the secret lookup sees it.
#[derive(Debug, Clone, Copy)]
pub struct KeyId<'a> {
    /// The access key id of the credential scope.
    pub access_key_id: &'a str,
    /// The session token sent with it (`X-Amz-Security-Token`), if any.
    pub session_token: Option<&'a str>,
}

/// The credential scope: `AKID/yyyymmdd/region/service/aws4_request`, less the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The scope's day.
    pub date: Date,
    /// The region (`us-east-1`).
    pub region: String,
    /// The signing name of the service (`s3`, `logs`, `monitoring`).
    pub service: String,
}

/// What became of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The body's SHA-256 is covered by the signature and matched the body received.
    Signed,
    /// `UNSIGNED-PAYLOAD` (S3 only): the signature does not cover the body.
    Unsigned,
    /// An `aws-chunked` body (S3 only). Its chunk signatures are NOT verified here: whoever
    /// forwards the body must decode it with [`decode_chunked`], which checks each chunk
    /// against `seed_signature`, or refuse the request.
    StreamingUnverified {
        /// The seed signature (the request's own) for signed chunks; `None` for
        /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, whose chunks carry none.
        seed_signature: Option<String>,
        /// Whether a trailer (a checksum header after the last chunk) follows.
        trailer: bool,
    },
}

/// A verified request: what the proxy needs to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id.
    pub access_key_id: String,
    /// The session token sent with it, if any.
    pub session_token: Option<String>,
    /// When the client signed the request.
    pub signed_at: OffsetDateTime,
    /// The credential scope.
    pub scope: Scope,
    /// The headers the signature covers, lowercase and sorted.
    pub signed_headers: Vec<String>,
    /// What became of the payload.
    pub payload: Payload,
    /// For a presigned URL, how long it lives from `signed_at`.
    pub presigned_for: Option<Duration>,
}

/// Why a signature is refused; each variant has the error code AWS answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// The request carries no signature at all.
    #[error("the request is not signed: it needs an AWS Signature Version 4")]
    Missing,
    /// The `Authorization` header or the presigned parameters are incomplete or malformed.
    #[error("the signature is incomplete or malformed: {0}")]
    Incomplete(&'static str),
    /// The request itself is malformed (path, header text, method).
    #[error("the request is malformed: {0}")]
    Malformed(&'static str),
    /// An input is over its limit.
    #[error("{what} is over the limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A header that must be signed is not.
    #[error("the header {0} is present but not signed")]
    Unsigned(String),
    /// No secret for this access key id (and session token).
    #[error("the access key id is not known here")]
    UnknownKey {
        /// Whether the scope names S3 (which has its own code for it).
        s3: bool,
    },
    /// The request time is more than [`MAX_SKEW`] from the gateway's.
    #[error("the request time is more than 5 minutes away from the gateway's clock")]
    Skewed,
    /// A presigned URL is past its expiry.
    #[error("the presigned URL has expired")]
    Expired,
    /// The body does not match the `x-amz-content-sha256` the client signed.
    #[error("the body does not match the x-amz-content-sha256 header")]
    ContentMismatch,
    /// A payload mode this service or form does not allow.
    #[error("{0}")]
    PayloadNotAllowed(&'static str),
    /// The signature is well formed but not the one the secret gives.
    #[error("the signature does not match: check the secret access key and the signing method")]
    Mismatch,
}

impl SigV4Error {
    /// The AWS error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationToken",
            Self::Incomplete(_) => "IncompleteSignature",
            Self::Malformed(_) | Self::TooLarge { .. } | Self::PayloadNotAllowed(_) => {
                "InvalidRequest"
            }
            Self::Unsigned(_) | Self::Expired => "AccessDenied",
            Self::UnknownKey { s3: true } => "InvalidAccessKeyId",
            Self::UnknownKey { s3: false } => "InvalidClientTokenId",
            Self::Skewed => "RequestTimeTooSkewed",
            Self::ContentMismatch => "XAmzContentSHA256Mismatch",
            Self::Mismatch => "SignatureDoesNotMatch",
        }
    }

    /// The HTTP status AWS answers it with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Incomplete(_)
            | Self::Malformed(_)
            | Self::TooLarge { .. }
            | Self::PayloadNotAllowed(_)
            | Self::ContentMismatch => StatusCode::BAD_REQUEST,
            Self::Missing
            | Self::Unsigned(_)
            | Self::UnknownKey { .. }
            | Self::Skewed
            | Self::Expired
            | Self::Mismatch => StatusCode::FORBIDDEN,
        }
    }
}

/// Verifies `req` with body `body` at time `now`; `secret` gives the secret access key of a key
/// id (and session token), or `None` when it is not known. For a streaming or unsigned payload
/// the body is not read (pass what has arrived, or nothing).
pub fn verify(
    req: &Request<'_>,
    body: &[u8],
    now: OffsetDateTime,
    secret: impl FnOnce(&KeyId<'_>) -> Option<String>,
) -> Result<Verified, SigV4Error> {
    let sig = form::read(req)?;
    let Signature {
        access_key_id,
        scope,
        signature,
        amz_date,
        signed_at,
        session_token,
        presigned_for,
        ..
    } = &sig;
    let s3 = scope.service == "s3";

    match presigned_for {
        None if (now - *signed_at).abs() > MAX_SKEW => return Err(SigV4Error::Skewed),
        Some(_) if *signed_at - now > MAX_SKEW => return Err(SigV4Error::Skewed),
        Some(life) if now - *signed_at > *life => return Err(SigV4Error::Expired),
        _ => {}
    }

    let (payload_hash, payload) = payload(req, &sig, body, s3)?;
    let canonical = canonical_request(req, &sig, &payload_hash, s3)?;

    let Some(secret) = secret(&KeyId {
        access_key_id,
        session_token: session_token.as_deref(),
    }) else {
        return Err(SigV4Error::UnknownKey { s3 });
    };
    let date = form::scope_date(scope.date);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{}/{}/aws4_request\n{}",
        scope.region,
        scope.service,
        sha256_hex(canonical.as_bytes()),
    );
    let key = signing_key(&secret, &date, &scope.region, &scope.service);
    let expected = hmac::sign(&key, string_to_sign.as_bytes());
    if constant_time::verify_slices_are_equal(expected.as_ref(), signature).is_err() {
        return Err(SigV4Error::Mismatch);
    }
    Ok(Verified {
        access_key_id: sig.access_key_id,
        session_token: sig.session_token,
        signed_at: sig.signed_at,
        scope: sig.scope,
        signed_headers: sig.signed_headers,
        payload,
        presigned_for: sig.presigned_for,
    })
}

/// The payload hash the canonical request carries, and what it means for the body.
fn payload(
    req: &Request<'_>,
    sig: &Signature,
    body: &[u8],
    s3: bool,
) -> Result<(String, Payload), SigV4Error> {
    let declared = form::single_header(req.headers, "x-amz-content-sha256")?;
    let presigned = sig.presigned_for.is_some();
    let streaming = |seed: bool, trailer: bool| -> Result<Payload, SigV4Error> {
        if !s3 || presigned {
            return Err(SigV4Error::PayloadNotAllowed(
                "a streaming payload is allowed only for S3, with the Authorization header",
            ));
        }
        Ok(Payload::StreamingUnverified {
            seed_signature: seed.then(|| hex(&sig.signature)),
            trailer,
        })
    };
    let payload = match declared {
        None if presigned && s3 => return Ok(("UNSIGNED-PAYLOAD".into(), Payload::Unsigned)),
        None if s3 => {
            return Err(SigV4Error::PayloadNotAllowed(
                "S3 requires the x-amz-content-sha256 header",
            ))
        }
        None => return Ok((sha256_hex(body), Payload::Signed)),
        Some(v) if is_digest(v) => {
            if v != sha256_hex(body) {
                return Err(SigV4Error::ContentMismatch);
            }
            Payload::Signed
        }
        Some("UNSIGNED-PAYLOAD") if s3 => Payload::Unsigned,
        Some("UNSIGNED-PAYLOAD") => {
            return Err(SigV4Error::PayloadNotAllowed(
                "UNSIGNED-PAYLOAD is allowed only for S3",
            ))
        }
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD") => streaming(true, false)?,
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") => streaming(true, true)?,
        Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER") => streaming(false, true)?,
        Some(_) => {
            return Err(SigV4Error::PayloadNotAllowed(
                "x-amz-content-sha256 must be a lowercase hex SHA-256, UNSIGNED-PAYLOAD or a supported STREAMING- mode",
            ))
        }
    };
    Ok((declared.unwrap_or_default().to_owned(), payload))
}

/// Whether `v` is a SHA-256 in lowercase hex.
fn is_digest(v: &str) -> bool {
    v.len() == 64 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes());
    for part in [date, region, service, "aws4_request"] {
        let tag = hmac::sign(&key, part.as_bytes());
        key = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
    }
    key
}
