//! Scripted answers: Anthropic stream events, and the complete message they add up to.

use std::time::Duration;

use serde_json::{json, Map, Value};

/// A successful answer, as the Anthropic stream events Bedrock would send for it. For
/// InvokeModel the double answers with [`message_from_events`] of the same events.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// `message_start`, `content_block_start`, `content_block_delta`, `content_block_stop`,
    /// `message_delta`, `message_stop`, in order.
    pub events: Vec<Value>,
    /// Pause between two stream chunks.
    pub delay_between: Duration,
    /// Pause before the first chunk (and, for InvokeModel, before the answer).
    pub first_delay: Duration,
}

/// The invocation metrics Bedrock appends to the final `message_stop` event.
pub fn invocation_metrics(
    input_tokens: u64,
    output_tokens: u64,
    invocation_latency_ms: u64,
    first_byte_latency_ms: u64,
) -> Value {
    json!({
        "inputTokenCount": input_tokens,
        "outputTokenCount": output_tokens,
        "invocationLatency": invocation_latency_ms,
        "firstByteLatency": first_byte_latency_ms,
    })
}

fn message_start(id: &str, model: &str, usage: Value) -> Value {
    json!({
        "type": "message_start",
        "message": {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage,
        }
    })
}

/// Splits text the way a model streams it: word by word, spaces kept.
fn pieces(text: &str) -> Vec<&str> {
    let v: Vec<&str> = text.split_inclusive(' ').collect();
    if v.is_empty() {
        vec![""]
    } else {
        v
    }
}

impl Reply {
    /// A one-block text answer, streamed word by word, ending with `end_turn`.
    pub fn text(model: &str, text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        let mut events = vec![
            message_start(
                "msg_bdrk_01TextReply",
                model,
                json!({"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}),
            ),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ];
        for piece in pieces(text) {
            events.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}));
        }
        events.push(json!({"type": "content_block_stop", "index": 0}));
        events.push(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}));
        events.push(json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": invocation_metrics(input_tokens, output_tokens, 42, 7)}));
        Reply {
            events,
            delay_between: Duration::ZERO,
            first_delay: Duration::ZERO,
        }
    }

    /// A builder for answers of several blocks (thinking, text, tool calls) with cache usage.
    pub fn builder(model: &str) -> ReplyBuilder {
        ReplyBuilder {
            model: model.to_owned(),
            id: "msg_bdrk_01MultiBlock".to_owned(),
            input_tokens: 0,
            output_tokens: 0,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 0,
            blocks: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
        }
    }

    /// A ready-made multi-block answer: thinking with its signature, text, then a `Bash` tool
    /// call whose input arrives in pieces; stops for `tool_use`, with cache reads and writes.
    pub fn multi_block(model: &str) -> Reply {
        Reply::builder(model)
            .usage(120, 87)
            .cache(1000, 50)
            .thinking("The user wants a file listing.", "EqQBCkYIARgCIkB")
            .text("Listing the directory.")
            .tool_use_pieces("toolu_01", "Bash", &["{\"command\": ", "\"ls -la\"", "}"])
            .build()
    }

    /// The same answer, paced: `first` before the first chunk, `between` between chunks.
    pub fn with_delays(mut self, first: Duration, between: Duration) -> Reply {
        self.first_delay = first;
        self.delay_between = between;
        self
    }

    /// The model named in `message_start`.
    pub fn model(&self) -> Option<&str> {
        self.events
            .first()
            .and_then(|e| e.pointer("/message/model"))
            .and_then(Value::as_str)
    }
}

#[derive(Clone, Debug)]
enum Block {
    Thinking {
        text: String,
        signature: String,
    },
    Text(String),
    ToolUse {
        id: String,
        name: String,
        pieces: Vec<String>,
    },
}

/// Builds a multi-block [`Reply`]; see [`Reply::builder`].
#[derive(Clone, Debug)]
pub struct ReplyBuilder {
    model: String,
    id: String,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
    blocks: Vec<Block>,
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
}

impl ReplyBuilder {
    /// The message id (`msg_bdrk_...`).
    pub fn id(mut self, id: &str) -> Self {
        self.id = id.to_owned();
        self
    }

