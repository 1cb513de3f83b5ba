//! Where inference goes: one client per configured upstream, tried in order. Each provider module
//! turns a Messages request into its own call and its answers back into the Anthropic shape.

pub mod anthropic;
pub mod bedrock;
pub mod failure;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use http::{HeaderMap, StatusCode};
use tokio::sync::Semaphore;

use crate::api::body::RawObject;
use crate::api::usage::{Delivered, Usage};
use crate::aws_proxy::turns::ToolUses;
use crate::clock::SharedClock;
use crate::config::{Config, Env, Provider};
pub use failure::Failure;

/// Default cap on concurrent upstream requests per replica.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// The variable that changes the cap (the reference's name for it).
pub const MAX_IN_FLIGHT_VAR: &str = "BUN_CONFIG_MAX_HTTP_REQUESTS";

/// An upstream's base URL, parsed once. Each request's URL is a copy with its path and query set,
/// so the host is not parsed again (with its IDNA mapping) on every request.
#[derive(Debug, Clone)]
pub struct BaseUrl {
    url: reqwest::Url,
    /// The base's own path, without a trailing `/` (empty for a bare host).
    prefix: String,
}

impl BaseUrl {
    /// Parses `base` (`https://host[:port][/prefix]`).
    pub fn parse(base: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(base).map_err(|e| format!("base URL {base:?}: {e}"))?;
        if url.cannot_be_a_base() {
            return Err(format!("base URL {base:?}: not a base URL"));
        }
        let prefix = url.path().trim_end_matches('/').to_owned();
        Ok(Self { url, prefix })
    }

    /// The URL of `path_and_query` (starting with `/`) under the base.
    pub fn at(&self, path_and_query: &str) -> reqwest::Url {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let mut url = self.url.clone();
        if self.prefix.is_empty() {
            url.set_path(path);
        } else {
            url.set_path(&format!("{}{path}", self.prefix));
        }
        url.set_query(query);
        url
    }
}

/// A request on its way to one upstream.
#[derive(Debug)]
pub struct Call<'a> {
    /// The body (`model` already translated or removed by the provider).
    pub body: RawObject,
    /// The provider's model id.
    pub model: String,
    /// `anthropic-beta` entries from the client.
    pub betas: &'a [String],
    /// `stream: true`.
    pub stream: bool,
    /// The client's request headers (a provider forwards the ones it should).
    pub headers: &'a HeaderMap,
    /// The client's path and query (`/v1/messages?beta=true`).
    pub path_and_query: &'a str,
    /// Gather the answer's AWS-looking tool inputs (when the AWS proxy matches calls to turns).
    pub tool_uses: bool,
}

/// A body of server-sent events, already in the Anthropic shape.
pub type SseStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// A successful upstream answer.
pub enum Reply {
    /// A complete JSON answer.
    Json {
        /// Status to relay.
        status: StatusCode,
        /// Headers to relay (already cleaned).
        headers: HeaderMap,
        /// The body.
        body: Bytes,
        /// Usage read from it.
        usage: Usage,
        /// Its AWS-looking tool inputs, when asked for.
        tool_uses: Vec<String>,
    },
    /// A stream; its usage is reported through the [`StreamEnd`] the provider was given.
    Stream {
        /// Headers to relay (already cleaned).
        headers: HeaderMap,
        /// SSE frames.
        body: SseStream,
    },
}

/// What a stream reports when it ends (normally, by error, or because the client left).
pub type StreamEnd = Box<dyn FnOnce(StreamOutcome) + Send + 'static>;

/// How a stream ended.
#[derive(Debug, Clone)]
pub struct StreamOutcome {
    /// Usage delivered.
    pub usage: Usage,
    /// It reached `message_stop`.
    pub completed: bool,
    /// It ended with an in-band error.
    pub errored: bool,
    /// The answer's AWS-looking tool inputs, when asked for.
    pub tool_uses: Vec<String>,
}

/// What a relayed stream has carried so far, reported once to its [`StreamEnd`] when the stream
/// finishes or is dropped (the client left): the usage the upstream reported, with the output
/// estimated from the relayed deltas when the upstream never sent its final count.
pub struct StreamMeter {
    /// Usage as the upstream reported it.
    pub usage: Usage,
    /// Content relayed.
    pub delivered: Delivered,
    /// It reached `message_stop`.
    pub completed: bool,
    /// It ended with an in-band error.
    pub errored: bool,
    /// The answer's tool inputs being gathered, when asked for.
    pub tools: Option<ToolUses>,
    end: Option<StreamEnd>,
}

