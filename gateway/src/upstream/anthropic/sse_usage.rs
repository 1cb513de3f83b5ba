//! Reads usage out of an Anthropic SSE stream while relaying its bytes unchanged, a whole event
//! at a time: a partial event is held until its end arrives, so an in-band `error` (the upstream
//! went silent for too long, the connection broke, or it closed before `message_stop`) always
//! lands between two events, never inside one.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::api::sse;
use crate::upstream::{SseStream, StreamMeter};

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
    /// Bytes looked at while searching for event ends (each is looked at about once).
    #[cfg(test)]
    looked_at: usize,
    meter: StreamMeter,
}

impl Scan {
    fn new(meter: StreamMeter) -> Self {
        Self {
            pending: BytesMut::new(),
            searched: 0,
            passing: false,
            #[cfg(test)]
            looked_at: 0,
            meter,
        }
    }

    /// Takes a chunk; returns the events it completes, in order, or nothing while the event is
    /// unfinished. Complete events of at most [`MAX_HELD`] bytes are inspected for usage: which
    /// ones depends only on the bytes, never on how they were split, and each byte is searched
    /// about once.
    fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut done = 0;
        // An event's end may have begun in what was searched before: its first three bytes.
        let mut from = self.searched.saturating_sub(END_LEN - 1);
        loop {
            let found = find_event_end(&self.pending[from..]);
            #[cfg(test)]
            {
                self.looked_at += found.map_or(self.pending.len() - from, |(at, n)| at + n);
            }
            let Some((pos, len)) = found else {
                break;
            };
            let end = from + pos + len;
            if !self.passing && end - done <= MAX_HELD {
                inspect(&mut self.meter, &self.pending[done..end]);
            }
            self.passing = false;
            done = end;
            from = end;
        }
        let mut out = self.pending.split_to(done);
        self.searched = self.pending.len();
        if self.pending.len() > MAX_HELD {
            // Too long to hold: pass it on as it comes, keeping the bytes that may be the first
            // part of the event's end.
            let keep = end_begun(&self.pending);
            let tail = self.pending.split_off(self.pending.len() - keep);
            out.unsplit(std::mem::replace(&mut self.pending, tail));
            self.passing = true;
            self.searched = 0;
        }
        out.freeze()
    }
}

/// The longest event end: a blank line after CRLF lines.
const END_LEN: usize = 4;

/// Where the first event ends, and the length of its end: a blank line after LF lines (`\n\n`)
/// or after CRLF lines (`\r\n\r\n`), as servers and proxies may frame SSE either way.
fn find_event_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let (Some(a), Some(b)) = (bytes.get(i), bytes.get(i + 1)) {
        match (a, b) {
            (b'\n', b'\n') => return Some((i, 2)),
            (b'\r', b'\n') if bytes.get(i + 2..i + 4) == Some(b"\r\n") => return Some((i, 4)),
            _ => i += 1,
        }
    }
    None
}

/// How many of the last bytes of `bytes` may be the beginning of an event's end.
fn end_begun(bytes: &[u8]) -> usize {
    [b"\r\n\r".as_slice(), b"\r\n", b"\r", b"\n"]
        .iter()
        .find(|p| bytes.ends_with(p))
        .map_or(0, |p| p.len())
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
                meter.observe(&v);
            }
        }
        "content_block_delta" => {
            meter.delivered.delta(data.trim().len());
            meter.tool_event(kind, data.trim().as_bytes());
        }
        "content_block_start" | "content_block_stop" => {
            meter.tool_event(kind, data.trim().as_bytes());
        }
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

