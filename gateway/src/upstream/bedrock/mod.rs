//! Amazon Bedrock through the AWS SDK: InvokeModel, InvokeModelWithResponseStream and CountTokens,
//! signed with the gateway's own credentials (the ECS task role in production).

mod errors;
mod stream;
pub mod translate;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_bedrockruntime::config::{Region, Token};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{CountTokensInput, InvokeModelTokensRequest};
use aws_sdk_bedrockruntime::Client as Sdk;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::{Call, Failure, Reply, StreamEnd};
use crate::config::{Config, Upstream};
use crate::inference::catalog::foundation_model;

/// A Bedrock runtime client for one configured upstream.
pub struct Bedrock {
    sdk: Sdk,
    ttfb: Duration,
    response: Duration,
    stream: stream::Timing,
}

impl Bedrock {
    /// Builds the client: region, credentials (static keys, a Bedrock API key, an assumed role, or
    /// the default chain), endpoint override, no SDK retries (the gateway fails over itself).
    pub async fn build(up: &Upstream, cfg: &Config) -> Self {
        let region = Region::new(up.region.clone().unwrap_or_else(|| "us-east-1".into()));
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
        let mut conf = aws_sdk_bedrockruntime::config::Builder::from(&shared)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .build(),
            );
        if let Some(role) = &up.assume_role {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(&role.role_arn)
                .session_name("claude-gateway")
                .region(region);
            if let Some(ext) = &role.external_id {
                provider = provider.external_id(ext.expose());
            }
            conf = conf.credentials_provider(provider.configure(&shared).build().await);
        }
        if let Some(token) = &auth.aws_bearer_token {
            conf = conf
                .bearer_token(Token::new(token.expose(), None))
                .auth_scheme_preference([
                    aws_smithy_runtime_api::client::auth::http::HTTP_BEARER_AUTH_SCHEME_ID,
                ]);
        }
        if let Some(url) = &up.base_url {
            conf = conf.endpoint_url(url.trim_end_matches('/'));
        }
        Self {
            sdk: Sdk::from_conf(conf.build()),
            ttfb: Duration::from_millis(cfg.timeouts.upstream_ttfb_ms),
            response: Duration::from_millis(cfg.timeouts.upstream_response_ms),
            stream: stream::Timing {
                ping_after: Duration::from_millis(cfg.timeouts.stream_keepalive_ms),
                idle: Duration::from_millis(cfg.timeouts.stream_idle_ms),
            },
        }
    }

    /// Sends a Messages request as InvokeModel or InvokeModelWithResponseStream.
    pub async fn messages(&self, mut call: Call<'_>, end: StreamEnd) -> Result<Reply, Failure> {
        translate::to_bedrock(&mut call.body, call.betas);
        let body = Blob::new(call.body.to_vec());
        if call.stream {
            let send = self
                .sdk
                .invoke_model_with_response_stream()
                .model_id(&call.model)
                .content_type("application/json")
                .accept("application/json")
                .body(body)
                .send();
            let out = tokio::time::timeout(self.ttfb, send)
                .await
                .map_err(|_| Failure::ttfb_timeout(self.ttfb.as_millis() as u64))?
                .map_err(errors::from_sdk)?;
            Ok(Reply::Stream {
                headers: sse_headers(),
                body: stream::sse(out.body, self.stream, end, call.tool_uses),
            })
        } else {
            let send = self
                .sdk
                .invoke_model()
                .model_id(&call.model)
                .content_type("application/json")
                .accept("application/json")
                .body(body)
                .send();
            // InvokeModel sends its head only with the finished answer (the head carries the
            // token counts), so the time to it is the generation time: the whole call is bounded
            // by the response timeout, never by the time-to-first-byte one.
            let out = tokio::time::timeout(self.response, send)
                .await
                .map_err(|_| Failure::response_timeout(self.response.as_millis() as u64))?
                .map_err(errors::from_sdk)?;
            let bytes = Bytes::from(out.body.into_inner());
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

    /// Counts input tokens with CountTokens; `None` for models it cannot count (application
    /// inference profiles).
    pub async fn count_tokens(&self, mut call: Call<'_>) -> Result<Option<u64>, Failure> {
        let Some(model) = foundation_model(&call.model) else {
            return Ok(None);
        };
        translate::to_bedrock_count(&mut call.body, call.betas);
        let input = InvokeModelTokensRequest::builder()
            .body(Blob::new(call.body.to_vec()))
            .build()
            .map_err(|e| Failure::transport(format!("count_tokens request: {e}")))?;
        let send = self
            .sdk
            .count_tokens()
            .model_id(model)
            .input(CountTokensInput::InvokeModel(input))
            .send();
        let out = tokio::time::timeout(self.ttfb, send)
            .await
            .map_err(|_| Failure::ttfb_timeout(self.ttfb.as_millis() as u64))?
            .map_err(errors::from_sdk)?;
        Ok(Some(u64::try_from(out.input_tokens()).unwrap_or(0)))
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