    /// Input and output token counts.
    pub fn usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        self.input_tokens = input_tokens;
        self.output_tokens = output_tokens;
        self
    }

    /// Prompt-cache reads and writes.
    pub fn cache(mut self, read_input_tokens: u64, creation_input_tokens: u64) -> Self {
        self.cache_read_input_tokens = read_input_tokens;
        self.cache_creation_input_tokens = creation_input_tokens;
        self
    }

    /// A thinking block, streamed word by word, then its `signature_delta`.
    pub fn thinking(mut self, text: &str, signature: &str) -> Self {
        self.blocks.push(Block::Thinking {
            text: text.to_owned(),
            signature: signature.to_owned(),
        });
        self
    }

    /// A text block, streamed word by word.
    pub fn text(mut self, text: &str) -> Self {
        self.blocks.push(Block::Text(text.to_owned()));
        self
    }

    /// A tool call whose input (a JSON object) streams in three `input_json_delta` pieces.
    pub fn tool_use(self, id: &str, name: &str, input: &Value) -> Self {
        let s = input.to_string();
        let chars: Vec<char> = s.chars().collect();
        let third = chars.len().div_ceil(3).max(1);
        let parts: Vec<String> = chars.chunks(third).map(|c| c.iter().collect()).collect();
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        self.tool_use_pieces(id, name, &refs)
    }

    /// A tool call whose input streams as exactly these `partial_json` pieces.
    pub fn tool_use_pieces(mut self, id: &str, name: &str, pieces: &[&str]) -> Self {
        self.blocks.push(Block::ToolUse {
            id: id.to_owned(),
            name: name.to_owned(),
            pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
        });
        self
    }

    /// The stop reason; by default `tool_use` when there is a tool call, else `end_turn`.
    pub fn stop_reason(mut self, reason: &str) -> Self {
        self.stop_reason = Some(reason.to_owned());
        self
    }

    /// A stop sequence (and stop reason `stop_sequence`).
    pub fn stop_sequence(mut self, sequence: &str) -> Self {
        self.stop_sequence = Some(sequence.to_owned());
        self.stop_reason = Some("stop_sequence".to_owned());
        self
    }

    pub fn build(self) -> Reply {
        let usage = |output: u64| {
            json!({
                "input_tokens": self.input_tokens,
                "cache_creation_input_tokens": self.cache_creation_input_tokens,
                "cache_read_input_tokens": self.cache_read_input_tokens,
                "output_tokens": output,
            })
        };
        let mut events = vec![message_start(&self.id, &self.model, usage(1))];
        let mut has_tool = false;
        for (index, block) in self.blocks.iter().enumerate() {
            let delta =
                |d: Value| json!({"type": "content_block_delta", "index": index, "delta": d});
            match block {
                Block::Thinking { text, signature } => {
                    events.push(json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}));
                    for p in pieces(text) {
                        events.push(delta(json!({"type": "thinking_delta", "thinking": p})));
                    }
                    events.push(delta(
                        json!({"type": "signature_delta", "signature": signature}),
                    ));
                }
                Block::Text(text) => {
                    events.push(json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}));
                    for p in pieces(text) {
                        events.push(delta(json!({"type": "text_delta", "text": p})));
                    }
                }
                Block::ToolUse { id, name, pieces } => {
                    has_tool = true;
                    events.push(json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}));
                    for p in pieces {
                        events.push(delta(
                            json!({"type": "input_json_delta", "partial_json": p}),
                        ));
                    }
                }
            }
            events.push(json!({"type": "content_block_stop", "index": index}));
        }
        let stop_reason = self
            .stop_reason
            .clone()
            .unwrap_or_else(|| if has_tool { "tool_use" } else { "end_turn" }.to_owned());
        events.push(json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": self.stop_sequence},
            "usage": usage(self.output_tokens),
        }));
        let mut metrics = invocation_metrics(self.input_tokens, self.output_tokens, 900, 300);
        if self.cache_read_input_tokens > 0 {
            metrics["cacheReadInputTokenCount"] = self.cache_read_input_tokens.into();
        }
        if self.cache_creation_input_tokens > 0 {
            metrics["cacheWriteInputTokenCount"] = self.cache_creation_input_tokens.into();
        }
        events.push(json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics}));
        Reply {
            events,
            delay_between: Duration::ZERO,
            first_delay: Duration::ZERO,
        }
    }
}

fn append_str(target: &mut Value, key: &str, more: &Value) {
    let add = more.as_str().unwrap_or_default();
    match target.get_mut(key) {
        Some(Value::String(s)) => s.push_str(add),
        _ => target[key] = Value::String(add.to_owned()),
    }
}

