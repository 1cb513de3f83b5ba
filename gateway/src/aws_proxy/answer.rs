//! AWS's answer on its way back: a text body (JSON, XML, text) read whole up to the masking limit
//! and masked; a binary body passed as a stream or refused, by policy; a text body over the limit
//! passed unmasked, or refused in strict mode. Checksums of a body that masking changed are
//! dropped (they would no longer hold); the rest of AWS's headers pass.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue};

use super::fault::Fault;
use super::mask::{self, Counts, Rules, Unmaskable};
use crate::config::aws_proxy::{Binary, Masking};

/// Answer headers never passed on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
];

/// What became of an answer.
#[derive(Debug)]
pub struct Answered {
    /// What the client gets.
    pub response: Response,
    /// AWS's status.
    pub status: u16,
    /// What was masked.
    pub masked: Counts,
    /// The masked body for the record, cut to the recording limit; `None` when not kept
    /// (binary, streamed unmasked).
    pub body: Option<String>,
    /// Whether `body` was cut.
    pub truncated: bool,
    /// The answer's size, where known before it is streamed.
    pub bytes: u64,
}

/// Whether a content type is one the maskers read.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(t) = content_type else {
        return true;
    };
    let t = t
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    // `application/x-amz-json-1.1` as much as `application/json` and `+json`.
    t.starts_with("text/")
        || t.contains("json")
        || t.ends_with("xml")
        || t == "application/x-www-form-urlencoded"
}

/// Headers of a body that masking changed, which would no longer hold.
fn is_checksum(name: &str) -> bool {
    name == "content-md5"
        || name == "x-amz-crc32"
        || name.starts_with("x-amz-checksum-")
        || name == "content-length"
}

fn passed_headers(from: &HeaderMap, changed: bool) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in from {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || (changed && is_checksum(n)) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Text cut to at most `limit` bytes on a character boundary.
fn cut(text: &str, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text.to_owned(), false);
    }
    let mut end = limit;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    (text.get(..end).unwrap_or_default().to_owned(), true)
}

/// Reads up to `limit + 1` bytes of `res`; what came, and the rest of the stream if any.
async fn read_up_to(
    res: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<
    (
        Bytes,
        Option<futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>>,
    ),
    Fault,
> {
    let mut stream = res.bytes_stream().boxed();
    let mut buf = BytesMut::new();
    loop {
        let next = tokio::time::timeout(timeout, stream.next())
            .await
            .map_err(|_| Fault::Upstream)?;
        match next {
            None => return Ok((buf.freeze(), None)),
            Some(Err(_)) => return Err(Fault::Upstream),
            Some(Ok(chunk)) => {
                buf.extend_from_slice(&chunk);
                if buf.len() > limit {
                    return Ok((buf.freeze(), Some(stream)));
                }
            }
        }
    }
}

/// An error ending a relayed body: AWS went silent, or broke off.
#[derive(Debug, thiserror::Error)]
#[error("AWS's answer stopped")]
struct Stalled;

/// `stream`, ended with an error when no chunk comes for `idle`.
fn with_idle_timeout(
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    idle: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, Stalled>> + Send + 'static {
    futures_util::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(stream))),
            Ok(None) => None,
            Ok(Some(Err(_))) | Err(_) => Some((Err(Stalled), None)),
        }
    })
}

