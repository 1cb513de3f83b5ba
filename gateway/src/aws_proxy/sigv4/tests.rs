use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::aws_proxy::vectors::{secret_of, Vector, SIGNED_AT, VECTORS};

/// A vector's request, owned so a test can change it.
#[derive(Debug, Clone)]
struct Owned {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    authority: Option<String>,
    body: Vec<u8>,
}

impl Owned {
    fn of(v: &Vector) -> Self {
        Self {
            method: v.method.into(),
            path: v.path().into(),
            query: v.query().map(str::to_owned),
            headers: v.header_map(),
            authority: None,
            body: v.body.as_bytes().to_vec(),
        }
    }

    fn verify_at(&self, now: OffsetDateTime) -> Result<Verified, SigV4Error> {
        let req = Request {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            authority: self.authority.as_deref(),
        };
        verify(&req, &self.body, now, |k| secret_of(k.access_key_id))
    }

    fn verify(&self) -> Result<Verified, SigV4Error> {
        self.verify_at(SIGNED_AT)
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }

    fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_owned()
    }
}

fn vector(name: &str) -> Owned {
    Owned::of(VECTORS.iter().find(|v| v.name == name).unwrap())
}

/// `s` with its last ASCII alphanumeric character changed to another (hex stays hex).
fn bump(s: &str) -> String {
    let mut bytes = s.as_bytes().to_vec();
    let i = bytes
        .iter()
        .rposition(u8::is_ascii_alphanumeric)
        .unwrap_or_else(|| panic!("nothing to change in {s:?}"));
    bytes[i] = match bytes[i] {
        b'9' => b'8',
        b'z' => b'y',
        b'Z' => b'Y',
        b'f' => b'e',
        b => b + 1,
    };
    String::from_utf8(bytes).unwrap()
}

/// The `Authorization` header's signed headers and signature of a header-form vector.
fn auth_parts(req: &Owned) -> Option<(Vec<String>, String)> {
    let auth = req.headers.get("authorization")?.to_str().unwrap();
    let signed = auth.split("SignedHeaders=").nth(1)?.split(',').next()?;
    let sig = auth.split("Signature=").nth(1)?;
    Some((signed.split(';').map(str::to_owned).collect(), sig.into()))
}

#[test]
fn every_vector_verifies() {
    for v in VECTORS {
        let ok = Owned::of(v)
            .verify()
            .unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
        assert_eq!(ok.signed_at, SIGNED_AT, "{}", v.name);
        assert!(ok.signed_headers.contains(&"host".to_owned()), "{}", v.name);
        assert_eq!(ok.scope.date, SIGNED_AT.date(), "{}", v.name);
    }
}

#[test]
fn what_a_verified_request_says() {
    let sts = vector("sts_query_post").verify().unwrap();
    assert_eq!(sts.access_key_id, "ASIAQNZGKIQY56JQ7WML");
    assert_eq!(
        sts.session_token.as_deref(),
        Some("IQoJb3JpZ2luX2VjEHRlc3QtdG9rZW4tZm9yLXNpZ3Y0LXZlY3RvcnM=")
    );
    assert_eq!(
        (sts.scope.service.as_str(), sts.scope.region.as_str()),
        ("sts", "us-east-1")
    );
    assert_eq!(
        sts.signed_headers,
        ["content-type", "host", "x-amz-date", "x-amz-security-token"]
    );
    assert_eq!(sts.payload, Payload::Signed);
    assert_eq!(sts.presigned_for, None);

    let logs = vector("logs_json_post").verify().unwrap();
    assert_eq!(
        (logs.scope.service.as_str(), logs.scope.region.as_str()),
        ("logs", "us-west-2")
    );

    let put = vector("s3_put_body").verify().unwrap();
    assert_eq!(put.payload, Payload::Signed);

    let unsigned = vector("s3_put_unsigned_payload").verify().unwrap();
    assert_eq!(unsigned.payload, Payload::Unsigned);

    let streaming = vector("s3_streaming_put");
    let (_, seed) = auth_parts(&streaming).unwrap();
    assert_eq!(
        streaming.verify().unwrap().payload,
        Payload::StreamingUnverified {
            seed_signature: Some(seed),
            trailer: false
        }
    );

    let presigned = vector("s3_presigned_get").verify().unwrap();
    assert_eq!(presigned.presigned_for, Some(Duration::seconds(900)));
    assert_eq!(presigned.payload, Payload::Unsigned);
    assert_eq!(presigned.signed_headers, ["host"]);

    let sts_presigned = vector("sts_presigned_get").verify().unwrap();
    assert_eq!(sts_presigned.presigned_for, Some(Duration::seconds(60)));
    assert_eq!(sts_presigned.payload, Payload::Signed);
}

