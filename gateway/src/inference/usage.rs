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
                cache_creation_input_tokens: 7
            }
        );
    }
}
