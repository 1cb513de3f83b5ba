//! The proxy's one error type, and its wire shape: the error body AWS itself would send for the
//! protocol of the request, so the CLI and SDKs print the code and message as they do AWS's own
//! (JSON protocols `__type`, Query protocols `ErrorResponse`, S3 `Error`, REST-JSON
//! `x-amzn-ErrorType`). Every refusal of the proxy goes through [`Fault`]; nothing else builds an
//! error answer.

use axum::response::Response;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use super::decide::Denial;
use super::sigv4::SigV4Error;
use crate::aws_access::refusal::Refusal;

/// The protocol family of a request, which decides how an error is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `X-Amz-Target` with a JSON body (DynamoDB, Logs, Secrets Manager, SSM...).
    Json,
    /// `Action=` in a form or the query (STS, IAM, SQS, EC2...).
    Query,
    /// S3's REST-XML.
    S3,
    /// REST with JSON bodies (Lambda, API Gateway...).
    RestJson,
}

impl Protocol {
    /// The protocol of a request to `service` with these headers and query.
    pub fn of(service: &str, headers: &HeaderMap, query: Option<&str>) -> Self {
        if service == "s3" {
            return Protocol::S3;
        }
        if headers.contains_key("x-amz-target") {
            return Protocol::Json;
        }
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let action_in_query = query.is_some_and(|q| q.split('&').any(|p| p.starts_with("Action=")));
        if form || action_in_query {
            Protocol::Query
        } else {
            Protocol::RestJson
        }
    }
}

/// Why the proxy answers instead of AWS.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// The client's signature does not hold.
    #[error(transparent)]
    Signature(#[from] SigV4Error),
    /// The credential's holder may not reach the project now.
    #[error(transparent)]
    Membership(#[from] Refusal),
    /// The call is refused.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// Over the class's limit.
    #[error("too many {class} calls: at most {limit} in {window_seconds} seconds; slow down")]
    Throttled {
        /// `read`, `list` or `write`.
        class: &'static str,
        /// The limit.
        limit: u32,
        /// The window.
        window_seconds: u32,
    },
    /// Held for approval, and not decided in time.
    #[error("this call needs a person's approval ({reasons}); it was not decided in time. Approve it at {url} and run the identical call again")]
    ApprovalPending {
        /// The approval page.
        url: String,
        /// Why it is held.
        reasons: String,
    },
    /// An approver said no.
    #[error("{approver} denied this call")]
    ApprovalDenied {
        /// Who.
        approver: String,
    },
    /// The body is over `max_request_bytes`.
    #[error("the request body is over the gateway's limit of {0} bytes")]
    TooLarge(u64),
    /// The body did not arrive in time, or broke off.
    #[error("the request body did not arrive whole")]
    BodyIncomplete,
    /// The answer cannot be masked and policy says not to pass it unmasked.
    #[error("the answer cannot be passed: {0}")]
    Unmaskable(String),
    /// The proxy is not configured.
    #[error("the AWS proxy is not configured on this gateway")]
    NotConfigured,
    /// A store or STS failure on the gateway's side.
    #[error("the gateway cannot serve this call now; try again shortly")]
    Unavailable,
    /// STS refused the gateway's credential for the project.
    #[error("AWS refused the gateway's credential for project {project}: {detail}")]
    Credential {
        /// The project.
        project: String,
        /// What went wrong (no secret).
        detail: String,
    },
    /// AWS did not answer.
    #[error("AWS did not answer in time or could not be reached")]
    Upstream,
}

impl Fault {
    /// The status and the code for `protocol`.
    pub fn status_code(&self, protocol: Protocol) -> (StatusCode, &'static str) {
        let denied = match protocol {
            Protocol::Json | Protocol::RestJson => "AccessDeniedException",
            Protocol::Query | Protocol::S3 => "AccessDenied",
        };
        match self {
            Fault::Signature(e) => (e.status(), e.code()),
            Fault::Membership(_) | Fault::Denied(_) | Fault::ApprovalDenied { .. } => {
                (StatusCode::FORBIDDEN, denied)
            }
            Fault::ApprovalPending { .. } => (StatusCode::FORBIDDEN, "ApprovalPending"),
            Fault::Throttled { .. } => match protocol {
                Protocol::S3 => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
                Protocol::Query => (StatusCode::BAD_REQUEST, "Throttling"),
                _ => (StatusCode::BAD_REQUEST, "ThrottlingException"),
            },
            Fault::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge"),
            Fault::BodyIncomplete => (StatusCode::BAD_REQUEST, "IncompleteBody"),
            Fault::Unmaskable(_) => (StatusCode::FORBIDDEN, denied),
            Fault::NotConfigured => (StatusCode::NOT_FOUND, "NotConfigured"),
            Fault::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            Fault::Credential { .. } => (StatusCode::BAD_GATEWAY, "ServiceUnavailable"),
            Fault::Upstream => (StatusCode::GATEWAY_TIMEOUT, "ServiceUnavailable"),
        }
    }

    /// The answer for `protocol`, with `request_id`.
    pub fn respond(&self, protocol: Protocol, request_id: &str) -> Response {
        let (status, code) = self.status_code(protocol);
        let message = self.to_string();
        let (content_type, body) = match protocol {
            Protocol::Json => (
                "application/x-amz-json-1.1",
                serde_json::json!({"__type": code, "message": message}).to_string(),
            ),
            Protocol::RestJson => (
                "application/json",
                serde_json::json!({"message": message}).to_string(),
            ),
            Protocol::Query => (
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                    xml_escape(&message),
                    xml_escape(request_id)
                ),
            ),
            Protocol::S3 => (
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>",
                    xml_escape(&message),
                    xml_escape(request_id)
                ),
            ),
        };
        let mut res = Response::new(axum::body::Body::from(body));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-amzn-requestid", v.clone());
            if protocol == Protocol::S3 {
                h.insert("x-amz-request-id", v);
            }
        }
        if protocol == Protocol::RestJson {
            h.insert("x-amzn-errortype", HeaderValue::from_static(code));
        }
        res
    }
}