impl StreamMeter {
    /// A meter that reports to `end`, gathering the answer's tool inputs when `tool_uses`.
    pub fn new(end: StreamEnd, tool_uses: bool) -> Self {
        Self {
            usage: Usage::default(),
            delivered: Delivered::default(),
            completed: false,
            errored: false,
            tools: tool_uses.then(ToolUses::default),
            end: Some(end),
        }
    }

    /// Takes a stream event's usage; a `message_delta` carrying usage is the upstream's own
    /// output count, which a completed stream is billed by.
    pub fn observe(&mut self, event: &serde_json::Value) {
        self.usage.observe(event);
        if event.get("type").and_then(serde_json::Value::as_str) == Some("message_delta")
            && event.get("usage").is_some()
        {
            self.delivered.counted();
        }
    }

    /// Passes a stream event to the tool-input gathering, when on (block events only matter).
    pub fn tool_event(&mut self, kind: &str, json: &[u8]) {
        if let Some(t) = self.tools.as_mut() {
            t.event(kind, json);
        }
    }
}

impl Drop for StreamMeter {
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            let mut usage = self.usage;
            usage.output_tokens = self
                .delivered
                .output_tokens(usage.output_tokens, self.completed);
            end(StreamOutcome {
                usage,
                completed: self.completed,
                errored: self.errored,
                tool_uses: self
                    .tools
                    .take()
                    .map(ToolUses::into_inputs)
                    .unwrap_or_default(),
            });
        }
    }
}

/// A complete answer's usage, and its AWS-looking tool inputs when `tool_uses` (one parse).
fn read_message(body: &[u8], tool_uses: bool) -> (Usage, Vec<String>) {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(m) => (
            Usage::from_message(&m),
            if tool_uses {
                ToolUses::of_message(&m)
            } else {
                Vec::new()
            },
        ),
        Err(_) => (Usage::default(), Vec::new()),
    }
}

/// The largest non-streaming answer read from an upstream. A whole Messages answer is a few
/// megabytes at most (128k output tokens of JSON); past this the upstream is misbehaving.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why an outbound answer's body was not read whole.
#[derive(Debug)]
pub enum Unread {
    /// Larger than allowed (by its stated length, or as it arrived).
    TooLarge,
    /// The connection failed.
    Transport(reqwest::Error),
}

/// Reads an outbound answer's body of at most `max` bytes: one stating a larger length is
/// refused at once, one that grows past it as it arrives.
pub async fn read_at_most(mut res: reqwest::Response, max: usize) -> Result<Bytes, Unread> {
    if res.content_length().is_some_and(|n| n > max as u64) {
        return Err(Unread::TooLarge);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = res.chunk().await.map_err(Unread::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(Unread::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads a body of at most `max` bytes ([`read_at_most`]); `who` names the upstream in the
/// operator's log.
async fn read_capped(res: reqwest::Response, max: usize, who: &str) -> Result<Bytes, Failure> {
    read_at_most(res, max).await.map_err(|e| match e {
        Unread::TooLarge => Failure::transport(format!("{who} body larger than {max} bytes")),
        // Without the URL: a Bedrock URL names the model, and an ARN names the account.
        Unread::Transport(e) => Failure::transport(format!("{who} body: {}", e.without_url())),
    })
}

/// The token count in a count answer's `field` (`input_tokens` from the Messages API,
/// `inputTokens` from Bedrock's CountTokens); `who` names the upstream in the error. (A
/// `Failure` is large, but this runs once per count, after a network round trip.)
#[allow(clippy::result_large_err)]
fn read_count(body: &[u8], field: &str, who: &str) -> Result<u64, Failure> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get(field).and_then(serde_json::Value::as_u64))
        .ok_or_else(|| Failure::transport(format!("{who}: count answer without {field}")))
}

/// One configured upstream's client.
pub enum Client {
    /// Amazon Bedrock runtime.
    Bedrock(bedrock::Bedrock),
    /// An Anthropic API endpoint.
    Anthropic(anthropic::Anthropic),
}

impl Client {
    /// Sends a Messages request.
    pub async fn messages(&self, call: Call<'_>, end: StreamEnd) -> Result<Reply, Failure> {
        match self {
            Client::Bedrock(b) => b.messages(call, end).await,
            Client::Anthropic(a) => a.messages(call, end).await,
        }
    }

    /// Counts input tokens; `Ok(None)` when the upstream cannot count for this model.
    pub async fn count_tokens(&self, call: Call<'_>) -> Result<Option<u64>, Failure> {
        match self {
            Client::Bedrock(b) => b.count_tokens(call).await,
            Client::Anthropic(a) => a.count_tokens(call).await,
        }
    }
}

/// Every upstream client, in config order, and the per-replica cap on requests in flight.
pub struct Upstreams {
    /// Clients in the order of `upstreams`.
    pub clients: Vec<Client>,
    /// Permits for concurrent upstream requests; a stream holds one until it ends.
    pub permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Upstreams({})", self.clients.len())
    }
}

/// Why upstream clients could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A setting is unusable.
    #[error("{0}")]
    Setting(String),
}

