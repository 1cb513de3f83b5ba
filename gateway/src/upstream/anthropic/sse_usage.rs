//! Reads usage out of an Anthropic SSE stream while passing its bytes through untouched.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::upstream::{SseStream, StreamEnd, StreamMeter};

/// An event longer than this is relayed but not read: usage events are small, and a scan must not
/// hold an unbounded event in memory.
const MAX_EVENT: usize = 1 << 20;

struct Scan {
    /// The start of the event being received.
    pending: Vec<u8>,
    /// How much of `pending` is known to hold no event end.
    searched: usize,
    /// The event being received is longer than [`MAX_EVENT`]: its bytes are dropped until it ends.
    skipping: bool,
    /// Bytes looked at while searching for event ends (each is looked at about once).
    #[cfg(test)]
    looked_at: usize,
    meter: StreamMeter,
}

impl Scan {
    fn new(meter: StreamMeter) -> Self {
        Self {
            pending: Vec::new(),
            searched: 0,
            skipping: false,
            #[cfg(test)]
            looked_at: 0,
            meter,
        }
    }

    /// Feeds bytes; complete events (`\n\n`-terminated) of at most [`MAX_EVENT`] bytes are
    /// inspected for usage. Which events are inspected depends only on the bytes, never on how
    /// they were split into chunks, and each byte is searched once.
    fn feed(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        loop {
            let from = self.searched.max(start);
            let found = self.pending[from..].windows(2).position(|w| w == b"\n\n");
            #[cfg(test)]
            {
                self.looked_at += found.map_or(self.pending.len() - from, |at| at + 2);
            }
            let Some(at) = found else {
                break;
            };
            let end = from + at + 2;
            if !self.skipping && end - start <= MAX_EVENT {
                let event = std::mem::take(&mut self.pending);
                self.inspect(&event[start..end]);
                self.pending = event;
            }
            self.skipping = false;
            start = end;
            self.searched = end;
        }
        self.pending.drain(..start);
        // The last byte may be the first half of an event end.
        self.searched = self.pending.len().saturating_sub(1);
        if self.pending.len() > MAX_EVENT {
            // Too long to read: drop it, keeping its last byte for the same reason.
            let last = self.pending.len() - 1;
            self.pending.drain(..last);
            self.searched = 0;
            self.skipping = true;
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
    let scan = Scan::new(StreamMeter::new(end));
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::upstream::StreamOutcome;

    /// Runs `events` (SSE frames) through `track`, reading `read` chunks before dropping the
    /// stream; returns what it reported.
    fn outcome(events: &[&str], read: usize) -> StreamOutcome {
        let chunks: Vec<reqwest::Result<Bytes>> = events
            .iter()
            .map(|e| Ok(Bytes::from(e.to_string())))
            .collect();
        let seen = Arc::new(Mutex::new(None));
        let sink = seen.clone();
        let end: StreamEnd = Box::new(move |o| {
            if let Ok(mut s) = sink.lock() {
                *s = Some(o);
            }
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            let mut stream = track(futures_util::stream::iter(chunks).boxed(), end);
            for _ in 0..read {
                let _ = stream.next().await;
            }
        });
        let got = *seen.lock().unwrap_or_else(|e| e.into_inner());
        got.unwrap_or_else(|| panic!("no outcome reported"))
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
}

#[cfg(test)]
mod props {
    //! Whatever the upstream sends and however it is split into chunks: the bytes pass through
    //! unchanged, nothing panics, and the usage reported is the same for every split.

    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;

    use super::*;
    use crate::inference::usage::Delivered;
    use crate::upstream::StreamOutcome;

    /// Relays `chunks` through `track` to the end; returns the bytes relayed and the outcome.
    fn relay(chunks: &[Vec<u8>]) -> (Vec<u8>, StreamOutcome) {
        let items: Vec<reqwest::Result<Bytes>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let seen = Arc::new(Mutex::new(None));
        let sink = seen.clone();
        let end: StreamEnd = Box::new(move |o| {
            if let Ok(mut s) = sink.lock() {
                *s = Some(o);
            }
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let out = rt.block_on(async {
            let mut stream = track(futures_util::stream::iter(items).boxed(), end);
            let mut out = Vec::new();
            while let Some(Ok(b)) = stream.next().await {
                out.extend_from_slice(&b);
            }
            out
        });
        let got = *seen.lock().unwrap_or_else(|e| e.into_inner());
        (out, got.unwrap_or_else(|| panic!("no outcome reported")))
    }

    /// `bytes` cut at `cuts` (positions, in any order).
    fn split(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
    }

    #[derive(Debug, Clone)]
    enum Event {
        Start {
            input: u64,
            output: u64,
            cached: u64,
        },
        Delta(String),
        MessageDelta(u64),
        Stop,
        Error,
        Ping,
        Comment,
        Unknown(String),
    }

    impl Event {
        fn text(&self) -> String {
            let frame =
                |kind: &str, data: serde_json::Value| format!("event: {kind}\ndata: {data}\n\n");
            match self {
                Event::Start {
                    input,
                    output,
                    cached,
                } => frame(
                    "message_start",
                    serde_json::json!({"type": "message_start", "message": {"usage": {"input_tokens": input, "output_tokens": output, "cache_read_input_tokens": cached}}}),
                ),
                Event::Delta(t) => frame(
                    "content_block_delta",
                    serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}),
                ),
                Event::MessageDelta(n) => frame(
                    "message_delta",
                    serde_json::json!({"type": "message_delta", "usage": {"output_tokens": n}}),
                ),
                Event::Stop => frame("message_stop", serde_json::json!({"type": "message_stop"})),
                Event::Error => frame(
                    "error",
                    serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ),
                Event::Ping => frame("ping", serde_json::json!({"type": "ping"})),
                Event::Comment => ": keep-alive\n\n".to_owned(),
                Event::Unknown(k) => frame(k, serde_json::json!({"type": k})),
            }
        }
    }

    fn event() -> impl Strategy<Value = Event> {
        let n = 0u64..1_000_000;
        prop_oneof![
            1 => (n.clone(), n.clone(), n.clone()).prop_map(|(input, output, cached)| Event::Start { input, output, cached }),
            4 => ".{0,200}".prop_map(Event::Delta),
            1 => n.prop_map(Event::MessageDelta),
            1 => Just(Event::Stop),
            1 => Just(Event::Error),
            1 => Just(Event::Ping),
            1 => Just(Event::Comment),
            1 => "[a-z_]{1,12}".prop_map(Event::Unknown),
        ]
    }

    /// What a stream of well-formed events must report.
    fn expected(events: &[Event]) -> (u64, u64, u64, bool, bool) {
        let (mut input, mut output, mut cached) = (0, 0, 0);
        let mut delivered = Delivered::default();
        let (mut completed, mut errored) = (false, false);
        for e in events {
            match e {
                Event::Start {
                    input: i,
                    output: o,
                    cached: c,
                } => {
                    input = *i;
                    output = output.max(*o);
                    cached = *c;
                }
                Event::Delta(_) => {
                    let text = e.text();
                    let data = text
                        .lines()
                        .nth(1)
                        .and_then(|l| l.strip_prefix("data:"))
                        .unwrap_or_default();
                    delivered.delta(data.trim().len());
                }
                Event::MessageDelta(o) => output = output.max(*o),
                Event::Stop => completed = true,
                Event::Error => errored = true,
                Event::Ping | Event::Comment | Event::Unknown(_) => {}
            }
        }
        (
            input,
            delivered.output_tokens(output, completed),
            cached,
            completed,
            errored,
        )
    }

    fn summary(o: &StreamOutcome) -> (u64, u64, u64, bool, bool) {
        (
            o.usage.input_tokens,
            o.usage.output_tokens,
            o.usage.cache_read_input_tokens,
            o.completed,
            o.errored,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn well_formed_events_report_the_same_whatever_the_split(
            events in prop::collection::vec(event(), 0..24),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..32),
        ) {
            let bytes: Vec<u8> = events.iter().flat_map(|e| e.text().into_bytes()).collect();
            let (out, whole) = relay(std::slice::from_ref(&bytes));
            prop_assert_eq!(&out, &bytes);
            prop_assert_eq!(summary(&whole), expected(&events));
            let (out, cut) = relay(&split(&bytes, &cuts));
            prop_assert_eq!(&out, &bytes);
            prop_assert_eq!(summary(&cut), summary(&whole));
        }

        #[test]
        fn any_bytes_pass_through_and_report_the_same_whatever_the_split(
            parts in prop::collection::vec(prop_oneof![
                event().prop_map(|e| e.text().into_bytes()),
                prop::collection::vec(any::<u8>(), 0..64),
                prop::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b':'), any::<u8>()], 0..16),
                Just(b"data: {\"type\":\"message_delta\"".to_vec()),
                Just(b"event: message_start\n".to_vec()),
            ], 0..24),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..32),
        ) {
            let bytes = parts.concat();
            let (out, whole) = relay(std::slice::from_ref(&bytes));
            prop_assert_eq!(&out, &bytes);
            let (out, cut) = relay(&split(&bytes, &cuts));
            prop_assert_eq!(&out, &bytes);
            prop_assert_eq!(summary(&cut), summary(&whole));
            // One byte at a time, too.
            let singles: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
            let (out, single) = relay(&singles);
            prop_assert_eq!(&out, &bytes);
            prop_assert_eq!(summary(&single), summary(&whole));
        }

