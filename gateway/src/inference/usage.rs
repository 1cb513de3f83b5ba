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

impl Usage {
    /// Takes every count present in a `usage` object; later reports win (they are cumulative).
    pub fn absorb(&mut self, usage: &Value) {
        let read = |k: &str| usage.get(k).and_then(Value::as_u64);
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
        if let Some(v) = usage
            .pointer("/cache_creation/ephemeral_1h_input_tokens")
            .and_then(Value::as_u64)
        {
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

    /// The output tokens to bill: what the upstream reported when the stream completed, else at
    /// least one token per relayed delta, or one per four bytes of their payload if more.
    pub fn output_tokens(&self, reported: u64, completed: bool) -> u64 {
        if completed {
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
    fn an_unfinished_stream_bills_what_it_relayed() {
        let mut d = Delivered::default();
        let short = json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}).to_string();
        let long = json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x".repeat(400)}}).to_string();
        // A completed stream bills the upstream's count, whatever was relayed.
        d.delta(short.len());
        assert_eq!(d.output_tokens(40, true), 40);
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
