//! The tool inputs of an assistant answer, read as it is relayed: a `content_block_start` of
//! type `tool_use` opens a block, its `input_json_delta` pieces are gathered (bounded), and its
//! `content_block_stop` closes it. Events of other blocks cost a byte search at most, and no
//! allocation: a text or thinking delta is not even looked at. A non-streaming answer has its
//! inputs whole ([`ToolUses::of_message`]).

use serde_json::Value;

/// The most bytes of a tool input kept (a shell command, or an input's JSON), cut at a
/// character boundary.
pub const MAX_INPUT_BYTES: usize = 4 * 1024;
/// The most tool inputs of one turn kept.
pub const MAX_INPUTS: usize = 8;
/// The most bytes of a tool input's JSON gathered from its pieces; past it the input is kept
/// as the text gathered so far.
pub const MAX_JSON_BYTES: usize = 16 * 1024;

/// What starts a remembered MCP tool call, which no command or code holds: the tool's name
/// and a hash of its arguments follow, each after it.
pub const MCP_MARK: char = '\u{1f}';

/// The tool an MCP tool's name in the client calls (`mcp__<server>__<tool>`; the server's name
/// may hold `__`, the gateway's tool names do not).
pub fn mcp_tool(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("mcp__")?;
    let (_, tool) = rest.rsplit_once("__")?;
    (!tool.is_empty()).then_some(tool)
}

/// How a call of MCP tool `tool` with `arguments` is remembered and looked for: the tool and
/// a hash of the arguments written canonically (keys sorted), so equal JSON values match
/// however their keys were ordered, and the arguments themselves are not kept.
pub fn mcp_input(tool: &str, arguments: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(arguments, &mut canonical, 0);
    let hash = crate::auth::codes::sha256_hex(&canonical);
    format!("{MCP_MARK}{tool}{MCP_MARK}{hash}")
}

/// `v` as JSON with object keys sorted, to a depth of 128 (deeper is written as null).
fn write_canonical(v: &Value, out: &mut String, depth: usize) {
    if depth > 128 {
        out.push_str("null");
        return;
    }
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(x) = o.get(k) {
                    write_canonical(x, out, depth + 1);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out, depth + 1);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The block being gathered.
struct Open {
    index: Option<u64>,
    json: String,
    full: bool,
    /// The MCP tool it calls, if it calls one.
    mcp: Option<String>,
}

/// The AWS-looking tool inputs of one answer, as it streams.
#[derive(Default)]
pub struct ToolUses {
    open: Option<Open>,
    done: Vec<String>,
    /// Events parsed as JSON.
    #[cfg(test)]
    parsed: usize,
}

/// Counts only: the inputs are commands and code, which may hold secrets.
impl std::fmt::Debug for ToolUses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ToolUses({} kept, {})",
            self.done.len(),
            if self.open.is_some() {
                "one open"
            } else {
                "none open"
            }
        )
    }
}

impl ToolUses {
    /// Takes one stream event: its type and its JSON.
    pub fn event(&mut self, kind: &str, json: &[u8]) {
        match kind {
            "content_block_start" => {
                if !contains(json, b"\"tool_use\"") {
                    return;
                }
                self.count_parse();
                let Ok(v) = serde_json::from_slice::<Value>(json) else {
                    return;
                };
                let Some(block) = v
                    .get("content_block")
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
                else {
                    return;
                };
                let json = match block.get("input") {
                    Some(Value::Object(o)) if !o.is_empty() => block["input"].to_string(),
                    _ => String::new(),
                };
                let full = json.len() > MAX_JSON_BYTES;
                let mcp = block
                    .get("name")
                    .and_then(Value::as_str)
                    .and_then(mcp_tool)
                    .map(str::to_owned);
                self.open = Some(Open {
                    index: v.get("index").and_then(Value::as_u64),
                    json: if full { String::new() } else { json },
                    full,
                    mcp,
                });
            }
            "content_block_delta" => {
                if self.open.as_ref().is_none_or(|o| o.full) {
                    return;
                }
                self.count_parse();
                let Some(open) = self.open.as_mut() else {
                    return;
                };
                let Ok(v) = serde_json::from_slice::<Value>(json) else {
                    return;
                };
                if v.get("index").and_then(Value::as_u64) != open.index
                    || v.pointer("/delta/type").and_then(Value::as_str) != Some("input_json_delta")
                {
                    return;
                }
                let Some(piece) = v.pointer("/delta/partial_json").and_then(Value::as_str) else {
                    return;
                };
                if open.json.len() + piece.len() > MAX_JSON_BYTES {
                    open.full = true;
                } else {
                    open.json.push_str(piece);
                }
            }
            "content_block_stop" => {
                if self.open.is_none() {
                    return;
                }
                self.count_parse();
                let index = serde_json::from_slice::<Value>(json)
                    .ok()
                    .and_then(|v| v.get("index").and_then(Value::as_u64));
                if let Some(open) = self.open.take_if(|o| o.index == index) {
                    let input = if open.json.is_empty() {
                        Some(Value::Object(serde_json::Map::new()))
                    } else if open.full {
                        None
                    } else {
                        serde_json::from_str(&open.json).ok()
                    };
                    match (open.mcp, input) {
                        (Some(tool), Some(v)) => self.keep_mcp(&tool, &v),
                        // An MCP call's arguments cut short cannot be matched.
                        (Some(_), None) => {}
                        (None, Some(v)) => self.keep(&v),
                        (None, None) => self.keep_text(open.json),
                    }
                }
            }
            _ => {}
        }
    }

