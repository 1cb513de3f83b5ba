//! A call's parameters, as a person and a record may see them: the path, the query and the body's
//! fields (JSON or form), each secret masked as answers are; other bodies (an object's bytes) only
//! by size. Also whether a parameter names resources with a wildcard, and the fingerprint that
//! makes a retried call "the identical call" for an approval. Pure.

use aws_lc_rs::digest;
use serde_json::{json, Map, Value};

use super::mask::{self, Counts, Rules};
use super::operation::params as split_params;

/// The largest body whose fields are shown; past it only its size is.
pub const MAX_SHOWN_BODY: usize = 64 * 1024;

/// Parameters names that hold a fresh random value on every attempt (SDKs fill them in), left
/// out of the fingerprint so a retry is the identical call.
const IDEMPOTENCY_KEYS: &[&str] = &["ClientToken", "ClientRequestToken", "IdempotencyToken"];

/// The parts of a request parameters come from (the path without the gateway's prefix).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a str,
    /// The path, still percent-encoded.
    pub path: &'a str,
    /// The query, without `?`.
    pub query: Option<&'a str>,
    /// The body's content type.
    pub content_type: Option<&'a str>,
    /// The body (decoded, when it came chunked).
    pub body: &'a [u8],
    /// The request's headers (the fingerprint covers those that change what the call does).
    pub headers: &'a http::HeaderMap,
}

/// Whether a header goes into the fingerprint: every `x-amz-*` header (the operation of a JSON
/// service, an object's ACL, a copy's source, a KMS key) but those each attempt signs or sends
/// anew or that follow from the body, which is hashed itself. Other headers (the content type
/// an SDK guesses, the framing of a chunked upload) may differ between two clients making the
/// identical call.
fn is_meaningful_header(name: &str) -> bool {
    const PER_ATTEMPT: &[&str] = &[
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
        "x-amz-user-agent",
        "x-amz-decoded-content-length",
        "x-amz-trailer",
    ];
    name.strip_prefix("x-amz-").is_some_and(|rest| {
        !PER_ATTEMPT.contains(&name) && !rest.starts_with("sdk-") && !rest.starts_with("checksum-")
    })
}

/// What [`read`] finds.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// `{"method", "path", "query", "body"}`, masked.
    pub shown: Value,
    /// Whether a value in the path, query or body holds a `*`.
    pub wildcard: bool,
    /// What was masked.
    pub masked: Counts,
}

/// Whether a query parameter is a presigned URL's own signature (left out of what is shown and
/// hashed). Other `x-amz-*` parameters, such as headers a presigned URL carries in its query
/// (`x-amz-acl`), change what the call does and stay in.
pub(super) fn is_signature_param(name: &str) -> bool {
    const SIGNATURE: [&str; 7] = [
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-signedheaders",
        "x-amz-signature",
        "x-amz-security-token",
    ];
    SIGNATURE.iter().any(|s| s.eq_ignore_ascii_case(name))
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        let t = t.split(';').next().unwrap_or_default().trim();
        // `application/x-amz-json-1.1` too.
        t.contains("json")
    })
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
}

/// Reads the parameters of `req`.
pub fn read(req: &Request<'_>, rules: &Rules) -> Params {
    let mut counts = Counts::default();
    let mut wildcard = false;
    let path = percent_encoding::percent_decode_str(req.path)
        .decode_utf8_lossy()
        .into_owned();
    wildcard |= path.contains('*');
    let mut query = Map::new();
    for (k, v) in split_params(req.query.unwrap_or_default()).unwrap_or_default() {
        if is_signature_param(&k) {
            continue;
        }
        wildcard |= v.contains('*');
        query.insert(
            k.clone(),
            Value::String(mask::field(&k, &v, rules, &mut counts)),
        );
    }
    let fields = is_form(req.content_type) || is_json(req.content_type);
    let body = if req.body.is_empty() {
        Value::Null
    } else if req.body.len() > MAX_SHOWN_BODY {
        // Too large to show, not too large to name everything: padding must not hide a `*`.
        wildcard |= fields && raw_wildcard(req.body);
        json!({"bytes": req.body.len()})
    } else if is_form(req.content_type) {
        let mut form = Map::new();
        for (k, v) in split_params(&String::from_utf8_lossy(req.body)).unwrap_or_default() {
            wildcard |= v.contains('*');
            form.insert(
                k.clone(),
                Value::String(mask::field(&k, &v, rules, &mut counts)),
            );
        }
        Value::Object(form)
    } else if is_json(req.content_type) {
        match mask::mask(req.body, req.content_type, rules) {
            Ok(m) => {
                counts = add(counts, &m.counts);
                match serde_json::from_slice::<Value>(&m.body) {
                    Ok(v) => {
                        wildcard |= holds_wildcard(&v, 0);
                        v
                    }
                    Err(_) => {
                        wildcard |= raw_wildcard(req.body);
                        json!({"bytes": req.body.len()})
                    }
                }
            }
            Err(_) => {
                wildcard |= raw_wildcard(req.body);
                json!({"bytes": req.body.len()})
            }
        }
    } else {
        json!({"bytes": req.body.len()})
    };
    let mut shown = json!({"method": req.method, "path": path, "query": query, "body": body});
    // The headers that are part of the call (an ACL, a copy's source): what the fingerprint
    // covers, an approver sees. Shown only when there are any.
    let mut headers = Map::new();
    for (name, value) in req.headers {
        if is_meaningful_header(name.as_str()) {
            let v = String::from_utf8_lossy(value.as_bytes());
            let v = mask::field(name.as_str(), &v, rules, &mut counts);
            headers.insert(name.as_str().to_owned(), Value::String(v));
        }
    }
    if let (false, Some(o)) = (headers.is_empty(), shown.as_object_mut()) {
        o.insert("headers".into(), Value::Object(headers));
    }
    Params {
        shown,
        wildcard,
        masked: counts,
    }
}

