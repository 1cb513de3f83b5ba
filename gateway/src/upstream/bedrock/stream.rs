//! Bedrock's binary event stream re-emitted as Anthropic server-sent events, one event per chunk,
//! never buffered. A silent upstream gets a `ping` every `stream_keepalive_ms`, and a stream
//! silent for `stream_idle_ms` ends; that, an exception and a malformed message become an `error`
//! event and the stream ends cleanly. Dropping the stream (the client left) drops the upstream
//! connection and still reports the usage delivered so far (the output estimated from the
//! deltas relayed when Bedrock never sent its final count).

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::errors::stream_exception;
use super::frames::{Decoder, FrameError, Message};
use crate::api::sse;
use crate::upstream::{SseStream, StreamEnd, StreamMeter};

/// The answer's body as it arrives.
pub type Body = BoxStream<'static, Result<Bytes, reqwest::Error>>;

/// How a stream paces itself during upstream silence.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Silence after which the client gets a `ping`.
    pub ping_after: Duration,
    /// Silence after which the stream ends with an `error` event.
    pub idle: Duration,
}

/// Why no further message comes.
enum Broken {
    /// The connection failed.
    Transport(reqwest::Error),
    /// The bytes are not an event stream.
    Frame(FrameError),
}

/// The answer's messages, decoded as its bytes arrive.
struct Messages {
    body: Body,
    decoder: Decoder,
}

impl Messages {
    /// The next message; `Ok(None)` when the answer ends (bytes of an unfinished message are
    /// dropped: the stream then lacks its `message_stop`, which says it was cut).
    async fn next(&mut self) -> Result<Option<Message>, Broken> {
        loop {
            if let Some(m) = self.decoder.next().map_err(Broken::Frame)? {
                return Ok(Some(m));
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.decoder.push(&bytes),
                Some(Err(e)) => return Err(Broken::Transport(e)),
                None => {
                    if self.decoder.pending() > 0 {
                        tracing::warn!("Bedrock stream closed inside a message");
                    }
                    return Ok(None);
                }
            }
        }
    }
}

/// The payload of a `chunk` event.
#[derive(serde::Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    bytes: Option<Cow<'a, str>>,
}

/// The payload of an exception.
#[derive(serde::Deserialize)]
struct Exception<'a> {
    #[serde(borrow, alias = "Message")]
    message: Option<Cow<'a, str>>,
}

struct State {
    rx: Messages,
    timing: Timing,
    /// When the upstream last sent an event (or the stream began).
    heard: Instant,
    done: bool,
    meter: StreamMeter,
}

/// The SSE body for a Bedrock response stream; with `tool_uses`, the answer's tool inputs are
/// gathered for the stream's end.
pub fn sse(body: Body, timing: Timing, end: StreamEnd, tool_uses: bool) -> SseStream {
    let state = State {
        rx: Messages {
            body,
            decoder: Decoder::default(),
        },
        timing,
        heard: Instant::now(),
        done: false,
        meter: StreamMeter::new(end, tool_uses),
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
                match tokio::time::timeout(st.timing.ping_after.min(left), st.rx.next()).await {
                    Err(_) if st.heard.elapsed() >= st.timing.idle => continue,
                    Err(_) => return Some((Ok(sse::ping()), st)),
                    Ok(n) => n,
                };
            st.heard = Instant::now();
            let (kind, message, detail) = match next {
                Ok(Some(m)) if m.message_type == "event" => {
                    if m.event_type != "chunk" {
                        continue;
                    }
                    let Some(json) = chunk_bytes(&m.payload) else {
                        tracing::warn!("Bedrock sent a chunk without its bytes");
                        continue;
                    };
                    match relay_chunk(&json, &mut st.meter) {
                        Some(frame) => return Some((Ok(frame), st)),
                        None => continue,
                    }
                }
                Ok(Some(m)) if m.message_type == "exception" => {
                    let said = serde_json::from_slice::<Exception<'_>>(&m.payload)
                        .ok()
                        .and_then(|e| e.message.map(Cow::into_owned))
                        .unwrap_or_default();
                    stream_exception(&m.exception_type, &said)
                }
                Ok(Some(m)) if m.message_type == "error" => {
                    stream_exception(&m.error_code, &m.error_message)
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
                Err(Broken::Transport(e)) => (
                    "api_error",
                    "upstream connection lost".to_owned(),
                    format!("Bedrock stream transport error: {}", e.without_url()),
                ),
                Err(Broken::Frame(e)) => (
                    "api_error",
                    "upstream stream error".to_owned(),
                    format!("Bedrock stream malformed: {e}"),
                ),
            };
            st.done = true;
            st.meter.errored = true;
            tracing::warn!("{detail}");
            return Some((Ok(sse::error(kind, &message)), st));
        }
    })
    .boxed()
}

