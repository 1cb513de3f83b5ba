use aws_lc_rs::hmac;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::aws_proxy::sigv4::{verify, Request};
use crate::aws_proxy::vectors::{secret_of, Vector, CHUNKED, KEY_SECRET, SIGNED_AT};

// AWS's worked examples of a chunked upload ("Signature Calculations for the Authorization
// Header: Transferring Payload in Multiple Chunks", and its page on trailing headers): 66,560
// bytes of `a` sent as a 64 KiB chunk, a 1 KiB chunk and the final empty one, signed with the
// documentation's key at 2013-05-24T00:00:00Z in us-east-1. The request headers, seed, chunk
// and trailer signatures below are the published ones.

/// When the examples were signed.
const EXAMPLE_AT: OffsetDateTime = datetime!(2013-05-24 00:00:00 UTC);
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const CHUNK_SIGNATURES: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];
const TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
const TRAILER_CHUNK_SIGNATURES: [&str; 3] = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
];
const TRAILER: &str = "x-amz-checksum-crc32c:sOO8/Q==";
const TRAILER_SIGNATURE_LINE: &str =
    "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";
/// The examples' object: 66,560 bytes of `a`.
const OBJECT_LEN: usize = 66_560;
const CHUNK_LENS: [usize; 3] = [65_536, 1_024, 0];
/// A limit no test body reaches.
const ROOMY: usize = 1 << 20;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

/// The published request's headers, with or without the trailer.
fn example_headers(trailer: bool) -> HeaderMap {
    let (signed, seed) = if trailer {
        ("content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer", TRAILER_SEED)
    } else {
        ("content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class", SEED)
    };
    let auth = format!("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={seed}");
    let mut pairs = vec![
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("authorization", auth.as_str()),
    ];
    if trailer {
        pairs.extend([
            (
                "x-amz-content-sha256",
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            ),
            ("x-amz-trailer", "x-amz-checksum-crc32c"),
        ]);
    } else {
        pairs.extend([
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("content-length", "66824"),
        ]);
    }
    headers(&pairs)
}

/// The published request, verified as the proxy does before it reads the body.
fn example_verified(headers: &HeaderMap) -> Verified {
    let req = Request {
        method: "PUT",
        path: "/examplebucket/chunkObject.txt",
        query: None,
        headers,
        authority: None,
    };
    verify(&req, b"", EXAMPLE_AT, |k| secret_of(k.access_key_id)).unwrap()
}