/// Turns AWS's answer `res` to a call with method `method` into the client's answer.
pub async fn answer(
    res: reqwest::Response,
    head_only: bool,
    rules: &Rules,
    masking: &Masking,
    record_limit: usize,
    timeout: Duration,
) -> Result<Answered, Fault> {
    let status = res.status();
    let headers = res.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let length = res.content_length();
    let limit = rules.max_body_bytes();
    let unmaskable = |why: Unmaskable| Fault::Unmaskable(why.to_string());
    // An answer passed as AWS sent it: not masked, no body kept for the record.
    let unmasked = |body: Body, bytes: u64| {
        let mut r = Response::new(body);
        *r.status_mut() = status;
        *r.headers_mut() = passed_headers(&headers, false);
        Answered {
            response: r,
            status: status.as_u16(),
            masked: Counts::default(),
            body: None,
            truncated: false,
            bytes,
        }
    };
    if head_only || length == Some(0) {
        return Ok(unmasked(Body::empty(), 0));
    }
    if !is_text(content_type.as_deref()) {
        if masking.binary == Binary::Refuse {
            return Err(unmaskable(Unmaskable::Binary));
        }
        let stream = with_idle_timeout(res.bytes_stream().boxed(), timeout);
        return Ok(unmasked(Body::from_stream(stream), length.unwrap_or(0)));
    }
    let too_large = |size: usize| Unmaskable::TooLarge { size, limit };
    if let Some(len) = length.filter(|l| *l > limit as u64) {
        if masking.strict {
            return Err(unmaskable(too_large(
                usize::try_from(len).unwrap_or(usize::MAX),
            )));
        }
    }
    // As a whole within the timeout too: a trickle of bytes, each within it, cannot hold the
    // call and its buffer for `limit` times as long.
    let (body, rest) = tokio::time::timeout(timeout, read_up_to(res, limit, timeout))
        .await
        .map_err(|_| Fault::Upstream)??;
    if let Some(rest) = rest {
        if masking.strict {
            return Err(unmaskable(too_large(body.len())));
        }
        // Over the limit and allowed through: what was read, then the rest as it comes.
        let head = futures_util::stream::once(async move { Ok::<Bytes, Stalled>(body) });
        let stream = head.chain(with_idle_timeout(rest, timeout));
        return Ok(unmasked(Body::from_stream(stream), length.unwrap_or(0)));
    }
    let masked = match mask::mask(&body, content_type.as_deref(), rules) {
        Ok(m) => m,
        Err(Unmaskable::Binary) if masking.binary == Binary::Pass => {
            let n = body.len() as u64;
            return Ok(unmasked(Body::from(body.clone()), n));
        }
        Err(e) => return Err(unmaskable(e)),
    };
    let changed = masked.changed();
    let out = Bytes::from(masked.body.into_owned());
    let (kept, truncated) = cut(&String::from_utf8_lossy(&out), record_limit);
    let mut r = Response::new(Body::from(out.clone()));
    *r.status_mut() = status;
    let mut h = passed_headers(&headers, changed);
    if changed {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    }
    *r.headers_mut() = h;
    Ok(Answered {
        response: r,
        status: status.as_u16(),
        masked: masked.counts,
        body: Some(kept),
        truncated,
        bytes: out.len() as u64,
    })
}