/// The Anthropic event a `chunk` payload carries (`{"bytes": "<base64>"}`).
fn chunk_bytes(payload: &[u8]) -> Option<Vec<u8>> {
    let chunk: Chunk<'_> = serde_json::from_slice(payload).ok()?;
    base64::engine::general_purpose::STANDARD
        .decode(chunk.bytes?.as_bytes())
        .ok()
}

/// One Bedrock chunk (an Anthropic event's JSON) as an SSE frame, reading usage on the way.
/// Deltas pass through without being parsed. The frame is always one event: a chunk whose JSON
/// spans lines is re-serialized on one, and a `type` with a line break is dropped.
fn relay_chunk(json: &[u8], meter: &mut StreamMeter) -> Option<Bytes> {
    // A line break inside the data would end the event early or start another.
    let one_line = !json.iter().any(|b| matches!(b, b'\n' | b'\r'));
    if let Some(t) = sse::leading_type(json).filter(|_| one_line) {
        if t == "content_block_delta" {
            meter.delivered.delta(json.len());
        }
        if t == "content_block_delta" || t == "content_block_start" || t == "content_block_stop" {
            meter.tool_event(t, json);
            return Some(sse::frame(t, json));
        }
        if t == "ping" {
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
    if kind.contains(['\n', '\r']) {
        tracing::warn!("Bedrock sent an event whose type spans lines");
        return None;
    }
    meter.observe(&event);
    if kind == "content_block_delta" {
        meter.delivered.delta(json.len());
    }
    if kind.starts_with("content_block_") {
        meter.tool_event(&kind, json);
    }
    if kind == "message_stop" {
        meter.completed = true;
    }
    let metrics = event
        .as_object_mut()
        .and_then(|o| o.remove("amazon-bedrock-invocationMetrics"));
    // Bedrock's own metrics are not part of the Anthropic event.
    let data = if metrics.is_some() || !one_line {
        Bytes::from(event.to_string())
    } else {
        Bytes::copy_from_slice(json)
    };
    Some(sse::frame(&kind, &data))
}

#[cfg(test)]
mod props {
    //! Whatever a Bedrock chunk holds: no panic, at most one well-formed SSE event out, and the
    //! usage read from an event is the usage it states.

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::api::usage::Usage;

    fn meter() -> StreamMeter {
        // Gathering tool inputs too: whatever the chunk, it never panics.
        StreamMeter::new(Box::new(|_| {}), true)
    }

    /// Checks `frame` is exactly one event: `event: <kind>\ndata: <data>\n\n`, on two lines.
    fn one_event(frame: &[u8]) -> Result<(String, Vec<u8>), TestCaseError> {
        prop_assert!(!frame.contains(&b'\r'), "a carriage return in {:?}", frame);
        let rest = frame.strip_prefix(b"event: ");
        prop_assert!(rest.is_some(), "no event line");
        let rest = rest.unwrap_or_default();
        prop_assert!(rest.ends_with(b"\n\n"));
        let body = &rest[..rest.len() - 2];
        let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
        prop_assert_eq!(lines.len(), 2, "{:?}", String::from_utf8_lossy(frame));
        let data = lines[1].strip_prefix(b"data: ");
        prop_assert!(data.is_some(), "no data line");
        Ok((
            String::from_utf8_lossy(lines[0]).into_owned(),
            data.unwrap_or_default().to_vec(),
        ))
    }

    fn event() -> impl Strategy<Value = Value> {
        let n = 0u64..10_000_000;
        let kind = prop_oneof![
            Just("message_start".to_owned()),
            Just("message_delta".to_owned()),
            Just("message_stop".to_owned()),
            Just("content_block_delta".to_owned()),
            Just("content_block_start".to_owned()),
            Just("error".to_owned()),
            any::<String>(),
        ];
        (
            kind,
            n.clone(),
            n,
            any::<String>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(kind, input, output, text, metrics, usage_first)| {
                let usage = json!({"input_tokens": input, "output_tokens": output});
                let mut e = if usage_first {
                    json!({"usage": usage, "message": {"usage": usage}, "type": kind})
                } else {
                    json!({"type": kind, "message": {"usage": usage}, "usage": usage})
                };
                e["delta"] = json!({"type": "text_delta", "text": text});
                if metrics {
                    e["amazon-bedrock-invocationMetrics"] =
                        json!({"inputTokenCount": input, "outputTokenCount": output});
                }
                e
            })
    }

    #[test]
    fn an_answers_tool_inputs_are_gathered_as_it_relays() {
        let (end, seen) = {
            let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
            let sink = seen.clone();
            let end: crate::upstream::StreamEnd = Box::new(move |o| {
                if let Ok(mut s) = sink.lock() {
                    *s = Some(o);
                }
            });
            (end, seen)
        };
        let mut m = StreamMeter::new(end, true);
        // As Bedrock sends them, one event a chunk: a text block, then a Bash call in pieces.
        let chunks = [
            r#"{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Listing."}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"Bash","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"command\": "}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"aws secretsmanager get-secret-value --secret-id payments/db\"}"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}"#,
            r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":5}}"#,
        ];
        for c in chunks {
            let frame = relay_chunk(c.as_bytes(), &mut m);
            assert!(frame.is_some(), "{c}");
        }
        assert!(m.completed);
        drop(m);
        let out = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
        let out = out.unwrap_or_else(|| panic!("no outcome"));
        assert_eq!(
            out.tool_uses,
            vec!["aws secretsmanager get-secret-value --secret-id payments/db".to_owned()]
        );
        assert_eq!(out.usage.output_tokens, 30);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_bytes_give_at_most_one_event(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..256),
                (
                    prop_oneof![
                        Just(br#"{"type":"content_block_delta""#.to_vec()),
                        Just(br#"{"type":"ping""#.to_vec()),
                        Just(br#"{"type":"message_stop""#.to_vec()),
                        Just(br#"{"type":"x\n\nevent: message_stop"#.to_vec()),
                    ],
                    prop::collection::vec(any::<u8>(), 0..64),
                ).prop_map(|(head, tail)| [head, tail].concat()),
            ]
        ) {
            let mut m = meter();
            if let Some(frame) = relay_chunk(&bytes, &mut m) {
                one_event(&frame)?;
            }
        }

        #[test]
        fn events_relay_as_themselves_with_their_usage(
            e in event(),
            pretty in any::<bool>(),
            type_first in any::<bool>(),
        ) {
            let write = |v: &Value| {
                if pretty {
                    serde_json::to_string_pretty(v)
                } else {
                    serde_json::to_string(v)
                }
                .unwrap_or_default()
            };
            let json = if type_first {
                // As Claude upstreams write events: `type` first, which the relay reads unparsed.
                let mut rest = e.clone();
                if let Some(o) = rest.as_object_mut() {
                    o.remove("type");
                }
                let rest = write(&rest);
                format!("{{\"type\":{},{}", e["type"], &rest[1..]).into_bytes()
            } else {
                write(&e).into_bytes()
            };
            let kind = e["type"].as_str().unwrap_or_default().to_owned();
            let mut m = meter();
            let frame = relay_chunk(&json, &mut m);
            if kind.contains(['\n', '\r']) {
                prop_assert!(frame.is_none());
                return Ok(());
            }
            prop_assert!(frame.is_some());
            let (got_kind, data) = one_event(&frame.unwrap_or_default())?;
            prop_assert_eq!(&got_kind, &kind);
            let mut without_metrics = e.clone();
            if let Some(o) = without_metrics.as_object_mut() {
                o.remove("amazon-bedrock-invocationMetrics");
            }
            let relayed: Value = serde_json::from_slice(&data).map_err(|err| TestCaseError::fail(err.to_string()))?;
            // Deltas and block events on one line pass as written; the rest lose Bedrock's metrics.
            let verbatim = type_first
                && !pretty
                && ["content_block_delta", "content_block_start", "content_block_stop", "ping"]
                    .contains(&kind.as_str());
            prop_assert_eq!(relayed, if verbatim { e.clone() } else { without_metrics });
            let mut usage = Usage::default();
            usage.observe(&e);
            prop_assert_eq!(m.usage, usage);
        }
    }
}