/// Wraps an upstream byte stream; `idle` is the longest silence allowed between two chunks, and
/// `meter` takes what the events report.
pub fn track(upstream: Upstream, idle: Duration, meter: StreamMeter) -> SseStream {
    let scan = Scan::new(meter);
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

/// A stream end that records the outcome it is given, and where to read it.
#[cfg(test)]
fn recording_end() -> (
    crate::upstream::StreamEnd,
    std::sync::Arc<std::sync::Mutex<Option<crate::upstream::StreamOutcome>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let sink = seen.clone();
    let end: crate::upstream::StreamEnd = Box::new(move |o| {
        if let Ok(mut s) = sink.lock() {
            *s = Some(o);
        }
    });
    (end, seen)
}

#[cfg(test)]
mod tests {

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
        let (end, seen) = recording_end();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let relayed = rt.block_on(async {
            // A finite stream never waits that long; a stalled one waits exactly that long.
            let mut stream = track(
                upstream,
                Duration::from_millis(50),
                StreamMeter::new(end, true),
            );
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
        let got = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
        (
            got.unwrap_or_else(|| panic!("no outcome reported")),
            relayed,
        )
    }

    const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n";
    const DELTA: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n";
    const END: &str = "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":40}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn a_streams_tool_inputs_are_reported_at_its_end() {
        // An answer that runs the AWS CLI, its input in pieces split across chunks, and a text
        // block that mentions a tool_use.
        let text_start = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
        let text = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"aws s3 ls via tool_use\"}}\n\n";
        let tool = "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
            event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Bash\",\"input\":{}}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"command\\\": \\\"aws s3 \"}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ls s3://payments-reports/\\\"}\"}}\n\n\
            event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n";
        let (a, b) = tool.split_at(300);
        let o = outcome(&[START, text_start, text, a, b, END], 10);
        assert!(o.completed);
        assert_eq!(
            o.tool_uses,
            vec!["aws s3 ls s3://payments-reports/".to_owned()]
        );
        // Without tool calls, nothing.
        assert!(outcome(&[START, DELTA, END], 10).tool_uses.is_empty());
    }

    #[test]
    fn events_framed_with_crlf_lines_are_read_as_well() {
        let lf = [
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":33}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ];
        let crlf: Vec<String> = lf.iter().map(|e| e.replace('\n', "\r\n")).collect();
        let crlf: Vec<&str> = crlf.iter().map(String::as_str).collect();
        let (o, read) = run(&crlf, false, usize::MAX);
        assert_eq!(
            (
                o.usage.input_tokens,
                o.usage.output_tokens,
                o.completed,
                o.errored
            ),
            (12, 33, true, false)
        );
        assert_eq!(read.concat(), crlf.concat(), "relayed byte for byte");
        // Cut anywhere, the same.
        let whole = crlf.concat();
        for piece in [1, 2, 3, 5] {
            let chunks: Vec<&str> = whole
                .as_bytes()
                .chunks(piece)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let (o, read) = run(&chunks, false, usize::MAX);
            assert_eq!(read.concat(), whole, "chunks of {piece}");
            assert_eq!(
                (o.usage.output_tokens, o.completed),
                (33, true),
                "chunks of {piece}"
            );
        }
    }

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

#[cfg(test)]
mod props {
    //! Whatever the upstream sends and however it is split into chunks: the bytes pass through
    //! unchanged, nothing panics, and the usage reported is the same for every split.

    use proptest::prelude::*;

    use super::*;
    use crate::api::usage::Delivered;
    use crate::upstream::StreamOutcome;

    /// Whether `out` is a faithful relay of `bytes`: every complete event as it came (an
    /// unfinished last event is dropped), then nothing or the relay's own error saying the stream
    /// ended unexpectedly.
    fn relays(bytes: &[u8], out: &[u8]) -> bool {
        // Event ends found the way a reader finds them: front to back, never overlapping, a
        // blank line after LF or after CRLF lines, whichever starts first.
        let next_end = |b: &[u8]| {
            let lf = b.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
            let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| (p, 4));
            [lf, crlf].into_iter().flatten().min()
        };
        let mut whole = 0;
        while let Some((at, n)) = next_end(&bytes[whole..]) {
            whole += at + n;
        }
        let ended = sse::error("api_error", "upstream stream ended unexpectedly");
        out.strip_prefix(&bytes[..whole])
            .is_some_and(|rest| rest.is_empty() || rest == &ended[..])
    }

    /// Relays `chunks` through `track` to the end; returns the bytes relayed and the outcome.
    fn relay(chunks: &[Vec<u8>]) -> (Vec<u8>, StreamOutcome) {
        let items: Vec<reqwest::Result<Bytes>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let (end, seen) = recording_end();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let out = rt.block_on(async {
            let mut stream = track(
                futures_util::stream::iter(items).boxed(),
                Duration::from_secs(60),
                StreamMeter::new(end, true),
            );
            let mut out = Vec::new();
            while let Some(Ok(b)) = stream.next().await {
                out.extend_from_slice(&b);
            }
            out
        });
        let got = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
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
                Event::MessageDelta(o) => {
                    output = output.max(*o);
                    delivered.counted();
                }
                Event::Stop => completed = true,
                Event::Error => errored = true,
                Event::Ping | Event::Comment | Event::Unknown(_) => {}
            }
        }
        // A stream that ends before `message_stop` ends with the relay's own error.
        (
            input,
            delivered.output_tokens(output, completed),
            cached,
            completed,
            errored || !completed,
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
            prop_assert!(relays(&bytes, &out));
            prop_assert_eq!(summary(&whole), expected(&events));
            let (out_cut, cut) = relay(&split(&bytes, &cuts));
            prop_assert!(out_cut == out, "the relay depends on the split");
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
            prop_assert!(relays(&bytes, &out));
            let (out_cut, cut) = relay(&split(&bytes, &cuts));
            prop_assert!(out_cut == out, "the relay depends on the split");
            prop_assert_eq!(summary(&cut), summary(&whole));
            // One byte at a time, too.
            let singles: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
            let (out_single, single) = relay(&singles);
            prop_assert!(out_single == out, "the relay depends on the split");
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
            let mut scan = Scan::new(StreamMeter::new(Box::new(|_| {}), false));
            for c in &chunks {
                scan.feed(c);
            }
            // Each byte once, plus the bytes kept back at each chunk boundary.
            prop_assert!(scan.looked_at <= bytes.len() + (END_LEN - 1) * chunks.len(), "{} looked at for {} bytes", scan.looked_at, bytes.len());
        }
    }

    /// An event larger than the scan reads, cut in `piece`-byte chunks, then a usage report.
    fn oversized(piece: usize) -> StreamOutcome {
        let mut bytes = b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":999},\"pad\":\"".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', MAX_HELD + MAX_HELD / 2));
        bytes.extend_from_slice(b"\"}\n\n");
        bytes.extend_from_slice(Event::MessageDelta(7).text().as_bytes());
        let chunks: Vec<Vec<u8>> = bytes.chunks(piece).map(<[u8]>::to_vec).collect();
        let (out, o) = relay(&chunks);
        assert!(relays(&bytes, &out));
        o
    }

    #[test]
    fn an_oversized_event_is_skipped_whatever_the_split() {
        let whole = oversized(usize::MAX);
        assert_eq!(whole.usage.output_tokens, 7);
        for piece in [1 << 10, 64 << 10, MAX_HELD - 1, MAX_HELD + 1] {
            assert_eq!(
                summary(&oversized(piece)),
                summary(&whole),
                "chunks of {piece}"
            );
        }
    }
}