        #[test]
        fn each_byte_is_searched_about_once(
            runs in prop::collection::vec((1usize..64, any::<bool>()), 0..128),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..256),
        ) {
            // Runs of newlines and of other bytes: event ends, near-ends and long events.
            let bytes: Vec<u8> = runs
                .iter()
                .flat_map(|(n, newline)| std::iter::repeat_n(if *newline { b'\n' } else { b'a' }, *n))
                .collect();
            let chunks = split(&bytes, &cuts);
            let mut scan = Scan::new(StreamMeter::new(Box::new(|_| {})));
            for c in &chunks {
                scan.feed(c);
            }
            // Each byte once, plus the byte kept back at each chunk boundary.
            prop_assert!(scan.looked_at <= bytes.len() + chunks.len(), "{} looked at for {} bytes", scan.looked_at, bytes.len());
        }
    }

    /// An event larger than the scan reads, cut in `piece`-byte chunks, then a usage report.
    fn oversized(piece: usize) -> StreamOutcome {
        let mut bytes = b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":999},\"pad\":\"".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', MAX_EVENT + MAX_EVENT / 2));
        bytes.extend_from_slice(b"\"}\n\n");
        bytes.extend_from_slice(Event::MessageDelta(7).text().as_bytes());
        let chunks: Vec<Vec<u8>> = bytes.chunks(piece).map(<[u8]>::to_vec).collect();
        let (out, o) = relay(&chunks);
        assert_eq!(out, bytes);
        o
    }

    #[test]
    fn an_oversized_event_is_skipped_whatever_the_split() {
        let whole = oversized(usize::MAX);
        assert_eq!(whole.usage.output_tokens, 7);
        for piece in [1 << 10, 64 << 10, MAX_EVENT - 1, MAX_EVENT + 1] {
            assert_eq!(
                summary(&oversized(piece)),
                summary(&whole),
                "chunks of {piece}"
            );
        }
    }
}