#[test]
fn a_changed_method_fails() {
    for v in VECTORS {
        let mut req = Owned::of(v);
        req.method = bump(&req.method);
        assert_eq!(req.verify(), Err(SigV4Error::Mismatch), "{}", v.name);
    }
}

#[test]
fn a_changed_path_fails() {
    for v in VECTORS.iter().filter(|v| v.path() != "/") {
        let mut req = Owned::of(v);
        req.path = bump(&req.path);
        assert_eq!(req.verify(), Err(SigV4Error::Mismatch), "{}", v.name);
    }
}

#[test]
fn a_changed_query_fails() {
    // The first parameter that is neither the signature nor one of its own fields.
    let own = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ];
    let mut changed = 0;
    for v in VECTORS {
        let mut req = Owned::of(v);
        let Some(query) = req.query.clone() else {
            continue;
        };
        let mut pieces: Vec<String> = query.split('&').map(str::to_owned).collect();
        let i = pieces
            .iter()
            .position(|p| !own.contains(&p.split('=').next().unwrap()))
            .unwrap();
        pieces[i] = bump(&pieces[i]);
        req.query = Some(pieces.join("&"));
        assert_eq!(req.verify(), Err(SigV4Error::Mismatch), "{}", v.name);
        changed += 1;
    }
    assert_eq!(changed, 5);
}

#[test]
fn a_changed_signed_header_fails() {
    let mut changed = 0;
    for v in VECTORS {
        let base = Owned::of(v);
        let Some((signed, _)) = auth_parts(&base) else {
            continue;
        };
        for name in signed
            .iter()
            .filter(|n| !["x-amz-date", "x-amz-content-sha256"].contains(&n.as_str()))
        {
            let mut req = base.clone();
            let value = bump(&req.header(name));
            req.set(name, &value);
            assert_eq!(req.verify(), Err(SigV4Error::Mismatch), "{} {name}", v.name);
            changed += 1;
        }
    }
    assert!(changed >= 20, "{changed}");
}

#[test]
fn a_changed_body_fails_unless_unsigned() {
    for v in VECTORS.iter().filter(|v| !v.body.is_empty()) {
        let mut req = Owned::of(v);
        let last = req.body.len() - 1;
        req.body[last] ^= 1;
        let got = req.verify();
        match v.name {
            // UNSIGNED-PAYLOAD: the signature does not cover the body, by design.
            "s3_put_unsigned_payload" => assert_eq!(got.unwrap().payload, Payload::Unsigned),
            n if n.starts_with("s3_") => {
                assert_eq!(got, Err(SigV4Error::ContentMismatch), "{n}")
            }
            n => assert_eq!(got, Err(SigV4Error::Mismatch), "{n}"),
        }
    }
}

#[test]
fn a_changed_date_fails() {
    for v in VECTORS {
        let mut req = Owned::of(v);
        if req.headers.contains_key("x-amz-date") {
            let d = req.header("x-amz-date").replace("T120000Z", "T120001Z");
            req.set("x-amz-date", &d);
        } else {
            let q = req.query.clone().unwrap();
            req.query = Some(q.replace("T120000Z", "T120001Z"));
        }
        assert_eq!(req.verify(), Err(SigV4Error::Mismatch), "{}", v.name);
    }
}

#[test]
fn a_changed_signature_fails() {
    for v in VECTORS {
        let mut req = Owned::of(v);
        if let Some((_, sig)) = auth_parts(&req) {
            let auth = req.header("authorization").replace(&sig, &bump(&sig));
            req.set("authorization", &auth);
        } else {
            let q = req.query.clone().unwrap();
            req.query = Some(bump(&q));
        }
        assert_eq!(req.verify(), Err(SigV4Error::Mismatch), "{}", v.name);
    }
}

#[test]
fn skew_is_five_minutes_either_way() {
    let req = vector("dynamodb_json_post");
    let edge = Duration::minutes(5);
    let second = Duration::seconds(1);
    assert!(req.verify_at(SIGNED_AT + edge).is_ok());
    assert!(req.verify_at(SIGNED_AT - edge).is_ok());
    assert_eq!(
        req.verify_at(SIGNED_AT + edge + second),
        Err(SigV4Error::Skewed)
    );
    assert_eq!(
        req.verify_at(SIGNED_AT - edge - second),
        Err(SigV4Error::Skewed)
    );
    assert_eq!(SigV4Error::Skewed.code(), "RequestTimeTooSkewed");
}

#[test]
fn a_presigned_url_lives_its_expiry() {
    let req = vector("s3_presigned_get");
    let life = Duration::seconds(900);
    let second = Duration::seconds(1);
    assert!(req.verify_at(SIGNED_AT + life).is_ok());
    let expired = req.verify_at(SIGNED_AT + life + second);
    assert_eq!(expired, Err(SigV4Error::Expired));
    assert_eq!(SigV4Error::Expired.code(), "AccessDenied");
    // Not usable long before it was signed either.
    assert!(req.verify_at(SIGNED_AT - Duration::minutes(5)).is_ok());
    assert_eq!(
        req.verify_at(SIGNED_AT - Duration::minutes(5) - second),
        Err(SigV4Error::Skewed)
    );
}

