//! Amazon Bedrock: InvokeModel and InvokeModelWithResponseStream as plain HTTP calls signed here
//! (SigV4 with the gateway's own credentials, the ECS task role in production, or a Bedrock API
//! key), and CountTokens the same way.

mod errors;
mod frames;
mod signer;
mod stream;
pub mod translate;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{read_capped, BaseUrl, Call, Failure, Reply, StreamEnd, MAX_BODY};
use crate::api::catalog::foundation_model;
use crate::clock::SharedClock;
use crate::config::{Config, Upstream};
use signer::{Auth, Signer};

/// A model id in a path segment: everything but the unreserved characters is encoded, as the SDK
/// does (an ARN's `:` and `/` included).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The largest error answer read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A Bedrock runtime client for one configured upstream.
pub struct Bedrock {
    http: reqwest::Client,
    /// `https://bedrock-runtime.<region>.amazonaws.com`, or the configured `base_url`.
    endpoint: BaseUrl,
    auth: Auth,
    ttfb: Duration,
    response: Duration,
    stream: stream::Timing,
}

impl Bedrock {
    /// Builds the client: region, credentials (static keys, a Bedrock API key, an assumed role, or
    /// the default chain), endpoint override, no retries (the gateway fails over itself).
    pub async fn build(up: &Upstream, cfg: &Config, clock: SharedClock) -> Result<Self, String> {
        let region_name = up.region.clone().unwrap_or_else(|| "us-east-1".into());
        let region = Region::new(region_name.clone());
        let auth = up.auth.clone().unwrap_or_default();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region.clone());
        if let (Some(id), Some(secret)) = (&auth.aws_access_key_id, &auth.aws_secret_access_key) {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                id,
                secret.expose(),
                auth.aws_session_token
                    .as_ref()
                    .map(|t| t.expose().to_owned()),
                None,
                "gateway.yaml",
            ));
        }
        let shared = loader.load().await;
        let mut provider = shared.credentials_provider();
        if let Some(role) = &up.assume_role {
            let mut assume = aws_config::sts::AssumeRoleProvider::builder(&role.role_arn)
                .session_name("claude-gateway")
                .region(region);
            if let Some(ext) = &role.external_id {
                assume = assume.external_id(ext.expose());
            }
            provider = Some(SharedCredentialsProvider::new(
                assume.configure(&shared).build().await,
            ));
        }
        let signing = if let Some(token) = &auth.aws_bearer_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| "auth.aws_bearer_token: not a valid header value".to_owned())?;
            value.set_sensitive(true);
            Auth::Bearer(value)
        } else {
            let provider = provider.ok_or("no AWS credentials provider is available")?;
            Auth::SigV4(Signer::new(provider, region_name.clone(), clock))
        };
        // The configured base URL, else an endpoint the environment sets for every AWS
        // service (`AWS_ENDPOINT_URL`), else the region's public one.
        let endpoint = match up.base_url.as_deref().or(shared.endpoint_url()) {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!(
                "https://{}",
                crate::aws_proxy::upstream::host("bedrock-runtime", &region_name)
            ),
        };
        Ok(Self {
            http: super::anthropic::http_client()?,
            endpoint: BaseUrl::parse(&endpoint)?,
            auth: signing,
            ttfb: Duration::from_millis(cfg.timeouts.upstream_ttfb_ms),
            response: Duration::from_millis(cfg.timeouts.upstream_response_ms),
            stream: stream::Timing {
                ping_after: Duration::from_millis(cfg.timeouts.stream_keepalive_ms),
                idle: Duration::from_millis(cfg.timeouts.stream_idle_ms),
            },
        })
    }

    /// Signs and sends a POST of `body` to the model's `action`; the answer's head.
    async fn post(
        &self,
        model: &str,
        action: &str,
        accept: (&'static str, &'static str),
        body: Vec<u8>,
    ) -> Result<reqwest::Response, Failure> {
        let url = self.endpoint.at(&format!(
            "/model/{}/{action}",
            utf8_percent_encode(model, SEGMENT)
        ));
        let mut headers = HeaderMap::with_capacity(6);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(accept.0, HeaderValue::from_static(accept.1));
        self.auth.apply(&url, &mut headers, &body).await?;
        self.http
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::transport(format!("Bedrock request failed: {}", e.without_url())))
    }

    /// An error answer, classified (its body read within the time-to-first-byte bound).
    async fn failure(&self, res: reqwest::Response) -> Failure {
        let status = res.status();
        let headers = res.headers().clone();
        let body =
            tokio::time::timeout(self.ttfb, read_capped(res, MAX_ERROR_BODY, "Bedrock error"))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
        errors::from_response(status, &headers, &body)
    }

    /// Sends a Messages request as InvokeModel or InvokeModelWithResponseStream.
    pub async fn messages(&self, mut call: Call<'_>, end: StreamEnd) -> Result<Reply, Failure> {
        translate::to_bedrock(&mut call.body, call.betas);
        let body = call.body.to_vec();
        if call.stream {
            let send = self.post(
                &call.model,
                "invoke-with-response-stream",
                ("x-amzn-bedrock-accept", "application/json"),
                body,
            );
            let res = tokio::time::timeout(self.ttfb, send)
                .await
                .map_err(|_| Failure::ttfb_timeout(self.ttfb.as_millis() as u64))??;
            if res.status() != StatusCode::OK {
                return Err(self.failure(res).await);
            }
            Ok(Reply::Stream {
                headers: sse_headers(),
                body: stream::sse(res.bytes_stream().boxed(), self.stream, end, call.tool_uses),
            })
        } else {
            // InvokeModel sends its head only with the finished answer (the head carries the
            // token counts), so the time to it is the generation time: the whole call is bounded
            // by the response timeout, never by the time-to-first-byte one.
            let call_whole = async {
                let res = self
                    .post(&call.model, "invoke", ("accept", "application/json"), body)
                    .await?;
                if res.status() != StatusCode::OK {
                    return Err(self.failure(res).await);
                }
                read_capped(res, MAX_BODY, "Bedrock").await
            };
            let bytes = tokio::time::timeout(self.response, call_whole)
                .await
                .map_err(|_| Failure::response_timeout(self.response.as_millis() as u64))??;
            let (usage, tool_uses) = super::read_message(&bytes, call.tool_uses);
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            drop(end);
            Ok(Reply::Json {
                status: StatusCode::OK,
                headers,
                body: bytes,
                usage,
                tool_uses,
            })
        }
    }

    /// Counts input tokens with CountTokens (the InvokeModel body, base64-encoded, as its
    /// input); `None` for models it cannot count (application inference profiles).
    pub async fn count_tokens(&self, mut call: Call<'_>) -> Result<Option<u64>, Failure> {
        let Some(model) = foundation_model(&call.model) else {
            return Ok(None);
        };
        translate::to_bedrock_count(&mut call.body, call.betas);
        let encoded = base64::engine::general_purpose::STANDARD.encode(call.body.to_vec());
        let body = serde_json::json!({"input": {"invokeModel": {"body": encoded}}}).to_string();
        let send = async {
            let res = self
                .post(
                    &model,
                    "count-tokens",
                    ("accept", "application/json"),
                    body.into_bytes(),
                )
                .await?;
            if res.status() != StatusCode::OK {
                return Err(self.failure(res).await);
            }
            read_capped(res, MAX_ERROR_BODY, "Bedrock").await
        };
        let answer = tokio::time::timeout(self.ttfb, send)
            .await
            .map_err(|_| Failure::ttfb_timeout(self.ttfb.as_millis() as u64))??;
        super::read_count(&answer, "inputTokens", "Bedrock").map(Some)
    }
}

fn sse_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    h
}
