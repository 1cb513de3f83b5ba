//! An Anthropic API endpoint (`provider: anthropic`): the request passes through with the model
//! translated and the gateway's own key; the answer is relayed as it came, minus hop-by-hop and
//! upstream rate-limit headers. Useful for local runs and as a failover target.

mod sse_usage;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::{read_capped, BaseUrl, Call, Failure, Reply, StreamEnd, StreamMeter};
use crate::config::{Config, Upstream};

const DEFAULT_BASE: &str = "https://api.anthropic.com";

/// Request headers the client sends that are forwarded (plus every `x-stainless-*`).
const FORWARD: &[&str] = &[
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
];
/// Response headers never relayed.
const STRIP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "proxy-authenticate",
    "trailer",
    "upgrade",
    "te",
    "request-id",
    "x-request-id",
    "cf-ray",
    "via",
    "anthropic-organization-id",
    "set-cookie",
];

/// A client for one Anthropic-API upstream.
pub struct Anthropic {
    http: reqwest::Client,
    base: BaseUrl,
    auth: (HeaderName, HeaderValue),
    extra: HeaderMap,
    ttfb: Duration,
    response: Duration,
    stream_idle: Duration,
}

/// An HTTP client on rustls with aws-lc-rs and the system's trust store, which never follows a
/// redirect (also used by the telemetry relay).
pub fn http_client() -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        // A redirect would carry the request, and the credentials on it, somewhere unconfigured.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

impl Anthropic {
    /// Builds the client from a validated upstream entry.
    pub fn build(up: &Upstream, cfg: &Config) -> Result<Self, String> {
        let auth = up.auth.clone().unwrap_or_default();
        let auth = match (&auth.api_key, &auth.oauth_token) {
            (Some(k), _) => ("x-api-key", k.expose().to_owned()),
            (None, Some(t)) => ("authorization", format!("Bearer {}", t.expose())),
            (None, None) => return Err("auth: set api_key or oauth_token".into()),
        };
        let mut value = HeaderValue::from_str(&auth.1)
            .map_err(|_| "auth: not a valid header value".to_owned())?;
        value.set_sensitive(true);
        let mut extra = HeaderMap::new();
        for (k, v) in &up.headers {
            let (Ok(name), Ok(val)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) else {
                return Err(format!("headers.{k}: not a valid header"));
            };
            extra.insert(name, val);
        }
        Ok(Self {
            http: http_client()?,
            base: BaseUrl::parse(up.base_url.as_deref().unwrap_or(DEFAULT_BASE))?,
            auth: (HeaderName::from_static(auth.0), value),
            extra,
            ttfb: Duration::from_millis(cfg.timeouts.upstream_ttfb_ms),
            response: Duration::from_millis(cfg.timeouts.upstream_response_ms),
            stream_idle: Duration::from_millis(cfg.timeouts.stream_idle_ms),
        })
    }

    fn request(
        &self,
        path_and_query: &str,
        client_headers: &HeaderMap,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let mut headers = HeaderMap::new();
        for (name, value) in client_headers {
            let n = name.as_str();
            if FORWARD.contains(&n) || n.starts_with("x-stainless-") {
                headers.append(name.clone(), value.clone());
            }
        }
        let ua = client_headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| format!("{ua} claude-gateway/{}", env!("CARGO_PKG_VERSION")))
            .unwrap_or_else(|| format!("claude-gateway/{}", env!("CARGO_PKG_VERSION")));
        if let Ok(v) = HeaderValue::from_str(&ua) {
            headers.insert(http::header::USER_AGENT, v);
        }
        headers
            .entry(http::header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/json"));
        headers.extend(self.extra.clone());
        headers.insert(self.auth.0.clone(), self.auth.1.clone());
        self.http
            .post(self.base.at(path_and_query))
            .headers(headers)
            .body(body)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        match tokio::time::timeout(self.ttfb, req.send()).await {
            Err(_) => Err(Failure::ttfb_timeout(self.ttfb.as_millis() as u64)),
            Ok(Err(e)) => Err(Failure::transport(format!("Anthropic upstream: {e}"))),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Reads a whole body after its head, within `limit`: the response timeout for an answer,
    /// the time-to-first-byte one for an error or a token count (short bodies sent at once).
    /// A body larger than [`super::MAX_BODY`] is refused as it arrives, never held whole.
    async fn body(&self, res: reqwest::Response, limit: Duration) -> Result<Bytes, Failure> {
        match tokio::time::timeout(
            limit,
            read_capped(res, super::MAX_BODY, "Anthropic upstream"),
        )
        .await
        {
            Err(_) => Err(Failure::response_timeout(limit.as_millis() as u64)),
            Ok(result) => result,
        }
    }

    /// Sends a Messages request.
    pub async fn messages(&self, mut call: Call<'_>, end: StreamEnd) -> Result<Reply, Failure> {
        call.body.set("model", &call.model);
        let res = self
            .send(self.request(call.path_and_query, call.headers, call.body.to_vec()))
            .await?;
        let status = res.status();
        let headers = clean(res.headers());
        if !status.is_success() {
            let body = self.body(res, self.ttfb).await.unwrap_or_default();
            return Err(relayed_failure(status, headers, body));
        }
        let is_sse = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse {
            let body = sse_usage::track(
                res.bytes_stream().boxed(),
                self.stream_idle,
                StreamMeter::new(end, call.tool_uses),
            );
            return Ok(Reply::Stream { headers, body });
        }
        let body = self.body(res, self.response).await?;
        let (usage, tool_uses) = super::read_message(&body, call.tool_uses);
        drop(end);
        Ok(Reply::Json {
            status,
            headers,
            body,
            usage,
            tool_uses,
        })
    }

    /// Forwards `count_tokens`.
    pub async fn count_tokens(&self, mut call: Call<'_>) -> Result<Option<u64>, Failure> {
        call.body.set("model", &call.model);
        let res = self
            .send(self.request(call.path_and_query, call.headers, call.body.to_vec()))
            .await?;
        let status = res.status();
        let headers = clean(res.headers());
        let body = self.body(res, self.ttfb).await;
        let body = match body {
            Ok(b) => b,
            Err(_) if !status.is_success() => Bytes::new(),
            Err(f) => return Err(f),
        };
        if !status.is_success() {
            return Err(relayed_failure(status, headers, body));
        }
        super::read_count(&body, "input_tokens", "Anthropic upstream").map(Some)
    }
}

/// An Anthropic-format error is relayed as it came; 5xx and 429 try the next upstream first. A
/// redirect is not followed, nor passed on: it is an upstream failure.
fn relayed_failure(status: StatusCode, headers: HeaderMap, body: Bytes) -> Failure {
    if status.is_redirection() {
        return Failure::new(
            StatusCode::BAD_GATEWAY,
            "api_error",
            "upstream error",
            format!("Anthropic upstream answered {status}: redirects are not followed"),
        );
    }
    let kind = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/type")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        });
    let mut f = Failure::new(
        status,
        "api_error",
        "upstream error",
        format!(
            "Anthropic upstream answered {status} ({})",
            kind.as_deref().unwrap_or("no error type")
        ),
    );
    f.retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    f.relay = Some((headers, body));
    f
}

/// Response headers safe to relay.
pub fn clean(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let n = name.as_str();
        if STRIP.contains(&n) || n.starts_with("anthropic-ratelimit-") {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}