/// Turns AWS's answer `res` into text for a tool: the body read whole up to the masking limit
/// and masked, whatever its content type (an S3 object is often stored without a text type);
/// a body that is not UTF-8 or is over the limit is refused, never passed unmasked. The whole
/// body must arrive within `timeout` of its head: nothing relays it as it comes, so an answer
/// trickling in just under the wait for each piece would otherwise hold the tool call for as
/// long as the masking limit lasts.
pub async fn text(
    res: reqwest::Response,
    rules: &Rules,
    record_limit: usize,
    timeout: Duration,
) -> Result<Answered, Fault> {
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let limit = rules.max_body_bytes();
    let unmaskable = |why: Unmaskable| Fault::Unmaskable(why.to_string());
    if let Some(len) = res.content_length().filter(|l| *l > limit as u64) {
        let size = usize::try_from(len).unwrap_or(usize::MAX);
        return Err(unmaskable(Unmaskable::TooLarge { size, limit }));
    }
    let (body, rest) = tokio::time::timeout(timeout, read_up_to(res, limit, timeout))
        .await
        .map_err(|_| Fault::Upstream)??;
    if rest.is_some() {
        let size = body.len();
        return Err(unmaskable(Unmaskable::TooLarge { size, limit }));
    }
    let masked = mask::mask(&body, content_type.as_deref(), rules).map_err(unmaskable)?;
    let out = Bytes::from(masked.body.into_owned());
    let (kept, truncated) = cut(&String::from_utf8_lossy(&out), record_limit);
    let mut r = Response::new(Body::from(out.clone()));
    *r.status_mut() = status;
    if let Some(t) = content_type.and_then(|t| HeaderValue::from_str(&t).ok()) {
        r.headers_mut().insert(header::CONTENT_TYPE, t);
    }
    Ok(Answered {
        response: r,
        status: status.as_u16(),
        masked: masked.counts,
        body: Some(kept),
        truncated,
        bytes: out.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_types_are_masked_and_others_are_binary() {
        for t in [
            None,
            Some("application/x-amz-json-1.1"),
            Some("text/xml; charset=utf-8"),
            Some("application/json"),
            Some("text/plain"),
            Some("application/vnd.api+json"),
        ] {
            assert!(is_text(t), "{t:?}");
        }
        for t in [
            Some("application/octet-stream"),
            Some("image/png"),
            Some("application/zip"),
        ] {
            assert!(!is_text(t), "{t:?}");
        }
    }

    #[test]
    fn a_changed_body_loses_its_checksums() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-crc32", HeaderValue::from_static("abc"));
        h.insert("x-amz-crc32", HeaderValue::from_static("1"));
        h.insert("content-md5", HeaderValue::from_static("x"));
        h.insert("etag", HeaderValue::from_static("\"e\""));
        h.insert("connection", HeaderValue::from_static("close"));
        let kept = passed_headers(&h, true);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(kept.contains_key("etag"));
        assert_eq!(passed_headers(&h, false).len(), 4);
    }

    fn aws(content_type: &str, body: &'static [u8]) -> reqwest::Response {
        let res = http::Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, body.len())
            .header("x-amz-crc32", "123")
            .body(body.to_vec())
            .unwrap();
        reqwest::Response::from(res)
    }

    async fn run(res: reqwest::Response, masking: &Masking) -> Result<(Answered, Vec<u8>), Fault> {
        let rules =
            Rules::default().with_max_body_bytes(usize::try_from(masking.max_body_bytes).unwrap());
        let a = answer(res, false, &rules, masking, 16, Duration::from_secs(5)).await?;
        let (parts, body) = a.response.into_parts();
        let bytes = http_body_util::BodyExt::collect(body)
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let a = Answered {
            response: Response::from_parts(parts, Body::empty()),
            ..a
        };
        Ok((a, bytes))
    }

    #[tokio::test]
    async fn a_masked_answer_is_whole_without_its_old_checksum_and_recorded_cut() {
        let body: &[u8] = br#"{"Name":"db","SecretString":"hunter2hunter2"}"#;
        let (a, bytes) = run(aws("application/x-amz-json-1.1", body), &Masking::default())
            .await
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text, r#"{"Name":"db","SecretString":"[MASKED:secret]"}"#);
        assert!(!a.response.headers().contains_key("x-amz-crc32"));
        assert_eq!(
            a.response.headers()[header::CONTENT_LENGTH],
            text.len().to_string()
        );
        assert_eq!(a.masked.total(), 1);
        // The record keeps the masked body, cut to its limit.
        assert_eq!(a.body.as_deref(), Some(&text[..16]));
        assert!(a.truncated);
    }

    #[tokio::test]
    async fn binary_and_oversized_answers_follow_the_policy() {
        let big: &'static [u8] = Box::leak(vec![b'a'; 2048].into_boxed_slice());
        let small_limit = Masking {
            max_body_bytes: 1024,
            ..Masking::default()
        };
        // Over the limit: passed whole and unmasked, or refused when strict.
        let (a, bytes) = run(aws("text/plain", big), &small_limit).await.unwrap();
        assert_eq!((bytes.len(), a.body.is_none()), (2048, true));
        let strict = Masking {
            strict: true,
            ..small_limit.clone()
        };
        assert!(matches!(
            run(aws("text/plain", big), &strict).await,
            Err(Fault::Unmaskable(_))
        ));
        // Binary: passed as it is, or refused.
        let png: &[u8] = b"\x89PNG password=hunter2";
        let (a, bytes) = run(aws("image/png", png), &Masking::default())
            .await
            .unwrap();
        assert_eq!((bytes.as_slice(), a.body.is_none()), (png, true));
        let refuse = Masking {
            binary: Binary::Refuse,
            ..Masking::default()
        };
        assert!(matches!(
            run(aws("image/png", png), &refuse).await,
            Err(Fault::Unmaskable(_))
        ));
    }

    #[tokio::test]
    async fn a_tools_answer_is_masked_text_whatever_its_type_or_refused() {
        let rules = Rules::default().with_max_body_bytes(1024);
        let timeout = Duration::from_secs(5);
        // An object stored without a text type is still text, and masked.
        let body: &[u8] = b"db_password=hunter2hunter2\nok";
        let a = text(aws("binary/octet-stream", body), &rules, 1024, timeout)
            .await
            .unwrap();
        let bytes = http_body_util::BodyExt::collect(a.response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let shown = String::from_utf8_lossy(&bytes);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[MASKED:"), "{shown}");
        assert_eq!(a.masked.total(), 1);
        // Bytes that are not text, and a body over the limit, never pass.
        let png: &[u8] = b"\x89PNG\x00\xff\xfe password=hunter2";
        assert!(matches!(
            text(aws("image/png", png), &rules, 1024, timeout).await,
            Err(Fault::Unmaskable(_))
        ));
        let big: &'static [u8] = Box::leak(vec![b'a'; 2048].into_boxed_slice());
        assert!(matches!(
            text(aws("text/plain", big), &rules, 1024, timeout).await,
            Err(Fault::Unmaskable(_))
        ));
    }

    #[tokio::test]
    async fn a_tools_answer_must_arrive_whole_in_time_however_it_trickles() {
        // Each piece comes well within the wait for one, but the whole takes twice the wait.
        let wait = Duration::from_millis(1000);
        let pieces = futures_util::stream::unfold(0u32, move |n| async move {
            if n == 6 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(350)).await;
            Some((
                Ok::<_, std::io::Error>(Bytes::from_static(b"line\n")),
                n + 1,
            ))
        });
        let res = http::Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(reqwest::Body::wrap_stream(pieces))
            .unwrap();
        let rules = Rules::default().with_max_body_bytes(1024);
        let got = text(reqwest::Response::from(res), &rules, 1024, wait).await;
        assert!(matches!(got, Err(Fault::Upstream)), "{got:?}");
    }

    #[test]
    fn records_are_cut_on_a_character() {
        assert_eq!(cut("héllo", 2), ("h".into(), true));
        assert_eq!(cut("abc", 10), ("abc".into(), false));
    }
}