    #[cfg(test)]
    fn count_parse(&mut self) {
        self.parsed += 1;
    }

    #[cfg(not(test))]
    fn count_parse(&mut self) {}

    /// The inputs kept, in order.
    pub fn into_inputs(self) -> Vec<String> {
        self.done
    }

    /// The AWS-looking tool inputs of a complete (non-streaming) message.
    pub fn of_message(message: &Value) -> Vec<String> {
        let mut out = ToolUses::default();
        let blocks = message
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"));
        for b in blocks {
            let input = b.get("input").unwrap_or(&Value::Null);
            match b.get("name").and_then(Value::as_str).and_then(mcp_tool) {
                Some(tool) => out.keep_mcp(tool, input),
                None => out.keep(input),
            }
        }
        out.done
    }

    /// Keeps an input: a shell tool's `command`, else the input's JSON.
    fn keep(&mut self, input: &Value) {
        let text = match input.get("command").and_then(Value::as_str) {
            Some(c) => c.to_owned(),
            None => input.to_string(),
        };
        self.keep_text(text);
    }

    /// Keeps a call of MCP tool `tool` (see [`mcp_input`]).
    fn keep_mcp(&mut self, tool: &str, input: &Value) {
        if self.done.len() < MAX_INPUTS {
            self.done.push(mcp_input(tool, input));
        }
    }