fn add(mut into: Counts, more: &Counts) -> Counts {
    for (kind, n) in more.iter() {
        for _ in 0..n {
            into.add(kind);
        }
    }
    into
}

/// Whether the bytes of a JSON or form body hold a `*`, written as is or escaped (`\u002a` in
/// JSON, `%2A` in a form), anywhere: for a body whose fields are not read one by one. A `*` in a
/// name or in text counts too, so this errs towards asking a person.
fn raw_wildcard(body: &[u8]) -> bool {
    body.contains(&b'*')
        || body.windows(3).any(|w| w.eq_ignore_ascii_case(b"%2a"))
        || body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u002a"))
}

/// Whether any string in `v` holds a `*` (bounded by the masker's nesting limit).
fn holds_wildcard(v: &Value, depth: usize) -> bool {
    if depth > mask::MAX_DEPTH {
        return false;
    }
    match v {
        Value::String(s) => s.contains('*'),
        Value::Array(a) => a.iter().any(|x| holds_wildcard(x, depth + 1)),
        Value::Object(o) => o.values().any(|x| holds_wildcard(x, depth + 1)),
        _ => false,
    }
}

/// Who makes a call, for its fingerprint.
#[derive(Debug, Clone, Copy)]
pub struct Whose<'a> {
    /// The developer's subject.
    pub user: &'a str,
    /// The project.
    pub project: &'a str,
    /// The region.
    pub region: &'a str,
    /// The signing name of the service.
    pub service: &'a str,
}

