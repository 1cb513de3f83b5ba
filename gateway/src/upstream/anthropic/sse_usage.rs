//! Reads usage out of an Anthropic SSE stream while relaying its bytes unchanged, a whole event
//! at a time: a partial event is held until its end arrives, so an in-band `error` (the upstream
//! went silent for too long, the connection broke, or it closed before `message_stop`) always
//! lands between two events, never inside one.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::inference::sse;
use crate::upstream::{SseStream, StreamEnd, StreamMeter};

/// The most of one unfinished event held back; past it the event passes through as it comes
/// (no usage is read from it).
const MAX_HELD: usize = 1 << 20;

struct Scan {
    /// The unfinished event.
    pending: BytesMut,
    /// How much of `pending` has been searched for an event's end.
    searched: usize,
    /// An event too large to hold is passing through: its end is not a whole event.
    passing: bool,
    meter: StreamMeter,
}

impl Scan {
    /// Takes a chunk; returns the events it completes (inspected for usage), in order, or
    /// nothing while the event is unfinished.
    fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut done = 0;
        let mut from = self.searched.saturating_sub(1);
        while let Some(pos) = find_blank_line(&self.pending[from..]) {
            let end = from + pos + 2;
            if self.passing {
                self.passing = false;
            } else {
                inspect(&mut self.meter, &self.pending[done..end]);
            }
            done = end;
            from = end;
        }
        let mut out = self.pending.split_to(done);
        self.searched = self.pending.len();
        if self.pending.len() > MAX_HELD {
            out.unsplit(self.pending.split());
            self.passing = true;
            self.searched = 0;
        }
        out.freeze()
    }
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\n\n")
}

/// Reads usage, progress and the end from one complete event.
fn inspect(meter: &mut StreamMeter, event: &[u8]) {
    let text = String::from_utf8_lossy(event);
    let Some(data) = text.lines().find_map(|l| l.strip_prefix("data:")) else {
        return;
    };
    let kind = text
        .lines()
        .find_map(|l| l.strip_prefix("event:"))
        .map(str::trim)
        .unwrap_or_default();
    match kind {
        "message_start" | "message_delta" => {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) {
                meter.usage.observe(&v);
            }
        }
        "content_block_delta" => meter.delivered.delta(data.trim().len()),
        "message_stop" => meter.completed = true,
        "error" => meter.errored = true,
        _ => {}
    }
}

type Upstream = BoxStream<'static, reqwest::Result<Bytes>>;

/// Ends the relay with an in-band error (any unfinished event is dropped, as a client drops one
/// cut short).
fn fail(scan: Scan, message: &str) -> Option<(std::io::Result<Bytes>, (Upstream, Scan))> {
    let mut scan = scan;
    scan.meter.errored = true;
    Some((
        Ok(sse::error("api_error", message)),
        (futures_util::stream::empty().boxed(), scan),
    ))
}

