//! Reads usage out of an Anthropic SSE stream while passing its bytes through untouched.

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

/// Wraps an upstream byte stream.
pub fn track(upstream: BoxStream<'static, reqwest::Result<Bytes>>, end: StreamEnd) -> SseStream {
    let scan = Scan {
        pending: Vec::new(),
        meter: StreamMeter::new(end),
    };
    futures_util::stream::unfold((upstream, scan), |(mut up, mut scan)| async move {
        match up.next().await {
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