/// The fingerprint of a call: hex SHA-256 over who makes it, where, and what it asks (method,
/// path, the headers that change what it does, the query without signature parameters, sorted,
/// and the body without SDK-filled idempotency tokens). Signatures and dates differ between
/// attempts; this does not.
pub fn fingerprint(whose: &Whose<'_>, req: &Request<'_>) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [
        "aws-call v1",
        whose.user,
        whose.project,
        whose.region,
        whose.service,
        req.method,
        req.path,
    ] {
        ctx.update(part.as_bytes());
        ctx.update(b"\0");
    }
    // Header names come lowercase; each name's values in the order sent.
    let mut names: Vec<&str> = req
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| is_meaningful_header(n))
        .collect();
    names.sort_unstable();
    for name in names {
        for value in req.headers.get_all(name) {
            ctx.update(name.as_bytes());
            ctx.update(b":");
            ctx.update(value.as_bytes());
            ctx.update(b"\n");
        }
    }
    ctx.update(b"\0");
    let mut query: Vec<(String, String)> = split_params(req.query.unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !is_signature_param(k))
        .collect();
    query.sort();
    for (k, v) in &query {
        ctx.update(k.as_bytes());
        ctx.update(b"=");
        ctx.update(v.as_bytes());
        ctx.update(b"&");
    }
    ctx.update(b"\0");
    let json = is_json(req.content_type)
        .then(|| serde_json::from_slice::<Value>(req.body).ok())
        .flatten();
    match json {
        Some(Value::Object(mut o)) => {
            for k in IDEMPOTENCY_KEYS {
                o.remove(*k);
            }
            // serde_json's map is ordered by key: the same fields hash the same.
            ctx.update(Value::Object(o).to_string().as_bytes());
        }
        _ if is_form(req.content_type) => {
            let mut form: Vec<(String, String)> = split_params(&String::from_utf8_lossy(req.body))
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| !IDEMPOTENCY_KEYS.contains(&k.as_str()))
                .collect();
            form.sort();
            for (k, v) in &form {
                ctx.update(k.as_bytes());
                ctx.update(b"=");
                ctx.update(v.as_bytes());
                ctx.update(b"&");
            }
        }
        _ => ctx.update(digest::digest(&digest::SHA256, req.body).as_ref()),
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_proxy::mask::Kind;

    static NO_HEADERS: std::sync::LazyLock<http::HeaderMap> =
        std::sync::LazyLock::new(http::HeaderMap::new);

    fn req<'a>(query: Option<&'a str>, ct: Option<&'a str>, body: &'a [u8]) -> Request<'a> {
        Request {
            method: "POST",
            path: "/",
            query,
            content_type: ct,
            body,
            headers: &NO_HEADERS,
        }
    }

    #[test]
    fn a_wildcard_is_found_in_a_body_too_large_to_show_or_unreadable() {
        let rules = Rules::default();
        let json_ct = Some("application/x-amz-json-1.1");
        let form_ct = Some("application/x-www-form-urlencoded");
        let padded = |tail: &str| {
            let mut b = br#"{"PolicyName":"p","PolicyDocument":"#.to_vec();
            b.extend(std::iter::repeat_n(b' ', MAX_SHOWN_BODY));
            b.extend_from_slice(tail.as_bytes());
            b
        };
        let star = padded(r#""{\"Resource\":\"*\"}"}"#);
        assert!(read(&req(None, json_ct, &star), &rules).wildcard);
        let escaped = padded(r#""{\"Resource\":\"\u002A\"}"}"#);
        assert!(read(&req(None, json_ct, &escaped), &rules).wildcard);
        let plain = padded(r#""{\"Resource\":\"arn:aws:s3:::b\"}"}"#);
        assert!(!read(&req(None, json_ct, &plain), &rules).wildcard);
        let mut form = b"Action=PutRolePolicy&PolicyDocument=".to_vec();
        form.extend(std::iter::repeat_n(b'a', MAX_SHOWN_BODY));
        form.extend_from_slice(b"%2a");
        assert!(read(&req(None, form_ct, &form), &rules).wildcard);
        // JSON the reader cannot parse is searched as bytes.
        assert!(read(&req(None, json_ct, br#"{"Resource":"*""#), &rules).wildcard);
        // An object's bytes are not parameters.
        let object = vec![b'*'; MAX_SHOWN_BODY + 1];
        assert!(
            !read(
                &req(None, Some("application/octet-stream"), &object),
                &rules
            )
            .wildcard
        );
    }

    #[test]
    fn secrets_in_any_parameter_are_masked() {
        let rules = Rules::default();
        let json = br#"{"SecretId":"db","SecretString":"hunter2","Tags":[{"Key":"k","Value":"AKIAIOSFODNN7EXAMPLE"}]}"#;
        let p = read(&req(None, Some("application/x-amz-json-1.1"), json), &rules);
        let shown = p.shown.to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("AKIAIOSFODNN7EXAMPLE"),
            "{shown}"
        );
        assert_eq!(p.shown["body"]["SecretId"], "db");
        assert_eq!(p.masked.get(Kind::AwsAccessKeyId), 1);

        let form = b"Action=CreateUser&Password=hunter2&UserName=ana";
        let p = read(
            &req(
                None,
                Some("application/x-www-form-urlencoded; charset=utf-8"),
                form,
            ),
            &rules,
        );
        assert_eq!(p.shown["body"]["Password"], "[MASKED:password]");
        assert_eq!(p.shown["body"]["UserName"], "ana");

        // A presigned URL's own parameters are never shown.
        let p = read(
            &req(
                Some("X-Amz-Signature=abc&X-Amz-Security-Token=tok&prefix=logs%2F"),
                None,
                b"",
            ),
            &rules,
        );
        assert_eq!(p.shown["query"], json!({"prefix": "logs/"}));
        // An object's bytes are only counted.
        let p = read(
            &req(None, Some("application/octet-stream"), b"password=hunter2"),
            &rules,
        );
        assert_eq!(p.shown["body"], json!({"bytes": 16}));
    }

    #[test]
    fn a_parameter_name_cut_inside_a_character_is_read_like_any_other() {
        // `abcdeéx`: its sixth byte is inside `é`.
        assert!(!is_signature_param("abcdeéx"));
        assert!(is_signature_param("X-Amz-Signature"));
        let p = read(&req(Some("abcde%C3%A9x=1"), None, b""), &Rules::default());
        assert_eq!(p.shown["query"]["abcdeéx"], "1");
    }

    #[test]
    fn wildcards_are_seen_anywhere() {
        let rules = Rules::default();
        let body = br#"{"Names":["a","logs-*"]}"#;
        assert!(read(&req(None, Some("application/x-amz-json-1.1"), body), &rules).wildcard);
        assert!(read(&req(Some("prefix=*"), None, b""), &rules).wildcard);
        assert!(!read(&req(Some("prefix=a"), None, b""), &rules).wildcard);
    }

    #[test]
    fn a_retry_is_the_identical_call_and_anything_else_is_not() {
        let who = Whose {
            user: "u",
            project: "p",
            region: "eu-west-1",
            service: "ec2",
        };
        let ct = Some("application/x-www-form-urlencoded");
        let a = fingerprint(
            &who,
            &req(
                Some("X-Amz-Date=1&b=2&a=1"),
                ct,
                b"Action=RunInstances&ClientToken=x1&ImageId=ami-1",
            ),
        );
        let b = fingerprint(
            &who,
            &req(
                Some("a=1&b=2&X-Amz-Date=2"),
                ct,
                b"ImageId=ami-1&Action=RunInstances&ClientToken=x2",
            ),
        );
        assert_eq!(a, b);
        let other = fingerprint(
            &who,
            &req(Some("a=1&b=2"), ct, b"Action=RunInstances&ImageId=ami-2"),
        );
        assert_ne!(a, other);
        let json_ct = Some("application/x-amz-json-1.1");
        let j1 = fingerprint(
            &who,
            &req(None, json_ct, br#"{"Name":"n","ClientRequestToken":"1"}"#),
        );
        let j2 = fingerprint(
            &who,
            &req(None, json_ct, br#"{"ClientRequestToken":"2","Name":"n"}"#),
        );
        assert_eq!(j1, j2);
        let someone_else = Whose { user: "v", ..who };
        assert_ne!(
            fingerprint(&someone_else, &req(None, json_ct, br#"{"Name":"n"}"#)),
            fingerprint(&who, &req(None, json_ct, br#"{"Name":"n"}"#))
        );
    }

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn headers_that_change_the_call_change_its_fingerprint() {
        let who = Whose {
            user: "u",
            project: "p",
            region: "eu-west-1",
            service: "s3",
        };
        let put = |h: &http::HeaderMap, query: Option<&str>| {
            fingerprint(
                &who,
                &Request {
                    method: "PUT",
                    path: "/b/k",
                    query,
                    content_type: None,
                    body: b"data",
                    headers: h,
                },
            )
        };
        let plain = put(&headers(&[]), None);
        // What each attempt signs or sends anew does not count.
        let retry = headers(&[
            ("x-amz-date", "20261207T000000Z"),
            ("x-amz-security-token", "tok"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-amz-sdk-invocation-id", "1"),
            ("x-amz-checksum-crc32", "abc"),
            ("authorization", "AWS4-HMAC-SHA256 ..."),
            ("user-agent", "boto3"),
            ("content-encoding", "aws-chunked"),
            ("content-type", "text/csv"),
        ]);
        assert_eq!(put(&retry, Some("X-Amz-Date=1&X-Amz-Signature=s")), plain);
        // An ACL, a copy's source, a key or the operation of a JSON service do, in a header or
        // in a presigned URL's query.
        for h in [
            ("x-amz-acl", "public-read"),
            ("x-amz-copy-source", "/other/secret"),
            ("x-amz-server-side-encryption-aws-kms-key-id", "k"),
            ("x-amz-target", "secretsmanager.RotateSecret"),
        ] {
            assert_ne!(put(&headers(&[h]), None), plain, "{h:?}");
        }
        assert_ne!(put(&headers(&[]), Some("x-amz-acl=public-read")), plain);
        // ...and an approver sees them.
        let h = headers(&[("x-amz-acl", "public-read"), ("x-amz-date", "1")]);
        let shown = read(
            &Request {
                method: "PUT",
                path: "/b/k",
                query: None,
                content_type: None,
                body: b"data",
                headers: &h,
            },
            &Rules::default(),
        )
        .shown;
        assert_eq!(shown["headers"], json!({"x-amz-acl": "public-read"}));
        assert!(read(&req(None, None, b""), &Rules::default())
            .shown
            .get("headers")
            .is_none());
        assert_ne!(
            put(
                &headers(&[("x-amz-target", "secretsmanager.RotateSecret")]),
                None
            ),
            put(
                &headers(&[("x-amz-target", "secretsmanager.CancelRotateSecret")]),
                None
            )
        );
    }
}