/// Wraps an upstream byte stream; `idle` is the longest silence allowed between two chunks.
pub fn track(upstream: Upstream, idle: Duration, end: StreamEnd) -> SseStream {
    let scan = Scan {
        pending: BytesMut::new(),
        searched: 0,
        passing: false,
        meter: StreamMeter::new(end),
    };
    futures_util::stream::unfold((upstream, scan), move |(mut up, mut scan)| async move {
        loop {
            let Ok(next) = tokio::time::timeout(idle, up.next()).await else {
                tracing::warn!(
                    idle_ms = idle.as_millis() as u64,
                    "Anthropic upstream stream silent for too long, ended"
                );
                return fail(scan, "upstream stopped sending");
            };
            match next {
                Some(Ok(bytes)) => {
                    let events = scan.feed(&bytes);
                    if !events.is_empty() {
                        return Some((Ok(events), (up, scan)));
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!("Anthropic upstream stream failed: {e}");
                    return fail(scan, "upstream connection lost");
                }
                None if scan.meter.completed || scan.meter.errored => return None,
                None => {
                    tracing::warn!("Anthropic upstream stream ended before message_stop");
                    return fail(scan, "upstream stream ended unexpectedly");
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::upstream::StreamOutcome;

    /// Runs `events` (SSE frames) through `track`, reading `read` chunks before dropping the
    /// stream; returns what it reported.
    fn outcome(events: &[&str], read: usize) -> StreamOutcome {
        run(events, false, read).0
    }

    /// Like [`outcome`]; with `stall`, the upstream goes silent after `events`. Also returns what
    /// the client read.
    fn run(events: &[&str], stall: bool, read: usize) -> (StreamOutcome, Vec<String>) {
        let chunks: Vec<reqwest::Result<Bytes>> = events
            .iter()
            .map(|e| Ok(Bytes::from(e.to_string())))
            .collect();
        let upstream = futures_util::stream::iter(chunks);
        let upstream = if stall {
            upstream.chain(futures_util::stream::pending()).boxed()
        } else {
            upstream.boxed()
        };
        let seen = Arc::new(Mutex::new(None));
        let sink = seen.clone();
        let end: StreamEnd = Box::new(move |o| {
            if let Ok(mut s) = sink.lock() {
                *s = Some(o);
            }
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let relayed = rt.block_on(async {
            // A finite stream never waits that long; a stalled one waits exactly that long.
            let mut stream = track(upstream, Duration::from_millis(50), end);
            let mut relayed = Vec::new();
            for _ in 0..read {
                match stream.next().await {
                    Some(Ok(b)) => relayed.push(String::from_utf8_lossy(&b).into_owned()),
                    Some(Err(e)) => panic!("{e}"),
                    None => break,
                }
            }
            relayed
        });
        let got = *seen.lock().unwrap_or_else(|e| e.into_inner());
        (
            got.unwrap_or_else(|| panic!("no outcome reported")),
            relayed,
        )
    }

    const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n";
    const DELTA: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n";
    const END: &str = "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":40}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn a_finished_stream_reports_the_upstream_count() {
        let o = outcome(&[START, DELTA, DELTA, END], 4);
        assert!(o.completed);
        assert_eq!((o.usage.input_tokens, o.usage.output_tokens), (12, 40));
    }

    #[test]
    fn an_abandoned_stream_reports_what_it_relayed() {
        let o = outcome(&[START, DELTA, DELTA, DELTA, END], 4);
        assert!(!o.completed);
        assert_eq!((o.usage.input_tokens, o.usage.output_tokens), (12, 3));
    }

    #[test]
    fn a_silent_upstream_ends_the_stream_with_an_error() {
        let (o, relayed) = run(&[START, DELTA], true, 10);
        assert_eq!(relayed.len(), 3, "{relayed:?}");
        assert!(relayed[2].starts_with("event: error\n"), "{relayed:?}");
        assert!(relayed[2].contains("upstream stopped sending"));
        assert!(o.errored && !o.completed);
        assert_eq!((o.usage.input_tokens, o.usage.output_tokens), (12, 1));
    }

    #[test]
    fn events_are_relayed_whole_and_an_error_never_lands_inside_one() {
        // An event split across three chunks comes out once, whole.
        let (half, rest) = DELTA.split_at(30);
        let (rest, last) = rest.split_at(rest.len() - 1);
        let (o, relayed) = run(&[START, half, rest, last, END], false, 10);
        assert_eq!(relayed, [START, DELTA, END]);
        assert!(o.completed);
        // Silence in the middle of an event: the part sent is dropped, the error is an event.
        let (o, relayed) = run(&[START, half], true, 10);
        assert_eq!(relayed.len(), 2, "{relayed:?}");
        assert_eq!(relayed[0], START);
        assert!(
            relayed[1].starts_with("event: error\ndata: {"),
            "{relayed:?}"
        );
        assert!(o.errored);
    }

    #[test]
    fn an_upstream_that_closes_before_message_stop_gets_an_error_event() {
        let (o, relayed) = run(&[START, DELTA], false, 10);
        assert_eq!(relayed.len(), 3, "{relayed:?}");
        assert!(relayed[2].contains("upstream stream ended unexpectedly"));
        assert!(o.errored && !o.completed);
        // An upstream error event ends the stream as it is.
        let err = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let (o, relayed) = run(&[START, err], false, 10);
        assert_eq!(relayed, [START, err]);
        assert!(o.errored);
    }

    #[test]
    fn an_event_too_large_to_hold_passes_through() {
        let big = format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
            "x".repeat(MAX_HELD + 10)
        );
        let (head, tail) = big.split_at(MAX_HELD + 5);
        let (o, relayed) = run(&[START, head, tail, END], false, 10);
        assert_eq!(relayed.concat(), format!("{START}{big}{END}"));
        assert!(relayed.len() >= 4, "the large event was not held whole");
        assert!(o.completed);
        assert_eq!(o.usage.output_tokens, 40);
    }
}
