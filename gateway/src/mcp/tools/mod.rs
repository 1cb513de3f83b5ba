//! The MCP server's AWS tools. Each declares the IAM actions it needs and is carried out as
//! AWS calls through the same stages as the data path (`crate::aws_proxy`): the decision,
//! limits, approval, masking and recording.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::jsonrpc::RpcError;
use super::oauth::McpCaller;
use super::tool::{Tool, ToolResult};
use crate::state::AppState;

/// What a tool call runs with.
pub struct Context<'a> {
    /// The gateway.
    pub state: &'a AppState,
    /// Who is calling.
    pub caller: &'a McpCaller,
    /// The MCP session.
    pub session_id: &'a str,
    /// The gateway's id of the HTTP request.
    pub request_id: &'a str,
    /// Now.
    pub now: OffsetDateTime,
}

/// The tools, as `tools/list` shows them.
pub fn list() -> Vec<Tool> {
    Vec::new()
}

/// Runs tool `name`. `Err` only for a tool that does not exist (JSON-RPC -32602); anything a
/// tool refuses or fails at is a tool error the model reads.
pub async fn call(
    _cx: &Context<'_>,
    name: &str,
    _arguments: Map<String, Value>,
) -> Result<ToolResult, RpcError> {
    Err(RpcError::invalid_params(format!("unknown tool {name:?}")))
}
