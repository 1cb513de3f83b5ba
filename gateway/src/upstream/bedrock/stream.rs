//! Bedrock's binary event stream re-emitted as Anthropic server-sent events, one event per chunk,
//! never buffered. A silent upstream gets a `ping` every `stream_keepalive_ms`, and a stream
//! silent for `stream_idle_ms` ends; that and an exception become an `error` event and the stream
//! ends cleanly. Dropping the stream (the client left) drops the upstream
//! connection and still reports the usage delivered so far (the output estimated from the
//! deltas relayed when Bedrock never sent its final count).

use std::time::Duration;

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::event_stream::EventReceiver;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use aws_sdk_bedrockruntime::types::ResponseStream;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::errors::stream_exception;
use crate::inference::sse;
use crate::upstream::{SseStream, StreamEnd, StreamMeter};

type Receiver = EventReceiver<ResponseStream, ResponseStreamError>;

/// How a stream paces itself during upstream silence.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Silence after which the client gets a `ping`.
    pub ping_after: Duration,
    /// Silence after which the stream ends with an `error` event.
    pub idle: Duration,
}

struct State {
    rx: Receiver,
    timing: Timing,
    /// When the upstream last sent an event (or the stream began).
    heard: Instant,
    done: bool,
    meter: StreamMeter,
}

/// The SSE body for a Bedrock response stream.
pub fn sse(rx: Receiver, timing: Timing, end: StreamEnd) -> SseStream {
    let state = State {
        rx,
        timing,
        heard: Instant::now(),
        done: false,
        meter: StreamMeter::new(end),
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let silent = st.heard.elapsed();
            let Some(left) = st.timing.idle.checked_sub(silent).filter(|d| !d.is_zero()) else {
                st.done = true;
                st.meter.errored = true;
                tracing::warn!(
                    silent_ms = silent.as_millis() as u64,
                    "Bedrock stream silent for too long, ended"
                );
                return Some((Ok(sse::error("api_error", "upstream stopped sending")), st));
            };
            let next =
                match tokio::time::timeout(st.timing.ping_after.min(left), st.rx.recv()).await {
                    Err(_) if st.heard.elapsed() >= st.timing.idle => continue,
                    Err(_) => return Some((Ok(sse::ping()), st)),
                    Ok(n) => n,
                };
            st.heard = Instant::now();
            match next {
                Ok(Some(ResponseStream::Chunk(part))) => {
                    let Some(bytes) = part.bytes() else { continue };
                    match relay_chunk(bytes.as_ref(), &mut st.meter) {
                        Some(frame) => return Some((Ok(frame), st)),
                        None => continue,
                    }
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    st.done = true;
                    if st.meter.completed {
                        return None;
                    }
                    // The upstream closed without message_stop: say so in band.
                    st.meter.errored = true;
                    tracing::warn!("Bedrock stream ended before message_stop");
                    return Some((
                        Ok(sse::error(
                            "api_error",
                            "upstream stream ended unexpectedly",
                        )),
                        st,
                    ));
                }
                Err(err) => {
                    st.done = true;
                    st.meter.errored = true;
                    let (kind, message, detail) = match err.as_service_error() {
                        Some(e) => stream_exception(
                            e.code().unwrap_or("Unknown"),
                            e.message().unwrap_or_default(),
                        ),
                        None => (
                            "api_error",
                            "upstream connection lost".to_owned(),
                            format!("Bedrock stream transport error: {err}"),
                        ),
                    };
                    tracing::warn!("{detail}");
                    return Some((Ok(sse::error(kind, &message)), st));
                }
            }
        }
    })
    .boxed()
}

/// One Bedrock chunk (an Anthropic event's JSON) as an SSE frame, reading usage on the way.
/// Deltas pass through without being parsed.
fn relay_chunk(json: &[u8], meter: &mut StreamMeter) -> Option<Bytes> {
    if let Some(t) = sse::leading_type(json) {
        if t == "content_block_delta" {
            meter.delivered.delta(json.len());
        }
        if t == "content_block_delta"
            || t == "content_block_start"
            || t == "content_block_stop"
            || t == "ping"
        {
            return Some(sse::frame(t, json));
        }
    }
    let mut event: serde_json::Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("Bedrock sent a chunk that is not JSON: {e}");
            return None;
        }
    };
    let kind = event
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    meter.usage.observe(&event);
    if kind == "content_block_delta" {
        meter.delivered.delta(json.len());
    }
    if kind == "message_stop" {
        meter.completed = true;
    }
    let data = match event
        .as_object_mut()
        .and_then(|o| o.remove("amazon-bedrock-invocationMetrics"))
    {
        // Bedrock's own metrics are not part of the Anthropic event.
        Some(_) => Bytes::from(event.to_string()),
        None => Bytes::copy_from_slice(json),
    };
    Some(sse::frame(&kind, &data))
}
