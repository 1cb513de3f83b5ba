//! A tool as `tools/list` shows it to the client, and a tool's result as the model reads it.
//! Results are text only, never `structuredContent`: Claude Code gives the model the JSON of
//! `structuredContent` instead of the text blocks, so the masked text stays the one channel.

use serde_json::{json, Map, Value};

/// What a tool tells the client about its effects (MCP's tool annotations). Claude Code treats
/// a read-only tool as safe to run concurrently and in plan mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// The tool changes nothing.
    pub read_only: bool,
    /// A change the tool makes may destroy something (meaningful when not read-only).
    pub destructive: bool,
    /// Calling it twice with the same arguments does no more than calling it once.
    pub idempotent: bool,
    /// The tool reaches beyond this server (here: AWS).
    pub open_world: bool,
}

impl Hints {
    /// A tool that only reads from AWS.
    pub const READ: Self = Self {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: true,
    };
}

/// A tool's input schema: a JSON Schema object with named properties, some required, and no
/// other property allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSchema(Value);

impl InputSchema {
    /// An object schema with `properties` (name to JSON Schema) and the `required` names.
    pub fn object(properties: Map<String, Value>, required: &[&str]) -> Self {
        Self(json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }))
    }

    /// The schema as JSON.
    pub fn as_value(&self) -> &Value {
        &self.0
    }
}

/// A tool as `tools/list` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// The name the client calls it by (`mcp__<server>__<name>` in Claude Code).
    pub name: String,
    /// A short title for people.
    pub title: String,
    /// What the tool does, written for the model.
    pub description: String,
    /// Its arguments.
    pub input_schema: InputSchema,
    /// Its effects.
    pub hints: Hints,
}

impl Tool {
    /// The tool as JSON. The title goes both at the top (the specification's place) and in the
    /// annotations (where Claude Code reads it).
    pub fn to_value(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema.as_value(),
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.hints.read_only,
                "destructiveHint": self.hints.destructive,
                "idempotentHint": self.hints.idempotent,
                "openWorldHint": self.hints.open_world,
            },
        })
    }
}

/// The result of `tools/list`: every tool, on one page.
pub fn list_result(tools: &[Tool]) -> Value {
    json!({ "tools": tools.iter().map(Tool::to_value).collect::<Vec<_>>() })
}

/// What a tool error says when its sentence is empty (Claude Code would show "Unknown error").
const EMPTY_ERROR: &str = "The tool failed without saying why.";

/// A tool's result: text for the model, and whether it is an error the model should read as
/// one (a refusal, a bad argument, an AWS error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// The text blocks, in order.
    pub text: Vec<String>,
    /// Whether the result is a tool error.
    pub is_error: bool,
}

impl ToolResult {
    /// A result of `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: vec![text.into()],
            is_error: false,
        }
    }

    /// A tool error saying `why` (what was refused or failed, and what to do); never empty.
    pub fn error(why: impl Into<String>) -> Self {
        let why = why.into();
        let why = if why.trim().is_empty() {
            EMPTY_ERROR.to_owned()
        } else {
            why
        };
        Self {
            text: vec![why],
            is_error: true,
        }
    }

    /// The result as the `tools/call` result JSON.
    pub fn to_value(&self) -> Value {
        let content: Vec<Value> = self
            .text
            .iter()
            .map(|t| json!({ "type": "text", "text": t }))
            .collect();
        json!({ "content": content, "isError": self.is_error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> Tool {
        let mut props = Map::new();
        props.insert(
            "bucket".into(),
            json!({"type": "string", "description": "The bucket."}),
        );
        props.insert("key".into(), json!({"type": "string"}));
        Tool {
            name: "s3_get_object".into(),
            title: "Read an S3 object".into(),
            description: "Reads one object from S3, masked.".into(),
            input_schema: InputSchema::object(props, &["bucket", "key"]),
            hints: Hints::READ,
        }
    }

    #[test]
    fn a_tool_lists_as_the_client_reads_it() {
        let v = tool().to_value();
        assert_eq!(v["name"], "s3_get_object");
        assert_eq!(v["title"], "Read an S3 object");
        assert_eq!(v["description"], "Reads one object from S3, masked.");
        assert_eq!(v["inputSchema"]["type"], "object");
        assert_eq!(v["inputSchema"]["required"], json!(["bucket", "key"]));
        assert_eq!(v["inputSchema"]["additionalProperties"], false);
        assert_eq!(
            v["inputSchema"]["properties"]["key"],
            json!({"type": "string"})
        );
        assert_eq!(
            v["annotations"],
            json!({
                "title": "Read an S3 object",
                "readOnlyHint": true,
                "destructiveHint": false,
                "idempotentHint": true,
                "openWorldHint": true,
            })
        );
        assert!(v.get("outputSchema").is_none());
    }

    #[test]
    fn the_list_holds_every_tool_without_a_cursor() {
        let v = list_result(&[tool(), tool()]);
        assert_eq!(v["tools"].as_array().map(Vec::len), Some(2));
        assert!(v.get("nextCursor").is_none());
        assert_eq!(list_result(&[]), json!({"tools": []}));
    }

    #[test]
    fn a_text_result_is_one_text_block_without_structured_content() {
        let v = ToolResult::text("3 log events").to_value();
        assert_eq!(
            v,
            json!({"content": [{"type": "text", "text": "3 log events"}], "isError": false})
        );
        assert!(v.get("structuredContent").is_none());
    }

    #[test]
    fn a_tool_error_is_readable_and_never_empty() {
        let v = ToolResult::error("s3:PutObject is denied for project web.").to_value();
        assert_eq!(
            v,
            json!({
                "content": [{"type": "text", "text": "s3:PutObject is denied for project web."}],
                "isError": true,
            })
        );
        for empty in ["", "  \n"] {
            let r = ToolResult::error(empty);
            assert_eq!(r.text, vec![EMPTY_ERROR.to_owned()]);
            assert!(r.is_error);
        }
    }
}