#[test]
fn presigned_expiry_is_at_most_seven_days() {
    let mut req = vector("s3_presigned_get");
    for (expires, ok) in [
        ("604800", true),
        ("604801", false),
        ("0", false),
        ("", false),
        ("1e3", false),
    ] {
        let q = req
            .query
            .clone()
            .unwrap()
            .replace("X-Amz-Expires=900", &format!("X-Amz-Expires={expires}"));
        let mut r = req.clone();
        r.query = Some(q);
        let got = r.verify();
        if ok {
            // Well formed, so it reaches the signature, which covers the expiry.
            assert_eq!(got, Err(SigV4Error::Mismatch), "{expires}");
        } else {
            assert!(
                matches!(got, Err(SigV4Error::Incomplete(_))),
                "{expires}: {got:?}"
            );
        }
    }
    req.query = req.query.map(|q| format!("{q}&X-Amz-Expires=900"));
    assert!(matches!(req.verify(), Err(SigV4Error::Incomplete(_))));
}

#[test]
fn host_must_be_signed() {
    let mut req = vector("lambda_list_functions");
    let auth = req
        .header("authorization")
        .replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date");
    req.set("authorization", &auth);
    assert_eq!(
        req.verify(),
        Err(SigV4Error::Incomplete("host must be a signed header"))
    );
}

#[test]
fn host_may_come_from_the_authority() {
    let mut req = vector("logs_json_post");
    req.headers.remove("host");
    assert_eq!(req.verify(), Err(SigV4Error::Mismatch));
    req.authority = Some("gw.example.com".into());
    assert!(req.verify().is_ok());
}

#[test]
fn every_x_amz_header_must_be_signed() {
    let mut req = vector("s3_put_body");
    req.set("x-amz-copy-source", "/other-bucket/secret.txt");
    assert_eq!(
        req.verify(),
        Err(SigV4Error::Unsigned("x-amz-copy-source".into()))
    );
    let mut presigned = vector("s3_presigned_get");
    presigned.set("x-amz-server-side-encryption", "aws:kms");
    assert!(matches!(presigned.verify(), Err(SigV4Error::Unsigned(_))));
}

#[test]
fn oversize_inputs_are_refused() {
    let mut req = vector("s3_put_body");
    req.set("x-amz-meta-owner", &"a".repeat(MAX_HEADER_VALUE_BYTES + 1));
    assert!(matches!(req.verify(), Err(SigV4Error::TooLarge { .. })));

    let mut req = vector("s3_put_body");
    let auth = format!(
        "{}{}",
        req.header("authorization"),
        " ".repeat(MAX_AUTHORIZATION_BYTES)
    );
    req.set("authorization", &auth);
    assert!(matches!(req.verify(), Err(SigV4Error::TooLarge { .. })));

    let mut req = vector("s3_get_unicode_key");
    req.query = Some("a=b&".repeat(MAX_QUERY_PARAMS + 1));
    assert!(matches!(req.verify(), Err(SigV4Error::TooLarge { .. })));
    req.query = Some("a".repeat(MAX_QUERY_BYTES + 1));
    assert!(matches!(req.verify(), Err(SigV4Error::TooLarge { .. })));

    let mut req = vector("s3_get_unicode_key");
    req.path = format!("/{}", "a".repeat(MAX_PATH_BYTES));
    assert!(matches!(req.verify(), Err(SigV4Error::TooLarge { .. })));

    let mut req = vector("lambda_list_functions");
    let many: Vec<String> = (0..=MAX_SIGNED_HEADERS)
        .map(|i| format!("h{i:03}"))
        .collect();
    let auth = req
        .header("authorization")
        .replace("host;x-amz-date", &many.join(";"));
    req.set("authorization", &auth);
    assert!(matches!(req.verify(), Err(SigV4Error::TooLarge { .. })));
}

#[test]
fn an_unknown_key_is_named_per_service() {
    for (name, code) in [
        ("s3_put_body", "InvalidAccessKeyId"),
        ("dynamodb_json_post", "InvalidClientTokenId"),
    ] {
        let req = vector(name);
        let r = Request {
            method: &req.method,
            path: &req.path,
            query: req.query.as_deref(),
            headers: &req.headers,
            authority: None,
        };
        let err = verify(&r, &req.body, SIGNED_AT, |_| None).unwrap_err();
        assert_eq!(err.code(), code);
        assert_eq!(err.status(), http::StatusCode::FORBIDDEN);
    }
}