/// The complete (non-streaming) Messages API response a list of stream events adds up to:
/// `message_start`'s message, with the content blocks assembled from their deltas (tool inputs
/// parsed from their `partial_json` pieces), and `message_delta`'s stop reason, stop sequence and
/// usage merged in.
pub fn message_from_events(events: &[Value]) -> Value {
    let mut msg = events
        .iter()
        .find(|e| e["type"] == "message_start")
        .and_then(|e| e.get("message"))
        .cloned()
        .unwrap_or_else(|| json!({"type": "message", "role": "assistant"}));
    let mut blocks: Vec<(u64, Value, String)> = Vec::new();
    let find = |blocks: &mut Vec<(u64, Value, String)>, index: u64| -> Option<usize> {
        blocks.iter().position(|(i, _, _)| *i == index)
    };
    for e in events {
        let index = e["index"].as_u64().unwrap_or(0);
        match e["type"].as_str().unwrap_or_default() {
            "content_block_start" => {
                blocks.push((index, e["content_block"].clone(), String::new()));
            }
            "content_block_delta" => {
                let Some(at) = find(&mut blocks, index) else {
                    continue;
                };
                let (_, block, partial) = &mut blocks[at];
                let d = &e["delta"];
                match d["type"].as_str().unwrap_or_default() {
                    "text_delta" => append_str(block, "text", &d["text"]),
                    "thinking_delta" => append_str(block, "thinking", &d["thinking"]),
                    "signature_delta" => append_str(block, "signature", &d["signature"]),
                    "input_json_delta" => {
                        partial.push_str(d["partial_json"].as_str().unwrap_or_default())
                    }
                    "citations_delta" => {
                        if !block["citations"].is_array() {
                            block["citations"] = json!([]);
                        }
                        if let Some(list) = block["citations"].as_array_mut() {
                            list.push(d["citation"].clone());
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(at) = find(&mut blocks, index) {
                    let (_, block, partial) = &mut blocks[at];
                    if !partial.is_empty() {
                        block["input"] =
                            serde_json::from_str(partial).unwrap_or_else(|_| json!({}));
                    }
                }
            }
            "message_delta" => {
                if let Some(delta) = e["delta"].as_object() {
                    for (k, v) in delta {
                        msg[k] = v.clone();
                    }
                }
                if let Some(usage) = e["usage"].as_object() {
                    if !msg["usage"].is_object() {
                        msg["usage"] = Value::Object(Map::new());
                    }
                    for (k, v) in usage {
                        if !v.is_null() {
                            msg["usage"][k] = v.clone();
                        }
                    }
                }
            }
            _ => {}
        }
    }
    blocks.sort_by_key(|(i, _, _)| *i);
    msg["content"] = Value::Array(blocks.into_iter().map(|(_, b, _)| b).collect());
    msg
}

fn count_chars(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(items) => items.iter().map(count_chars).sum(),
        Value::Object(map) => map.values().map(count_chars).sum(),
        Value::Number(n) => n.to_string().len() as u64,
        Value::Bool(b) => b.to_string().len() as u64,
        Value::Null => 0,
    }
}

/// The double's CountTokens answer: a deterministic estimate, `ceil(chars / 4)`, where `chars`
/// counts the characters of every string, number and boolean value (not the keys) under
/// `system`, `messages` and `tools` of the body.
pub fn estimate_input_tokens(body: &Value) -> u64 {
    let chars: u64 = ["system", "messages", "tools"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(count_chars)
        .sum();
    chars.div_ceil(4)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn text_reply_assembles() {
        let r = Reply::text("m", "Hello there world", 10, 5);
        let m = message_from_events(&r.events);
        assert_eq!(
            m["content"],
            json!([{"type": "text", "text": "Hello there world"}])
        );
        assert_eq!(m["stop_reason"], "end_turn");
        assert_eq!(m["stop_sequence"], Value::Null);
        assert_eq!(m["usage"]["input_tokens"], 10);
        assert_eq!(m["usage"]["output_tokens"], 5);
        assert_eq!(m["model"], "m");
        assert_eq!(m["type"], "message");
        assert_eq!(m["role"], "assistant");
    }

    #[test]
    fn multi_block_assembles() {
        let m = message_from_events(&Reply::multi_block("m").events);
        assert_eq!(
            m["content"],
            json!([
                {"type": "thinking", "thinking": "The user wants a file listing.", "signature": "EqQBCkYIARgCIkB"},
                {"type": "text", "text": "Listing the directory."},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls -la"}},
            ])
        );
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 120, "cache_creation_input_tokens": 50, "cache_read_input_tokens": 1000, "output_tokens": 87})
        );
    }

    #[test]
    fn tool_input_splits_into_pieces() {
        let input = json!({"path": "src/main.rs", "lines": [1, 2, 3], "note": "ünïcödé"});
        let r = Reply::builder("m")
            .tool_use("toolu_9", "Read", &input)
            .build();
        let pieces = r
            .events
            .iter()
            .filter(|e| e["delta"]["type"] == "input_json_delta")
            .count();
        assert_eq!(pieces, 3);
        let m = message_from_events(&r.events);
        assert_eq!(m["content"][0]["input"], input);
    }

    #[test]
    fn estimate_counts_values() {
        let body = json!({"system": "abcd", "messages": [{"role": "user", "content": "abcdefgh"}], "max_tokens": 100000});
        // "abcd" + "user" + "abcdefgh" = 16 characters.
        assert_eq!(estimate_input_tokens(&body), 4);
    }
}