/// A signed chunk on the wire.
fn signed_chunk(data: &[u8], signature: &str) -> Vec<u8> {
    let mut out = format!("{:x};chunk-signature={signature}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The published body, built from the published signatures. `trailer_gap` puts the final
/// chunk's (empty) data CRLF before the trailer, as some signers do.
fn example_body(trailer: bool, trailer_gap: bool) -> Vec<u8> {
    let signatures = if trailer {
        TRAILER_CHUNK_SIGNATURES
    } else {
        CHUNK_SIGNATURES
    };
    let mut out = Vec::new();
    for (len, sig) in CHUNK_LENS.iter().zip(signatures) {
        if *len == 0 && trailer {
            out.extend(format!("0;chunk-signature={sig}\r\n").bytes());
        } else {
            out.extend(signed_chunk(&vec![b'a'; *len], sig));
        }
    }
    if trailer {
        if trailer_gap {
            out.extend_from_slice(b"\r\n");
        }
        out.extend(format!("{TRAILER}\r\n{TRAILER_SIGNATURE_LINE}\r\n\r\n").bytes());
    }
    out
}

/// Signs and frames `chunks` (the final empty one added) in the chain from `seed`, with an
/// independent writer of the string to sign; a trailer, if any, is signed too.
fn encode_signed(
    v: &Verified,
    secret: &str,
    seed: &str,
    chunks: &[&[u8]],
    trailer: Option<&[(&str, &str)]>,
) -> Vec<u8> {
    let date = form::scope_date(v.scope.date);
    let key = signing_key(secret, &date, &v.scope.region, &v.scope.service);
    let stamp = format!(
        "{}\n{date}/{}/{}/aws4_request",
        form::basic_format(v.signed_at),
        v.scope.region,
        v.scope.service
    );
    let sign = |s: String| hex(hmac::sign(&key, s.as_bytes()).as_ref());
    let mut previous = seed.to_owned();
    let mut out = Vec::new();
    for data in chunks.iter().copied().chain([&b""[..]]) {
        previous = sign(format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{stamp}\n{previous}\n{}\n{}",
            sha256_hex(b""),
            sha256_hex(data)
        ));
        if data.is_empty() && trailer.is_some() {
            out.extend(format!("0;chunk-signature={previous}\r\n").bytes());
        } else {
            out.extend(signed_chunk(data, &previous));
        }
    }
    if let Some(lines) = trailer {
        let canonical: String = lines.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let signature = sign(format!(
            "AWS4-HMAC-SHA256-TRAILER\n{stamp}\n{previous}\n{}",
            sha256_hex(canonical.as_bytes())
        ));
        for (n, v) in lines {
            out.extend(format!("{n}:{v}\r\n").bytes());
        }
        out.extend(format!("x-amz-trailer-signature:{signature}\r\n\r\n").bytes());
    }
    out
}

/// CRC-32 (IEEE), as S3's `x-amz-checksum-crc32` carries it: big-endian, base64.
fn crc32_base64(data: &[u8]) -> String {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    base64::engine::general_purpose::STANDARD.encode((!crc).to_be_bytes())
}

/// A botocore vector verified, with its headers.
fn botocore(v: &Vector) -> (Verified, HeaderMap) {
    let headers = v.header_map();
    let req = Request {
        method: v.method,
        path: v.path(),
        query: v.query(),
        headers: &headers,
        authority: None,
    };
    let verified = verify(&req, b"", SIGNED_AT, |k| secret_of(k.access_key_id))
        .unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
    (verified, headers)
}

fn botocore_named(name: &str) -> (Verified, HeaderMap, Vec<u8>) {
    let v = CHUNKED.iter().find(|v| v.name == name).unwrap();
    let (verified, headers) = botocore(v);
    (verified, headers, v.body.as_bytes().to_vec())
}

fn replace(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains(from), "{from:?} not in the body");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn the_published_signed_example_decodes() {
    let headers = example_headers(false);
    let v = example_verified(&headers);
    assert_eq!(
        v.payload,
        Payload::StreamingUnverified {
            seed_signature: Some(SEED.into()),
            trailer: false
        }
    );
    let got = decode_chunked(&example_body(false, false), &v, KEY_SECRET, &headers, ROOMY).unwrap();
    assert_eq!(got.body, vec![b'a'; OBJECT_LEN]);
    assert!(got.trailers.is_empty());
}

#[test]
fn the_published_example_with_a_trailer_decodes() {
    let headers = example_headers(true);
    let v = example_verified(&headers);
    assert_eq!(
        v.payload,
        Payload::StreamingUnverified {
            seed_signature: Some(TRAILER_SEED.into()),
            trailer: true
        }
    );
    for gap in [false, true] {
        let body = example_body(true, gap);
        let got = decode_chunked(&body, &v, KEY_SECRET, &headers, ROOMY).unwrap();
        assert_eq!(got.body, vec![b'a'; OBJECT_LEN]);
        assert_eq!(
            got.trailers,
            [("x-amz-checksum-crc32c".to_owned(), "sOO8/Q==".to_owned())]
        );
    }
}

#[test]
fn the_test_signer_writes_the_published_bodies() {
    // The signer the other tests use reproduces AWS's own bytes, so what it signs is AWS's form.
    let (first, second) = (vec![b'a'; 65_536], vec![b'a'; 1_024]);
    let chunks = [&first[..], &second[..]];
    let v = example_verified(&example_headers(false));
    assert_eq!(
        encode_signed(&v, KEY_SECRET, SEED, &chunks, None),
        example_body(false, false)
    );
    let v = example_verified(&example_headers(true));
    let trailer = [("x-amz-checksum-crc32c", "sOO8/Q==")];
    assert_eq!(
        encode_signed(&v, KEY_SECRET, TRAILER_SEED, &chunks, Some(&trailer)),
        example_body(true, false)
    );
}

#[test]
fn botocore_unsigned_trailer_bodies_decode() {
    for vector in CHUNKED {
        let (v, headers) = botocore(vector);
        assert_eq!(
            v.payload,
            Payload::StreamingUnverified {
                seed_signature: None,
                trailer: true
            },
            "{}",
            vector.name
        );
        let got = decode_chunked(vector.body.as_bytes(), &v, "unused", &headers, ROOMY)
            .unwrap_or_else(|e| panic!("{}: {e:?}", vector.name));
        let declared: usize = headers["x-amz-decoded-content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(got.body.len(), declared, "{}", vector.name);
        assert_eq!(
            got.trailers,
            [("x-amz-checksum-crc32".to_owned(), crc32_base64(&got.body))],
            "{}",
            vector.name
        );
    }
    let (v, headers, body) = botocore_named("s3_put_trailer_chunks");
    let got = decode_chunked(&body, &v, "", &headers, ROOMY).unwrap();
    let expected: String = (0..5)
        .map(|i| format!("line {i:03} of a multi-chunk object\n"))
        .collect();
    assert_eq!(got.body, expected.as_bytes());
}

#[test]
fn a_changed_chunk_is_refused() {
    let headers = example_headers(false);
    let v = example_verified(&headers);
    let body = example_body(false, false);
    // A byte of each chunk's data, and a digit of each signature.
    let first_data = body.iter().position(|b| *b == b'\n').unwrap() + 1;
    let second_data = first_data + 65_536 + 2 + 86;
    let last_signature = body.len() - 5;
    for at in [first_data, first_data + 65_535, second_data, last_signature] {
        let mut forged = body.clone();
        forged[at] = if forged[at] == b'a' { b'b' } else { b'0' };
        assert_eq!(
            decode_chunked(&forged, &v, KEY_SECRET, &headers, ROOMY),
            Err(SigV4Error::Mismatch),
            "byte {at}"
        );
    }
}

#[test]
fn reordered_chunks_are_refused() {
    let headers = example_headers(false);
    let v = example_verified(&headers);
    let first = signed_chunk(&[b'a'; 65_536], CHUNK_SIGNATURES[0]);
    let second = signed_chunk(&[b'a'; 1_024], CHUNK_SIGNATURES[1]);
    let last = signed_chunk(b"", CHUNK_SIGNATURES[2]);
    let swapped = [second, first, last].concat();
    assert_eq!(
        decode_chunked(&swapped, &v, KEY_SECRET, &headers, ROOMY),
        Err(SigV4Error::Mismatch)
    );
}

#[test]
fn a_truncated_body_is_refused() {
    let headers = example_headers(true);
    let v = example_verified(&headers);
    let body = example_body(true, false);
    // Cut anywhere but just before the final empty line, whose absence is tolerated.
    let cuts = (0..body.len())
        .step_by(997)
        .chain(body.len() - 200..body.len());
    for cut in cuts.filter(|c| *c != body.len() - 2) {
        assert!(
            decode_chunked(&body[..cut], &v, KEY_SECRET, &headers, ROOMY).is_err(),
            "cut at {cut}"
        );
    }
    // Without its final chunk, a body is refused even when what came is whole chunks.
    let unsigned = botocore_named("s3_put_trailer_chunks");
    let cut = replace(
        &unsigned.2,
        "0\r\nx-amz-checksum-crc32:Djv+cw==\r\n\r\n",
        "",
    );
    assert_eq!(
        decode_chunked(&cut, &unsigned.0, "", &unsigned.1, ROOMY),
        Err(SigV4Error::Malformed(
            "the aws-chunked body ends before its final, empty chunk"
        ))
    );
}

#[test]
fn a_wrong_seed_or_key_is_refused() {
    let headers = example_headers(false);
    let v = example_verified(&headers);
    let body = example_body(false, false);
    let mut wrong_seed = v.clone();
    wrong_seed.payload = Payload::StreamingUnverified {
        seed_signature: Some(TRAILER_SEED.into()),
        trailer: false,
    };
    assert_eq!(
        decode_chunked(&body, &wrong_seed, KEY_SECRET, &headers, ROOMY),
        Err(SigV4Error::Mismatch)
    );
    assert_eq!(
        decode_chunked(&body, &v, "another secret", &headers, ROOMY),
        Err(SigV4Error::Mismatch)
    );
    // Chunks signed in the right chain by a key other than the request's.
    let other = encode_signed(&v, "another secret", SEED, &[b"hello"], None);
    assert_eq!(
        decode_chunked(&other, &v, KEY_SECRET, &HeaderMap::new(), ROOMY),
        Err(SigV4Error::Mismatch)
    );
    let own = encode_signed(&v, KEY_SECRET, SEED, &[b"hello"], None);
    let got = decode_chunked(&own, &v, KEY_SECRET, &HeaderMap::new(), ROOMY).unwrap();
    assert_eq!(got.body, b"hello");
}

#[test]
fn a_changed_or_missing_trailer_is_refused() {
    let headers = example_headers(true);
    let v = example_verified(&headers);
    let body = example_body(true, false);
    let changed = replace(&body, "sOO8/Q==", "sOO8/A==");
    assert_eq!(
        decode_chunked(&changed, &v, KEY_SECRET, &headers, ROOMY),
        Err(SigV4Error::Mismatch)
    );
    let unsigned = replace(&body, &format!("{TRAILER_SIGNATURE_LINE}\r\n"), "");
    assert_eq!(
        decode_chunked(&unsigned, &v, KEY_SECRET, &headers, ROOMY),
        Err(SigV4Error::Malformed(
            "a signed trailer needs its x-amz-trailer-signature"
        ))
    );
    let dropped = replace(&body, &format!("{TRAILER}\r\n"), "");
    assert_eq!(
        decode_chunked(&dropped, &v, KEY_SECRET, &headers, ROOMY),
        Err(SigV4Error::Mismatch)
    );
    let after = replace(
        &body,
        &format!("{TRAILER}\r\n{TRAILER_SIGNATURE_LINE}\r\n"),
        &format!("{TRAILER_SIGNATURE_LINE}\r\n{TRAILER}\r\n"),
    );
    assert_eq!(
        decode_chunked(&after, &v, KEY_SECRET, &headers, ROOMY),
        Err(SigV4Error::Malformed(
            "the trailer signature must be the trailer's last line"
        ))
    );
}

#[test]
fn sizes_are_bounded() {
    let (v, headers, body) = botocore_named("s3_put_trailer_one_chunk");
    // One byte over what is left of the body, and far over.
    let over = format!("{:x}", body.len() - "3f\r\n".len() + 1);
    for size in [over.as_str(), "ffffffffffffffff"] {
        let forged = replace(&body, "3f\r\n", &format!("{size}\r\n"));
        assert_eq!(
            decode_chunked(&forged, &v, "", &headers, ROOMY),
            Err(SigV4Error::Malformed(
                "a chunk is larger than what is left of the body"
            )),
            "{size}"
        );
    }
    let forged = replace(&body, "3f\r\n", "10000000000000000\r\n");
    assert_eq!(
        decode_chunked(&forged, &v, "", &headers, ROOMY),
        Err(SigV4Error::Malformed(
            "a chunk's size must be 1 to 16 hex digits"
        ))
    );
    // Over the caller's limit, whether the header says so or the chunks do.
    let limit = SigV4Error::TooLarge {
        what: "the decoded body",
        limit: 62,
    };
    assert_eq!(
        decode_chunked(&body, &v, "", &headers, 62),
        Err(limit.clone())
    );
    let mut undeclared = headers.clone();
    undeclared.remove("x-amz-decoded-content-length");
    assert_eq!(decode_chunked(&body, &v, "", &undeclared, 62), Err(limit));
    assert!(decode_chunked(&body, &v, "", &headers, 63).is_ok());
    // The decoded length must be the declared one.
    let mut wrong = headers.clone();
    wrong.insert(
        "x-amz-decoded-content-length",
        HeaderValue::from_static("62"),
    );
    assert_eq!(
        decode_chunked(&body, &v, "", &wrong, ROOMY),
        Err(SigV4Error::Malformed(
            "the decoded body is not x-amz-decoded-content-length bytes long"
        ))
    );
}

#[test]
fn malformed_framing_is_refused() {
    let (v, headers, body) = botocore_named("s3_put_trailer_one_chunk");
    let malformed = |forged: &[u8]| {
        matches!(
            decode_chunked(forged, &v, "", &headers, ROOMY),
            Err(SigV4Error::Malformed(_))
        )
    };
    let cases: &[(&str, &str)] = &[
        ("3f\r\n", "3g\r\n"),
        ("3f\r\n", "+3f\r\n"),
        ("3f\r\n", " 3f\r\n"),
        ("3f\r\n", "\r\n"),
        ("3f\r\n", "3f;chunk-signature=00\r\n"),
        ("3f\r\n", "3f\n"),
        ("world\n\r\n0", "world\n0"),
        ("world\n\r\n0", "world\nX\r\n0"),
        ("0\r\n", "0;x=y\r\n"),
        ("crc32:HD21sw==", "crc32:"),
        ("crc32:HD21sw==", "crc32:HD21\x01sw=="),
        ("x-amz-checksum-crc32:", "host:"),
        ("x-amz-checksum-crc32:", "x-amz-checksum crc32:"),
        ("x-amz-checksum-crc32:HD21sw==\r\n", ""),
        (
            "x-amz-checksum-crc32:HD21sw==\r\n",
            "x-amz-checksum-crc32:HD21sw==\r\nx-amz-checksum-crc32:HD21sw==\r\n",
        ),
        (
            "x-amz-checksum-crc32:HD21sw==\r\n",
            "x-amz-checksum-crc32:HD21sw==\r\nx-amz-checksum-sha1:AAAA\r\n",
        ),
        (
            "x-amz-checksum-crc32:HD21sw==\r\n",
            "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n",
        ),
        ("==\r\n\r\n", "==\r\n\r\nmore"),
        ("==\r\n\r\n", "==\r\n\r\n\r\n"),
    ];
    for (from, to) in cases {
        assert!(malformed(&replace(&body, from, to)), "{from:?} -> {to:?}");
    }
    // The botocore body without its final empty line is still whole.
    let unended = replace(&body, "==\r\n\r\n", "==\r\n");
    assert!(decode_chunked(&unended, &v, "", &headers, ROOMY).is_ok());

    // A signed chunk needs its signature; a plain chunked payload takes no x-amz-trailer.
    let signed_headers = example_headers(false);
    let signed = example_verified(&signed_headers);
    let bare = b"5\r\nhello\r\n0\r\n\r\n";
    assert!(matches!(
        decode_chunked(bare, &signed, KEY_SECRET, &signed_headers, ROOMY),
        Err(SigV4Error::Malformed(_))
    ));
    let mut with_trailer = signed_headers.clone();
    with_trailer.insert(
        "x-amz-trailer",
        HeaderValue::from_static("x-amz-checksum-crc32"),
    );
    assert!(matches!(
        decode_chunked(
            &example_body(false, false),
            &signed,
            KEY_SECRET,
            &with_trailer,
            ROOMY
        ),
        Err(SigV4Error::Malformed(_))
    ));
    // Only an aws-chunked payload is decoded here.
    let mut plain = signed.clone();
    plain.payload = Payload::Signed;
    assert!(matches!(
        decode_chunked(bare, &plain, KEY_SECRET, &signed_headers, ROOMY),
        Err(SigV4Error::PayloadNotAllowed(_))
    ));
}

#[test]
fn lines_and_trailers_are_bounded() {
    let (v, headers, body) = botocore_named("s3_put_trailer_one_chunk");
    let long_size = format!("{}3f\r\n", "0".repeat(MAX_CHUNK_LINE));
    assert_eq!(
        decode_chunked(
            &replace(&body, "3f\r\n", &long_size),
            &v,
            "",
            &headers,
            ROOMY
        ),
        Err(SigV4Error::TooLarge {
            what: "a chunk or trailer line",
            limit: MAX_CHUNK_LINE
        })
    );
    let long_value = format!("crc32:{}\r\n", "A".repeat(MAX_TRAILER_LINE));
    assert_eq!(
        decode_chunked(
            &replace(&body, "crc32:HD21sw==\r\n", &long_value),
            &v,
            "",
            &headers,
            ROOMY
        ),
        Err(SigV4Error::TooLarge {
            what: "a chunk or trailer line",
            limit: MAX_TRAILER_LINE
        })
    );
    let many: String = (0..=MAX_TRAILERS)
        .map(|i| format!("x-amz-checksum-{i}:AAAA\r\n"))
        .collect();
    let names: Vec<String> = (0..=MAX_TRAILERS)
        .map(|i| format!("x-amz-checksum-{i}"))
        .collect();
    let mut declared = headers.clone();
    declared.insert(
        "x-amz-trailer",
        HeaderValue::from_str(&names[..MAX_TRAILERS].join(",")).unwrap(),
    );
    let too_many = SigV4Error::TooLarge {
        what: "the number of trailers",
        limit: MAX_TRAILERS,
    };
    let forged = replace(&body, "x-amz-checksum-crc32:HD21sw==\r\n", &many);
    assert_eq!(
        decode_chunked(&forged, &v, "", &declared, ROOMY),
        Err(too_many.clone())
    );
    declared.insert(
        "x-amz-trailer",
        HeaderValue::from_str(&names.join(",")).unwrap(),
    );
    assert_eq!(
        decode_chunked(&forged, &v, "", &declared, ROOMY),
        Err(too_many)
    );
}

#[test]
fn the_number_of_chunks_is_bounded() {
    let (v, _, _) = botocore_named("s3_put_trailer_one_chunk");
    let body = |chunks: usize| {
        let mut out = b"1\r\na\r\n".repeat(chunks - 1);
        out.extend_from_slice(b"0\r\n\r\n");
        out
    };
    let got = decode_chunked(&body(MAX_CHUNKS), &v, "", &HeaderMap::new(), ROOMY).unwrap();
    assert_eq!(got.body.len(), MAX_CHUNKS - 1);
    assert_eq!(
        decode_chunked(&body(MAX_CHUNKS + 1), &v, "", &HeaderMap::new(), 2 * ROOMY),
        Err(SigV4Error::TooLarge {
            what: "the number of chunks",
            limit: MAX_CHUNKS
        })
    );
}

/// The published example's verification, with a signed payload of either form.
fn signed_verified(trailer: bool) -> Verified {
    let mut v = example_verified(&example_headers(false));
    v.payload = Payload::StreamingUnverified {
        seed_signature: Some(SEED.into()),
        trailer,
    };
    v
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            // Mostly the framing's own characters, to reach deeper.
            proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(b';'), Just(b':'), Just(b'0'),
                    Just(b'1'), Just(b'f'), Just(b'x'), any::<u8>()],
                0..256,
            ),
        ],
        mode in 0..3u8,
        max in 0usize..64,
    ) {
        let v = match mode {
            0 => signed_verified(false),
            1 => signed_verified(true),
            _ => botocore_named("s3_put_trailer_one_chunk").0,
        };
        if let Ok(got) = decode_chunked(&body, &v, KEY_SECRET, &HeaderMap::new(), max) {
            prop_assert!(got.body.len() <= max);
            prop_assert!(got.body.len() < body.len());
            prop_assert!(got.trailers.is_empty());
        }
    }

    #[test]
    fn signed_bodies_round_trip_and_resist_any_change(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..5),
        trailer in any::<bool>(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let v = signed_verified(trailer);
        let slices: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let lines = [("x-amz-checksum-crc32", "AAAAAA==")];
        let body = encode_signed(&v, KEY_SECRET, SEED, &slices, trailer.then_some(&lines[..]));
        let headers = if trailer {
            headers(&[("x-amz-trailer", "x-amz-checksum-crc32")])
        } else {
            HeaderMap::new()
        };
        let got = decode_chunked(&body, &v, KEY_SECRET, &headers, ROOMY).unwrap();
        prop_assert_eq!(&got.body, &chunks.concat());

        // Any one byte changed is refused, or means the same (a hex digit's case).
        let mut forged = body.clone();
        let i = at.index(forged.len());
        forged[i] ^= flip;
        if let Ok(same) = decode_chunked(&forged, &v, KEY_SECRET, &headers, ROOMY) {
            prop_assert_eq!(same, got);
        }
    }
}