#[test]
fn payload_modes_are_checked_per_service() {
    let mut req = vector("dynamodb_json_post");
    req.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    assert!(matches!(
        req.verify(),
        Err(SigV4Error::PayloadNotAllowed(_))
    ));
    req.set("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    assert!(matches!(
        req.verify(),
        Err(SigV4Error::PayloadNotAllowed(_))
    ));
    let mut s3 = vector("s3_put_body");
    s3.set(
        "x-amz-content-sha256",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    );
    assert!(matches!(s3.verify(), Err(SigV4Error::PayloadNotAllowed(_))));
    s3.headers.remove("x-amz-content-sha256");
    assert!(matches!(s3.verify(), Err(SigV4Error::PayloadNotAllowed(_))));
}

#[test]
fn malformed_signatures_are_incomplete() {
    let base = vector("logs_json_post");
    let auth = base.header("authorization");
    let cases = [
        auth.replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA1 "),
        auth.replace("aws4_request", "aws5_request"),
        auth.replace("/20261206/", "/20261205/"),
        auth.replace("/20261206/", "/20261399/"),
        auth.replace("AKIAIOSFODNN7EXAMPLE", "AKID"),
        auth.replace("/us-west-2/", "/US-WEST-2/"),
        auth.replace("content-type;host", "host;content-type"),
        auth.replace("host;x-amz-date", "host;host;x-amz-date"),
        auth.replace("SignedHeaders=", "SignedHeaders=;"),
        auth.replace(", Signature=", ", Signature=00, Signature="),
        format!("{auth}0"),
        format!("{auth}, Extra=1"),
        auth.replace("Credential=", "Credentials="),
    ];
    for case in cases {
        let mut req = base.clone();
        req.set("authorization", &case);
        let got = req.verify();
        assert!(
            matches!(got, Err(SigV4Error::Incomplete(_))),
            "{case}: {got:?}"
        );
        assert_eq!(got.unwrap_err().code(), "IncompleteSignature");
    }
}

#[test]
fn no_signature_and_two_signatures() {
    let mut req = vector("logs_json_post");
    req.headers.remove("authorization");
    assert_eq!(req.verify(), Err(SigV4Error::Missing));
    let mut both = vector("s3_presigned_get");
    both.set("authorization", "AWS4-HMAC-SHA256 Credential=x");
    assert!(matches!(both.verify(), Err(SigV4Error::Incomplete(_))));
}

#[test]
fn the_date_header_stands_in_for_x_amz_date() {
    let mut req = vector("lambda_list_functions");
    req.headers.remove("x-amz-date");
    // Unsigned as `date`: refused before any hashing.
    req.set("date", "Sun, 06 Dec 2026 12:00:00 GMT");
    assert!(matches!(req.verify(), Err(SigV4Error::Incomplete(_))));
    let auth = req
        .header("authorization")
        .replace("host;x-amz-date", "date;host");
    req.set("authorization", &auth);
    // Read, in the skew window, then checked: signed by botocore as x-amz-date, so no match.
    assert_eq!(req.verify(), Err(SigV4Error::Mismatch));
    assert_eq!(
        req.verify_at(SIGNED_AT + Duration::minutes(6)),
        Err(SigV4Error::Skewed)
    );
    req.set("date", "Sunday, 06-Dec-26 12:00:00 GMT");
    assert!(matches!(req.verify(), Err(SigV4Error::Incomplete(_))));
}

#[test]
fn paths_of_other_services_must_be_normalized() {
    for path in ["/aws/../x", "/aws/./", "/aws//x", "aws/"] {
        let mut req = vector("lambda_list_functions");
        req.path = path.into();
        assert!(
            matches!(req.verify(), Err(SigV4Error::Malformed(_))),
            "{path}"
        );
    }
    // S3 signs its keys as sent: a `..` in a key is only a mismatch here.
    let mut s3 = vector("s3_put_body");
    s3.path = "/aws/my-bucket/../q4.csv".into();
    assert_eq!(s3.verify(), Err(SigV4Error::Mismatch));
}

proptest! {
    #[test]
    fn arbitrary_signatures_never_panic(
        auth in "AWS4-HMAC-SHA256 [ -~]{0,200}",
        query in proptest::option::of("[ -~]{0,200}"),
        path in "/[ -~]{0,100}",
        date in "[0-9TZ]{0,20}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&auth) {
            headers.insert("authorization", v);
        }
        if let Ok(v) = HeaderValue::from_str(&date) {
            headers.insert("x-amz-date", v);
        }
        headers.insert("host", HeaderValue::from_static("gw.example.com"));
        let req = Request {
            method: "GET",
            path: &path,
            query: query.as_deref(),
            headers: &headers,
            authority: None,
        };
        let got = verify(&req, &body, SIGNED_AT, |k| secret_of(k.access_key_id));
        prop_assert!(got.is_err());
    }
}
