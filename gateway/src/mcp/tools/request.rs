//! The AWS requests tools make, built by hand, unsigned, in the three protocols the tools speak:
//! JSON (`X-Amz-Target`, `application/x-amz-json-1.x`: CloudWatch Logs, the tagging API and the
//! generic call's JSON services), Query (`Action` and `Version` in a form: CloudWatch metrics and
//! the generic call's Query services) and S3's REST, path-style (`/bucket/key`), as the proxy
//! sends every S3 call. Pure; the shared stages sign and send them.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// What AWS leaves unencoded in a URI: letters, digits and `-._~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A value encoded as AWS encodes query and form values.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// An S3 key encoded as a path: each segment encoded, the slashes kept.
pub fn encode_key(key: &str) -> String {
    key.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// `name=value&…`, each encoded.
pub fn form(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One AWS call a tool makes.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsRequest {
    /// The method.
    pub method: Method,
    /// The service's signing name (`logs`, `monitoring`, `s3`, `tagging`).
    pub service: String,
    /// The path, encoded; S3 path-style.
    pub path: String,
    /// The query, encoded, without `?`.
    pub query: Option<String>,
    /// The headers to sign and send.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl AwsRequest {
    /// A JSON-protocol call: `X-Amz-Target: {target}`, a JSON body, content type
    /// `application/x-amz-json-{version}`.
    pub fn json(service: &str, target: &str, version: &str, body: &Value) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(target)
                .map_err(|_| format!("{target:?} is not a valid target"))?,
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(&format!("application/x-amz-json-{version}"))
                .map_err(|_| format!("{version:?} is not a JSON protocol version"))?,
        );
        Ok(Self {
            method: Method::POST,
            service: service.to_owned(),
            path: "/".into(),
            query: None,
            headers,
            body: Bytes::from(body.to_string()),
        })
    }

    /// A Query-protocol call: `Action`, `Version` and `params` in a form body.
    pub fn query(service: &str, action: &str, version: &str, params: &[(String, String)]) -> Self {
        let mut pairs = vec![
            ("Action".to_owned(), action.to_owned()),
            ("Version".to_owned(), version.to_owned()),
        ];
        pairs.extend(params.iter().cloned());
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        Self {
            method: Method::POST,
            service: service.to_owned(),
            path: "/".into(),
            query: None,
            headers,
            body: Bytes::from(form(&pairs)),
        }
    }

    /// An S3 call on `bucket` (and `key`), path-style, with `query` pairs.
    pub fn s3(method: Method, bucket: &str, key: Option<&str>, query: &[(String, String)]) -> Self {
        let path = match key {
            Some(k) => format!("/{}/{}", encode(bucket), encode_key(k)),
            None => format!("/{}", encode(bucket)),
        };
        Self {
            method,
            service: "s3".into(),
            path,
            query: (!query.is_empty()).then(|| form(query)),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }
}

/// An AWS error answer as a sentence: its code and message (the answer is already masked),
/// from a JSON (`__type`, `message`) or XML (`<Code>`, `<Message>`) body.
pub fn aws_error(status: u16, body: &str) -> String {
    let (code, message) = match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            let code = v
                .get("__type")
                .or_else(|| v.get("code"))
                .or_else(|| v.get("Code"))
                .and_then(Value::as_str)
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
            let message = v
                .get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            (code, message)
        }
        Err(_) => (
            super::xml::first(body, "Code"),
            super::xml::first(body, "Message"),
        ),
    };
    let code = code.unwrap_or_else(|| format!("HTTP {status}"));
    match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("AWS answered {code}: {m}"),
        None => format!("AWS answered {code}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_json_call_names_its_target_and_version() {
        let r = AwsRequest::json(
            "logs",
            "Logs_20140328.FilterLogEvents",
            "1.1",
            &json!({"logGroupName": "/app"}),
        )
        .unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/");
        assert_eq!(r.headers["x-amz-target"], "Logs_20140328.FilterLogEvents");
        assert_eq!(r.headers["content-type"], "application/x-amz-json-1.1");
        assert_eq!(r.body, Bytes::from(r#"{"logGroupName":"/app"}"#));
        assert!(AwsRequest::json("logs", "a\nb", "1.1", &json!({})).is_err());
    }

    #[test]
    fn a_query_call_is_a_form_with_action_and_version_first() {
        let r = AwsRequest::query(
            "monitoring",
            "GetMetricStatistics",
            "2010-08-01",
            &[
                ("Namespace".into(), "AWS/EC2".into()),
                ("A b".into(), "x&y=z".into()),
            ],
        );
        assert_eq!(
            r.body,
            Bytes::from(
                "Action=GetMetricStatistics&Version=2010-08-01&Namespace=AWS%2FEC2&A%20b=x%26y%3Dz"
            )
        );
        assert_eq!(
            r.headers["content-type"],
            "application/x-www-form-urlencoded; charset=utf-8"
        );
    }

    #[test]
    fn an_s3_call_is_path_style_and_encoded() {
        let r = AwsRequest::s3(Method::GET, "logs-bucket", Some("a dir/ü+k.txt"), &[]);
        assert_eq!(r.path, "/logs-bucket/a%20dir/%C3%BC%2Bk.txt");
        assert_eq!(r.query, None);
        let r = AwsRequest::s3(
            Method::GET,
            "b",
            None,
            &[
                ("list-type".into(), "2".into()),
                ("prefix".into(), "x/y".into()),
            ],
        );
        assert_eq!(r.path, "/b");
        assert_eq!(r.query.as_deref(), Some("list-type=2&prefix=x%2Fy"));
    }

    #[test]
    fn aws_errors_are_read_from_either_format() {
        assert_eq!(
            aws_error(
                400,
                r#"{"__type":"com.amazonaws.logs#ResourceNotFoundException","message":"The specified log group does not exist."}"#
            ),
            "AWS answered ResourceNotFoundException: The specified log group does not exist."
        );
        assert_eq!(
            aws_error(
                404,
                "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"
            ),
            "AWS answered NoSuchKey: The specified key does not exist."
        );
        assert_eq!(aws_error(503, ""), "AWS answered HTTP 503.");
    }
}
