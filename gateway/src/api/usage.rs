//! Token usage as the upstream reports it: `message_start` carries the input side, each
//! `message_delta` the running output count. Spend metering reads it from here.

use serde::Serialize;
use serde_json::Value;

/// Tokens of one request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// The part of those written with the 1-hour lifetime (`cache_creation.ephemeral_1h_input_tokens`),
    /// priced at its own rate.
    pub cache_creation_1h_input_tokens: u64,
}

/// The largest count taken from an upstream's report, far above any model's context window: a
/// hostile or broken count (`u64::MAX`) bills at most this, and what it costs stays far inside
/// the store's 64-bit micro-dollars, so one answer cannot overflow a batch of settlements.
pub const MAX_COUNT: u64 = 16_000_000;

impl Usage {
    /// Takes every count present in a `usage` object, each at most [`MAX_COUNT`]; later reports
    /// win (they are cumulative).
    pub fn absorb(&mut self, usage: &Value) {
        let count = |v: Option<&Value>| v.and_then(Value::as_u64).map(|n| n.min(MAX_COUNT));
        let read = |k: &str| count(usage.get(k));
        if let Some(v) = read("input_tokens") {
            self.input_tokens = v;
        }
        if let Some(v) = read("output_tokens") {
            self.output_tokens = self.output_tokens.max(v);
        }
        if let Some(v) = read("cache_read_input_tokens") {
            self.cache_read_input_tokens = v;
        }
        if let Some(v) = read("cache_creation_input_tokens") {
            self.cache_creation_input_tokens = v;
        }
        if let Some(v) = count(usage.pointer("/cache_creation/ephemeral_1h_input_tokens")) {
            self.cache_creation_1h_input_tokens = v;
        }
    }

    /// Reads usage from one stream event.
    pub fn observe(&mut self, event: &Value) {
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                if let Some(u) = event.pointer("/message/usage") {
                    self.absorb(u);
                }
            }
            Some("message_delta") => {
                if let Some(u) = event.get("usage") {
                    self.absorb(u);
                }
            }
            _ => {}
        }
    }

    /// Reads usage from a complete (non-streaming) message.
    pub fn from_message(message: &Value) -> Usage {
        let mut u = Usage::default();
        if let Some(usage) = message.get("usage") {
            u.absorb(usage);
        }
        u
    }
}

/// What a stream relayed of its content, for billing a stream that ended before the upstream's
/// final count (the client left, or the upstream broke): the output count reported so far is
/// only the one in `message_start`, while the client may have received many deltas.
#[derive(Debug, Default, Clone, Copy)]
pub struct Delivered {
    deltas: u64,
    payload_bytes: u64,
    /// The upstream sent its final output count (a `message_delta` with usage).
    counted: bool,
}

/// The JSON around a delta's payload: `{"type":"content_block_delta","index":0,"delta":
/// {"type":"text_delta","text":""}}`.
const DELTA_ENVELOPE: usize = 80;

/// Bytes of delta payload per output token: the usual rule of thumb for English text and code.
const BYTES_PER_TOKEN: u64 = 4;

impl Delivered {
    /// Counts one relayed `content_block_delta` event, given its JSON's length.
    pub fn delta(&mut self, json_len: usize) {
        self.deltas += 1;
        self.payload_bytes += json_len.saturating_sub(DELTA_ENVELOPE) as u64;
    }

    /// Notes that the upstream sent its output count in a `message_delta`.
    pub fn counted(&mut self) {
        self.counted = true;
    }

    /// The output tokens to bill: what the upstream reported when the stream completed with its
    /// final count, else at least one token per relayed delta, or one per four bytes of their
    /// payload if more (a stream that completed without a count is billed like one cut short,
    /// not for the one token of its `message_start`).
    pub fn output_tokens(&self, reported: u64, completed: bool) -> u64 {
        if completed && self.counted {
            return reported;
        }
        reported
            .max(self.deltas)
            .max(self.payload_bytes.div_ceil(BYTES_PER_TOKEN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_usage_accumulates() {
        let mut u = Usage::default();
        u.observe(&json!({"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1,"cache_read_input_tokens":100,"cache_creation_input_tokens":7}}}));
        u.observe(&json!({"type":"content_block_delta","delta":{"text":"hi"}}));
        u.observe(&json!({"type":"message_delta","usage":{"output_tokens":40}}));
        assert_eq!(
            u,
            Usage {
                input_tokens: 12,
                output_tokens: 40,
                cache_read_input_tokens: 100,
                cache_creation_input_tokens: 7,
                cache_creation_1h_input_tokens: 0,
            }
        );
    }

    #[test]
    fn a_count_past_any_context_window_is_taken_as_the_most_there_can_be() {
        let mut u = Usage::default();
        u.observe(&json!({"type":"message_start","message":{"usage":{"input_tokens":u64::MAX,"output_tokens":1,"cache_read_input_tokens":u64::MAX,"cache_creation_input_tokens":u64::MAX,"cache_creation":{"ephemeral_1h_input_tokens":u64::MAX}}}}));
        u.observe(&json!({"type":"message_delta","usage":{"output_tokens":u64::MAX}}));
        assert_eq!(
            u,
            Usage {
                input_tokens: MAX_COUNT,
                output_tokens: MAX_COUNT,
                cache_read_input_tokens: MAX_COUNT,
                cache_creation_input_tokens: MAX_COUNT,
                cache_creation_1h_input_tokens: MAX_COUNT,
            }
        );
        // What the most of every count costs at the dearest price stays inside i64 micro-dollars,
        // summed over a batch of a thousand such answers.
        let dearest_micros_per_token: u64 = 1_000;
        let one = 5 * MAX_COUNT * dearest_micros_per_token;
        assert!(one.checked_mul(1_024).is_some_and(|b| b < i64::MAX as u64));
    }

    #[test]
    fn an_unfinished_stream_bills_what_it_relayed() {
        let mut d = Delivered::default();
        let short = json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}).to_string();
        let long = json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x".repeat(400)}}).to_string();
        // A completed stream bills the upstream's final count, whatever was relayed...
        d.delta(short.len());
        for _ in 0..50 {
            d.delta(short.len());
        }
        let mut counted = d;
        counted.counted();
        assert_eq!(counted.output_tokens(40, true), 40);
        // ...but one that never sent it is billed for what it relayed, not `message_start`'s 1.
        assert_eq!(d.output_tokens(1, true), 51);
        let mut d = Delivered::default();
        d.delta(short.len());
        // Unfinished: at least one token per delta...
        for _ in 0..9 {
            d.delta(short.len());
        }
        assert_eq!(d.output_tokens(1, false), 10);
        // ...or a token per four bytes of payload when deltas are long.
        d.delta(long.len());
        assert_eq!(d.output_tokens(1, false), (10 * 2 + 400_u64).div_ceil(4));
        // Never less than the upstream reported.
        assert_eq!(d.output_tokens(500, false), 500);
    }

    #[test]
    fn one_hour_cache_writes_are_read_apart() {
        let m = json!({"usage": {"input_tokens": 3, "output_tokens": 5, "cache_creation_input_tokens": 1500,
            "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000}}});
        let u = Usage::from_message(&m);
        assert_eq!(u.cache_creation_input_tokens, 1_500);
        assert_eq!(u.cache_creation_1h_input_tokens, 1_000);
    }
}
