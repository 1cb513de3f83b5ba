//! AWS Query-protocol calls (EC2, IAM) signed with SigV4 over the deployer's HTTP client, for the
//! few read-only answers preflight needs from services the deployer has no SDK client for.
//! Answers are XML; [`values`] reads the flat elements preflight uses.

use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use claude_gateway::clock::{Clock, SystemClock};

use super::Aws;

/// The largest answer read (a Region's VPCs or addresses fit many times over).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A Query-protocol service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon EC2 (API version 2016-11-15), in the deployment's Region.
    Ec2,
    /// IAM (API version 2010-05-08), global, signed for us-east-1.
    Iam,
}

impl Service {
    fn signing_name(self) -> &'static str {
        match self {
            Service::Ec2 => "ec2",
            Service::Iam => "iam",
        }
    }

    fn version(self) -> &'static str {
        match self {
            Service::Ec2 => "2016-11-15",
            Service::Iam => "2010-05-08",
        }
    }
}

/// Why a call gave no answer: the service's error code (e.g. `AccessDenied`, `NoSuchEntity`) or
/// a transport problem, with a message fit to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The service's error code, when it answered with one.
    pub code: Option<String>,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(c) => write!(f, "{c}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn fail(message: impl Into<String>) -> CallError {
    CallError {
        code: None,
        message: message.into(),
    }
}

/// Calls `action` with `params` and returns the answer's XML text.
pub async fn call(
    aws: &Aws,
    service: Service,
    action: &str,
    params: &[(&str, &str)],
) -> std::result::Result<String, CallError> {
    let (url, region) = match (&aws.endpoint, service) {
        (Some(e), Service::Iam) => (e.clone(), "us-east-1".to_owned()),
        (Some(e), Service::Ec2) => (e.clone(), aws.region.clone()),
        (None, Service::Iam) => (
            "https://iam.amazonaws.com/".to_owned(),
            "us-east-1".to_owned(),
        ),
        (None, Service::Ec2) => (
            format!("https://ec2.{}.amazonaws.com/", aws.region),
            aws.region.clone(),
        ),
    };
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", action)
        .append_pair("Version", service.version());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    let body = form.finish();

    let provider = aws
        .credentials
        .as_ref()
        .ok_or_else(|| fail("no AWS credentials are configured"))?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| fail(format!("no AWS credentials: {e}")))?;
    let identity = creds.into();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(service.signing_name())
        .time(SystemClock.now().into())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(format!("cannot sign the request: {e}")))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        [("content-type", content_type)].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| fail(format!("cannot sign the request: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| fail(format!("cannot sign the request: {e}")))?
        .into_parts();

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .use_rustls_tls()
        .build()
        .map_err(|e| fail(format!("cannot build an HTTPS client: {e}")))?;
    let mut req = client
        .post(&url)
        .header("content-type", content_type)
        .body(body);
    for (name, value) in instructions.headers() {
        req = req.header(name, value);
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| fail(format!("{} {action}: {e}", service.signing_name())))?;
    let status = resp.status();
    let mut text = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| fail(format!("{} {action}: {e}", service.signing_name())))?
    {
        if text.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(fail(format!(
                "{} {action}: the answer is over {MAX_ANSWER_BYTES} bytes",
                service.signing_name()
            )));
        }
        text.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    if status.is_success() {
        Ok(text)
    } else {
        Err(CallError {
            code: values(&text, "Code").into_iter().next(),
            message: values(&text, "Message")
                .into_iter()
                .next()
                .unwrap_or_else(|| format!("HTTP {status}")),
        })
    }
}

/// The text of every `<tag>...</tag>` element in `xml`, in order (entities decoded). Elements
/// with attributes or nested elements of the same name are not used by these answers.
pub fn values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_reads_flat_elements_in_order() {
        let xml = "<R><item><attributeName>vpc-max-elastic-ips</attributeName><attributeValueSet><item><attributeValue>5</attributeValue></item></attributeValueSet></item><x><Code>A&amp;B</Code></x><Code>unterminated";
        assert_eq!(values(xml, "attributeName"), ["vpc-max-elastic-ips"]);
        assert_eq!(values(xml, "attributeValue"), ["5"]);
        assert_eq!(values(xml, "Code"), ["A&B"]);
        assert!(values(xml, "missing").is_empty());
    }
}
