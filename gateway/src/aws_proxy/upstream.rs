//! The call re-signed for AWS: the real endpoint of the service and region (or the configured
//! override), the client's headers less its own signature and hop-by-hop ones, signed with the
//! just-in-time project credential, and sent with no redirect followed.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::fault::Fault;
use crate::aws_access::credentials::Credentials;

/// Request headers never passed on: the client's own signature and session, hop-by-hop ones,
/// and the framing of a chunked body the proxy has already decoded.
const DROPPED: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "x-amz-decoded-content-length",
    "x-amz-trailer",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "expect",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    // The answer comes uncompressed, so the masker reads its text.
    "accept-encoding",
];

/// The headers of a call as sent on, before signing: the client's without [`DROPPED`] ones and
/// without the `aws-chunked` coding the proxy took off, then `extra`.
fn passed_on(client: &HeaderMap, extra: &[(String, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in client {
        if DROPPED.contains(&name.as_str()) || value.to_str().is_err() {
            continue;
        }
        if name == "content-encoding" {
            // `aws-chunked` named the framing the proxy took off; any other coding stays.
            let rest: Vec<&str> = value
                .to_str()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|c| !c.eq_ignore_ascii_case("aws-chunked") && !c.is_empty())
                .collect();
            if let Ok(v) = HeaderValue::from_str(&rest.join(", ")) {
                if !rest.is_empty() {
                    headers.append(name.clone(), v);
                }
            }
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    for (name, value) in extra {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    headers
}

/// Where calls go: AWS's endpoints, or one override for every service.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base: Option<url::Url>,
    timeout: Duration,
}

/// A call ready to sign.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// The method.
    pub method: &'a Method,
    /// The signing name of the service.
    pub service: &'a str,
    /// The region.
    pub region: &'a str,
    /// The path without the gateway's prefix, percent-encoded as the client sent it.
    pub path: &'a str,
    /// The query without a presigned URL's own parameters.
    pub query: Option<String>,
    /// The client's headers.
    pub headers: &'a HeaderMap,
    /// Headers to add (the trailers of a chunked body, as headers).
    pub extra: &'a [(String, String)],
    /// The body, whole.
    pub body: Bytes,
}

/// The host of `service`'s endpoint in `region`.
pub fn host(service: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    match service {
        // Global services, one endpoint for every region.
        "iam" | "cloudfront" | "route53" | "organizations" => format!("{service}.{suffix}"),
        "ses" => format!("email.{region}.{suffix}"),
        _ => format!("{service}.{region}.{suffix}"),
    }
}

impl Upstream {
    /// The upstream of `base` (none: AWS's own endpoints), with `timeout` to the answer's head.
    pub fn new(client: reqwest::Client, base: Option<url::Url>, timeout: Duration) -> Self {
        Self {
            client,
            base,
            timeout,
        }
    }

    /// How long AWS may take to start answering.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn url(&self, out: &Outgoing<'_>) -> String {
        let query = out
            .query
            .as_deref()
            .filter(|q| !q.is_empty())
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        match &self.base {
            Some(base) => {
                let origin = base.as_str().trim_end_matches('/');
                format!("{origin}{}{query}", out.path)
            }
            None => format!(
                "https://{}{}{query}",
                host(out.service, out.region),
                out.path
            ),
        }
    }

    /// Signs `out` with `creds` at `now` and sends it; the answer's head, or a fault.
    pub async fn send(
        &self,
        out: Outgoing<'_>,
        creds: &Credentials,
        now: SystemTime,
    ) -> Result<reqwest::Response, Fault> {
        let url = self.url(&out);
        let mut headers = passed_on(out.headers, out.extra);
        let s3 = out.service == "s3";
        let mut settings = SigningSettings::default();
        if s3 {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let identity = AwsCredentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.expose().to_owned(),
            Some(creds.session_token.expose().to_owned()),
            Some(creds.expiration.into()),
            "claude-gateway",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(out.region)
            .name(out.service)
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| Fault::Credential {
                project: String::new(),
                detail: e.to_string(),
            })?
            .into();
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            out.method.as_str(),
            url.as_str(),
            pairs.into_iter(),
            SignableBody::Bytes(&out.body),
        )
        .map_err(|e| {
            tracing::warn!("aws proxy: the call cannot be signed: {e}");
            Fault::Upstream
        })?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| {
                tracing::warn!("aws proxy: the call cannot be signed: {e}");
                Fault::Upstream
            })?
            .into_parts();
        let (signed, _) = instructions.into_parts();
        for h in signed {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(h.name().as_bytes()),
                HeaderValue::from_str(h.value()),
            ) {
                headers.insert(n, v);
            }
        }
        let req = self
            .client
            .request(out.method.clone(), url)
            .headers(headers)
            .body(out.body);
        match tokio::time::timeout(self.timeout, req.send()).await {
            Ok(Ok(res)) => Ok(res),
            Ok(Err(e)) => {
                tracing::warn!("aws proxy: AWS unreachable: {}", e.without_url());
                Err(Fault::Upstream)
            }
            Err(_) => Err(Fault::Upstream),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_by_service_and_region() {
        assert_eq!(host("s3", "eu-west-1"), "s3.eu-west-1.amazonaws.com");
        assert_eq!(
            host("logs", "cn-north-1"),
            "logs.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(host("iam", "us-east-1"), "iam.amazonaws.com");
        assert_eq!(host("ses", "eu-west-1"), "email.eu-west-1.amazonaws.com");
    }

    #[test]
    fn the_clients_signature_framing_and_coding_wishes_are_not_passed_on() {
        let mut client = HeaderMap::new();
        for (k, v) in [
            ("authorization", "AWS4-HMAC-SHA256 ..."),
            ("x-amz-date", "20261207T000000Z"),
            ("accept-encoding", "gzip"),
            ("content-encoding", "aws-chunked, gzip"),
            ("x-amz-acl", "private"),
        ] {
            client.append(k, HeaderValue::from_static(v));
        }
        let sent = passed_on(&client, &[("x-amz-target".into(), "S.Op".into())]);
        let mut names: Vec<&str> = sent.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-encoding", "x-amz-acl", "x-amz-target"]);
        // The answer comes uncompressed, for the masker; the body's own coding stays.
        assert!(sent.get("accept-encoding").is_none());
        assert_eq!(sent["content-encoding"], "gzip");
    }

    #[test]
    fn the_override_keeps_the_path_and_query() {
        let up = Upstream::new(
            crate::upstream::anthropic::http_client().unwrap(),
            url::Url::parse("http://127.0.0.1:5000/").ok(),
            Duration::from_secs(1),
        );
        let headers = HeaderMap::new();
        let out = Outgoing {
            method: &Method::GET,
            service: "s3",
            region: "eu-west-1",
            path: "/bucket/a%20b",
            query: Some("list-type=2".into()),
            headers: &headers,
            extra: &[],
            body: Bytes::new(),
        };
        assert_eq!(
            up.url(&out),
            "http://127.0.0.1:5000/bucket/a%20b?list-type=2"
        );
        let aws = Upstream::new(
            crate::upstream::anthropic::http_client().unwrap(),
            None,
            Duration::from_secs(1),
        );
        assert_eq!(
            aws.url(&out),
            "https://s3.eu-west-1.amazonaws.com/bucket/a%20b?list-type=2"
        );
    }
}
