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

/// Whether a query parameter is a presigned URL's own (left out of what is shown and hashed).
fn is_signature_param(name: &str) -> bool {
    name.len() > 6 && name[..6].eq_ignore_ascii_case("x-amz-")
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
    let body = if req.body.is_empty() {
        Value::Null
    } else if req.body.len() > MAX_SHOWN_BODY {
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
                    Err(_) => json!({"bytes": req.body.len()}),
                }
            }
            Err(_) => json!({"bytes": req.body.len()}),
        }
    } else {
        json!({"bytes": req.body.len()})
    };
    Params {
        shown: json!({"method": req.method, "path": path, "query": query, "body": body}),
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
/// path, the query without signature parameters, sorted, and the body without SDK-filled
/// idempotency tokens). Signatures and dates differ between attempts; this does not.
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

    fn req<'a>(query: Option<&'a str>, ct: Option<&'a str>, body: &'a [u8]) -> Request<'a> {
        Request {
            method: "POST",
            path: "/",
            query,
            content_type: ct,
            body,
        }
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
}