    fn keep_text(&mut self, mut text: String) {
        if self.done.len() >= MAX_INPUTS || !(text.contains("aws") || text.contains("boto")) {
            return;
        }
        if text.len() > MAX_INPUT_BYTES {
            let mut cut = MAX_INPUT_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        self.done.push(text);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Feeds `events` (JSON values) as a relay would.
    fn feed(events: &[Value]) -> Vec<String> {
        let mut t = ToolUses::default();
        for e in events {
            let kind = e["type"].as_str().unwrap_or_default();
            t.event(kind, e.to_string().as_bytes());
        }
        t.into_inputs()
    }

    fn start_tool(index: u64, name: &str) -> Value {
        json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": format!("toolu_{index}"), "name": name, "input": {}}})
    }

    fn piece(index: u64, p: &str) -> Value {
        json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}})
    }

    fn stop(index: u64) -> Value {
        json!({"type": "content_block_stop", "index": index})
    }

    #[test]
    fn a_recorded_streams_tool_inputs_are_gathered() {
        // As an answer streams: thinking, text, a Bash call in pieces, an editor call, another
        // Bash call that is not AWS.
        let events = vec![
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 3}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "I will run \"tool_use\""}}),
            stop(0),
            start_tool(1, "Bash"),
            piece(1, "{\"command\": \"aws s3 ls"),
            piece(1, " s3://payments-reports/\", \"description\": \"List\"}"),
            stop(1),
            start_tool(2, "Write"),
            piece(
                2,
                "{\"file_path\": \"a.py\", \"content\": \"import boto3\\nboto3.client('s3')\"}",
            ),
            stop(2),
            start_tool(3, "Bash"),
            piece(3, "{\"command\": \"ls -la\"}"),
            stop(3),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            json!({"type": "message_stop"}),
        ];
        let got = feed(&events);
        assert_eq!(
            got,
            vec![
                "aws s3 ls s3://payments-reports/".to_owned(),
                json!({"content": "import boto3\nboto3.client('s3')", "file_path": "a.py"})
                    .to_string(),
            ]
        );
        // Text blocks are not gathered, whatever they say.
        assert!(!got.iter().any(|g| g.contains("I will run")));
    }

    #[test]
    fn an_answer_without_tool_calls_costs_no_parse_and_no_allocation() {
        let mut t = ToolUses::default();
        let events = [
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "aws s3 ls"}}),
            stop(0),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "run aws s3 ls"}}),
            stop(1),
        ];
        for _ in 0..100 {
            for e in &events {
                t.event(
                    e["type"].as_str().unwrap_or_default(),
                    e.to_string().as_bytes(),
                );
            }
        }
        assert_eq!(t.parsed, 0);
        assert!(t.open.is_none() && t.done.capacity() == 0);
        // A tool call is parsed: its start, each of its pieces, its stop.
        for e in [
            start_tool(2, "Bash"),
            piece(2, "{\"command\": \"aws s3 ls\"}"),
            stop(2),
        ] {
            t.event(
                e["type"].as_str().unwrap_or_default(),
                e.to_string().as_bytes(),
            );
        }
        assert_eq!(t.parsed, 3);
        assert_eq!(t.into_inputs(), vec!["aws s3 ls".to_owned()]);
    }

    #[test]
    fn inputs_are_bounded() {
        // A block whose JSON goes past the limit keeps the text gathered, cut.
        let mut events = vec![
            start_tool(0, "Bash"),
            piece(0, "{\"command\": \"aws s3 cp "),
        ];
        for _ in 0..(MAX_JSON_BYTES / 100 + 2) {
            events.push(piece(0, &"x".repeat(100)));
        }
        events.push(stop(0));
        let got = feed(&events);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), MAX_INPUT_BYTES);
        assert!(got[0].starts_with("{\"command\": \"aws s3 cp xxx"));
        // A long command is cut at a character boundary.
        let long = format!("aws s3 ls {}", "é".repeat(MAX_INPUT_BYTES));
        let got = ToolUses::of_message(
            &json!({"content": [{"type": "tool_use", "name": "Bash", "input": {"command": long}}]}),
        );
        assert!(got[0].len() <= MAX_INPUT_BYTES && got[0].len() > MAX_INPUT_BYTES - 2);
        // At most MAX_INPUTS per turn.
        let mut events = Vec::new();
        for i in 0..(MAX_INPUTS as u64 + 5) {
            events.push(start_tool(i, "Bash"));
            events.push(piece(i, "{\"command\": \"aws sts get-caller-identity\"}"));
            events.push(stop(i));
        }
        assert_eq!(feed(&events).len(), MAX_INPUTS);
    }

    #[test]
    fn mcp_tool_calls_are_kept_as_their_tool_and_arguments_hash() {
        assert_eq!(mcp_tool("mcp__aws__s3_read"), Some("s3_read"));
        assert_eq!(mcp_tool("mcp__my__aws__logs_tail"), Some("logs_tail"));
        assert_eq!(mcp_tool("mcp__aws__"), None);
        assert_eq!(mcp_tool("Bash"), None);
        let args = json!({"bucket": "b", "key": "k", "n": [1, {"z": 1, "a": 2}]});
        let reordered = json!({"n": [1, {"a": 2, "z": 1}], "key": "k", "bucket": "b"});
        assert_eq!(
            mcp_input("s3_read", &args),
            mcp_input("s3_read", &reordered)
        );
        assert_ne!(
            mcp_input("s3_read", &args),
            mcp_input("s3_read", &json!({"bucket": "b", "key": "k2"}))
        );
        assert_ne!(mcp_input("s3_read", &args), mcp_input("s3_list", &args));
        // Streamed in pieces, and whole; arguments are not kept, whatever they hold.
        let events = vec![
            start_tool(0, "mcp__aws__s3_read"),
            piece(0, "{\"bucket\": \"b\", \"key\": "),
            piece(0, "\"k\", \"n\": [1, {\"z\": 1, \"a\": 2}]}"),
            stop(0),
        ];
        let got = feed(&events);
        assert_eq!(got, vec![mcp_input("s3_read", &args)]);
        assert!(!got[0].contains("bucket"));
        let m = json!({"content": [{"type": "tool_use", "name": "mcp__aws__logs_tail", "input": {"log_group": "/app"}}]});
        assert_eq!(
            ToolUses::of_message(&m),
            vec![mcp_input("logs_tail", &json!({"log_group": "/app"}))]
        );
    }

    #[test]
    fn a_non_streaming_answer_has_its_inputs_whole() {
        let m = json!({"content": [
            {"type": "text", "text": "aws s3 ls"},
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "aws secretsmanager get-secret-value --secret-id x"}},
            {"type": "tool_use", "id": "t2", "name": "Read", "input": {"file_path": "/etc/hosts"}},
        ]});
        assert_eq!(
            ToolUses::of_message(&m),
            vec!["aws secretsmanager get-secret-value --secret-id x".to_owned()]
        );
        // A tool call started with its input already whole, and one never closed.
        let events = vec![
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "name": "Bash", "input": {"command": "aws s3 ls"}}}),
            stop(0),
            start_tool(1, "Bash"),
            piece(1, "{\"command\": \"aws s3 rm s3://b/k\"}"),
        ];
        assert_eq!(feed(&events), vec!["aws s3 ls".to_owned()]);
    }
}