impl Upstreams {
    /// Builds one client per configured upstream.
    pub async fn build(
        cfg: &Config,
        env: &dyn Env,
        clock: SharedClock,
    ) -> Result<Self, BuildError> {
        let max = match env.var(MAX_IN_FLIGHT_VAR) {
            None => DEFAULT_MAX_IN_FLIGHT,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=65_535).contains(n))
                .ok_or_else(|| {
                    BuildError::Setting(format!("{MAX_IN_FLIGHT_VAR} must be 1 to 65535"))
                })?,
        };
        let mut clients = Vec::with_capacity(cfg.upstreams.len());
        for (i, up) in cfg.upstreams.iter().enumerate() {
            let client = match up.provider {
                Provider::Bedrock => Client::Bedrock(
                    bedrock::Bedrock::build(up, cfg, clock.clone())
                        .await
                        .map_err(|e| BuildError::Setting(format!("upstreams[{i}]: {e}")))?,
                ),
                Provider::Anthropic => Client::Anthropic(
                    anthropic::Anthropic::build(up, cfg)
                        .map_err(|e| BuildError::Setting(format!("upstreams[{i}]: {e}")))?,
                ),
                other => {
                    return Err(BuildError::Setting(format!(
                        "upstreams[{i}].provider: provider {} is not supported by this gateway",
                        other.as_str()
                    )))
                }
            };
            clients.push(client);
        }
        Ok(Self {
            clients,
            permits: Arc::new(Semaphore::new(max)),
        })
    }

    /// No upstreams (for tests of routes that never reach one).
    pub fn none() -> Self {
        Self {
            clients: Vec::new(),
            permits: Arc::new(Semaphore::new(DEFAULT_MAX_IN_FLIGHT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BaseUrl;

    #[test]
    fn a_request_url_is_the_base_joined_with_the_path_as_parsed_whole() {
        let bases = [
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            "http://127.0.0.1:8080/",
            "https://gateway.example.com/anthropic",
            "https://gateway.example.com/anthropic/",
            "https://[::1]:9443/a/b",
        ];
        let paths = [
            "/v1/messages",
            "/v1/messages?beta=true",
            "/v1/messages/count_tokens?beta=true&x=%20y",
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream",
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/invoke",
        ];
        for base in bases {
            let parsed = BaseUrl::parse(base).unwrap();
            for path in paths {
                let whole = format!("{}{path}", base.trim_end_matches('/'));
                assert_eq!(
                    parsed.at(path),
                    reqwest::Url::parse(&whole).unwrap(),
                    "{base} + {path}"
                );
            }
        }
    }

    #[test]
    fn a_count_is_read_only_from_a_whole_number_in_its_field() {
        use super::read_count;
        assert_eq!(
            read_count(br#"{"inputTokens": 42}"#, "inputTokens", "B").unwrap(),
            42
        );
        for hostile in [
            &b""[..],
            b"not json",
            b"[42]",
            br#"{"input_tokens": 42}"#,
            br#"{"inputTokens": -1}"#,
            br#"{"inputTokens": 4.5}"#,
            br#"{"inputTokens": "42"}"#,
            br#"{"inputTokens": 1e400}"#,
            br#"{"inputTokens": 18446744073709551616}"#,
        ] {
            let f = read_count(hostile, "inputTokens", "Bedrock").unwrap_err();
            assert_eq!(f.detail, "Bedrock: count answer without inputTokens");
        }
    }

    #[test]
    fn a_base_that_is_not_a_url_is_refused() {
        assert!(BaseUrl::parse("not a url").is_err());
        assert!(BaseUrl::parse("mailto:someone@example.com").is_err());
    }
}