/// Text made safe inside an XML element.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(res: Response) -> String {
        let b = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn the_protocol_comes_from_the_request() {
        let mut h = HeaderMap::new();
        assert_eq!(Protocol::of("s3", &h, None), Protocol::S3);
        assert_eq!(Protocol::of("lambda", &h, None), Protocol::RestJson);
        assert_eq!(
            Protocol::of("sts", &h, Some("Action=GetCallerIdentity")),
            Protocol::Query
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        assert_eq!(Protocol::of("iam", &h, None), Protocol::Query);
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("Logs.FilterLogEvents"),
        );
        assert_eq!(Protocol::of("logs", &h, None), Protocol::Json);
    }

    #[tokio::test]
    async fn each_protocol_gets_the_error_shape_it_reads() {
        let denied = Fault::Denied(Denial::NotAllowed {
            project: "payments".into(),
            action: "ec2:RunInstances".into(),
        });
        let res = denied.respond(Protocol::Json, "req-1");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let v: serde_json::Value = serde_json::from_str(&body(res).await).unwrap();
        assert_eq!(v["__type"], "AccessDeniedException");
        assert_eq!(
            v["message"],
            "ec2:RunInstances is not allowed on project payments"
        );

        let res = denied.respond(Protocol::Query, "req-<2>");
        let xml = body(res).await;
        assert!(xml.contains("<Code>AccessDenied</Code>"), "{xml}");
        assert!(
            xml.contains("<RequestId>req-&lt;2&gt;</RequestId>"),
            "{xml}"
        );

        let slow = Fault::Throttled {
            class: "read",
            limit: 100,
            window_seconds: 300,
        };
        let res = slow.respond(Protocol::S3, "r");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body(res).await.contains("<Code>SlowDown</Code>"));

        let res = denied.respond(Protocol::RestJson, "r");
        assert_eq!(res.headers()["x-amzn-errortype"], "AccessDeniedException");

        let pending = Fault::ApprovalPending {
            url: "https://gw.example.com/aws/approvals/cap_1".into(),
            reasons: "it writes".into(),
        };
        let xml = body(pending.respond(Protocol::S3, "r")).await;
        assert!(xml.contains("<Code>ApprovalPending</Code>"));
        assert!(xml.contains("https://gw.example.com/aws/approvals/cap_1"));
    }
}
