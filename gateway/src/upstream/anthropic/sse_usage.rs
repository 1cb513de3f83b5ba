//! Reads usage out of an Anthropic SSE stream while passing its bytes through untouched, and ends
//! a stream whose upstream stays silent too long with an in-band `error`.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::upstream::{SseStream, StreamEnd, StreamMeter};

struct Scan {
    pending: Vec<u8>,
    meter: StreamMeter,
}

impl Scan {
    /// Feeds bytes; complete events (`\n\n`-terminated) are inspected for usage.
    fn feed(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        while let Some(pos) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = self.pending.drain(..pos + 2).collect();
            self.inspect(&event);
        }
        if self.pending.len() > 1 << 20 {
            // A single event this large carries no usage we need; do not hold it.
            self.pending.clear();
        }
    }

    fn inspect(&mut self, event: &[u8]) {
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
                    self.meter.usage.observe(&v);
                }
            }
            "content_block_delta" => self.meter.delivered.delta(data.trim().len()),
            "message_stop" => self.meter.completed = true,
            "error" => self.meter.errored = true,
            _ => {}
        }
    }
}

/// Wraps an upstream byte stream; `idle` is the longest silence allowed between two chunks.
pub fn track(
    upstream: BoxStream<'static, reqwest::Result<Bytes>>,
    idle: Duration,
    end: StreamEnd,
) -> SseStream {
    let scan = Scan {
        pending: Vec::new(),
        meter: StreamMeter::new(end),
    };
    futures_util::stream::unfold((upstream, scan), move |(mut up, mut scan)| async move {
        let Ok(next) = tokio::time::timeout(idle, up.next()).await else {
            scan.meter.errored = true;
            tracing::warn!(
                idle_ms = idle.as_millis() as u64,
                "Anthropic upstream stream silent for too long, ended"
            );
            return Some((
                Ok(crate::inference::sse::error(
                    "api_error",
                    "upstream stopped sending",
                )),
                (futures_util::stream::empty().boxed(), scan),
            ));
        };
        match next {
            Some(Ok(bytes)) => {
                scan.feed(&bytes);
                Some((Ok(bytes), (up, scan)))
            }
            Some(Err(e)) => {
                scan.meter.errored = true;
                tracing::warn!("Anthropic upstream stream failed: {e}");
                Some((
                    Ok(crate::inference::sse::error(
                        "api_error",
                        "upstream connection lost",
                    )),
                    (futures_util::stream::empty().boxed(), scan),
                ))
            }
            None => None,
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
}
