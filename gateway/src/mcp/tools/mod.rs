//! The MCP server's AWS tools. Each declares the IAM actions it needs and is carried out as
//! AWS calls through the same stages as the data path (`crate::aws_proxy::serve`): the
//! decision, limits, approval, masking and recording.
//!
//! A call flows: the tool found by name (unknown: JSON-RPC -32602); its arguments checked
//! against the schema it lists ([`args`]); the model turn that asked for it looked up by tool
//! name and equal arguments (`aws_proxy::turns`); the tool builds its AWS requests
//! ([`request`]) and [`run::Run`] sends each through the shared stages as the caller, in the
//! project and region the arguments (or the caller's one project) name, recorded under the MCP
//! session with the tool's name; the masked answer is rendered as text, held to
//! `max_result_bytes` ([`bound`]); and one `mcp.tool` audit line says what became of it.
//!
//! The tools, a file each or a family: [`access`] (`aws_access`), [`logs`] (`logs_search`,
//! `logs_tail`), [`metrics`] (`metrics_read`), [`s3`] (`s3_list`, `s3_read`, `s3_put`),
//! [`tagging`] (`resources_find`) and [`generic`] (`aws_call`).

pub mod access;
pub mod args;
pub mod bound;
pub mod generic;
pub mod logs;
pub mod metrics;
pub mod request;
pub mod run;
pub mod s3;
pub mod span;
pub mod tagging;
pub mod xml;

use std::time::Instant;

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::jsonrpc::RpcError;
use super::oauth::McpCaller;
use super::tool::{Tool, ToolResult};
use crate::state::AppState;
use run::Run;

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
    vec![
        access::tool(),
        logs::search_tool(),
        logs::tail_tool(),
        metrics::tool(),
        s3::list_tool(),
        s3::read_tool(),
        s3::put_tool(),
        tagging::tool(),
        generic::tool(),
    ]
}

/// The `project` and `region` arguments every AWS tool takes.
pub(crate) fn target_props(props: &mut Map<String, Value>) {
    props.insert(
        "project".into(),
        args::string_max(
            "The project to act in; may be left out when you are a member of exactly one (the aws_access tool lists yours).",
            128,
        ),
    );
    props.insert(
        "region".into(),
        args::string_max(
            "The AWS region; defaults to the project's first region.",
            64,
        ),
    );
}

/// A tool's description with the IAM actions it needs.
pub(crate) fn described(what: &str, actions: &[&str]) -> String {
    if actions.is_empty() {
        what.to_owned()
    } else {
        format!("{what} IAM actions: {}.", actions.join(", "))
    }
}

/// Runs tool `name`. `Err` only for a tool that does not exist (JSON-RPC -32602); anything a
/// tool refuses or fails at is a tool error the model reads.
pub async fn call(
    cx: &Context<'_>,
    name: &str,
    arguments: Map<String, Value>,
) -> Result<ToolResult, RpcError> {
    let Some(tool) = list().into_iter().find(|t| t.name == name) else {
        return Err(RpcError::invalid_params(format!(
            "unknown tool {:?}",
            name.chars().take(128).collect::<String>()
        )));
    };
    let started = Instant::now();
    let args_value = Value::Object(arguments);
    let turn = cx.state.aws_proxy.as_ref().and_then(|p| {
        p.turns
            .find_tool(&cx.caller.identity.sub, name, &args_value, cx.now)
    });
    let Value::Object(arguments) = args_value else {
        return Err(RpcError::invalid_params("arguments must be an object"));
    };
    let key = static_name(name);
    let mut run = Run::new(cx, key, turn.clone());
    let result = match args::check(tool.input_schema.as_value(), &arguments) {
        Err(why) => run.fail(format!(
            "{why}. Call {name} again with corrected arguments."
        )),
        Ok(()) => dispatch(&mut run, key, &arguments).await,
    };
    let max = cx
        .state
        .config
        .aws_access
        .as_ref()
        .and_then(|a| a.mcp.as_ref())
        .map_or(64 * 1024, |m| m.max_result_bytes);
    let result = bound::bound(result, usize::try_from(max).unwrap_or(usize::MAX));
    audit(cx, key, &run, &turn, started);
    Ok(result)
}

/// The tool's name as a static string (the names are the listed ones).
fn static_name(name: &str) -> &'static str {
    [
        access::NAME,
        logs::SEARCH,
        logs::TAIL,
        metrics::NAME,
        s3::LIST,
        s3::READ,
        s3::PUT,
        tagging::NAME,
        generic::NAME,
    ]
    .into_iter()
    .find(|n| *n == name)
    .unwrap_or("unknown")
}

async fn dispatch(run: &mut Run<'_, '_>, name: &str, a: &Map<String, Value>) -> ToolResult {
    match name {
        access::NAME => access::run(run, a).await,
        logs::SEARCH => logs::search(run, a).await,
        logs::TAIL => logs::tail(run, a).await,
        metrics::NAME => metrics::run(run, a).await,
        s3::LIST => s3::list(run, a).await,
        s3::READ => s3::read(run, a).await,
        s3::PUT => s3::put(run, a).await,
        tagging::NAME => tagging::run(run, a).await,
        generic::NAME => generic::run(run, a).await,
        _ => run.fail("This tool is not available."),
    }
}

/// The `mcp.tool` audit line: who called which tool, in which project, the actions and
/// resources it touched, what became of it, how long it took, and the turn that asked for it.
/// Never the arguments or the result (they may hold what the masking is for).
fn audit(
    cx: &Context<'_>,
    tool: &str,
    run: &Run<'_, '_>,
    turn: &Option<(String, Option<String>)>,
    started: Instant,
) {
    let (turn_request_id, prompt_fingerprint) = turn.clone().unzip();
    let who = &cx.caller.identity;
    cx.state.audit.emit(
        "mcp.tool",
        cx.state.clock.now(),
        json!({
            "user": who.sub,
            "email": who.email,
            "client_id": cx.caller.client_id,
            "session_id": cx.session_id,
            "request_id": cx.request_id,
            "tool": tool,
            "project": run.project,
            "actions": run.actions,
            "resources": run.resources,
            "result": run.verdict.as_str(),
            "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "turn_request_id": turn_request_id,
            "prompt_fingerprint": prompt_fingerprint.flatten(),
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_listed_once_runs_under_its_name_and_checks_its_schema() {
        let tools = list();
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "aws_access",
                "logs_search",
                "logs_tail",
                "metrics_read",
                "s3_list",
                "s3_read",
                "s3_put",
                "resources_find",
                "aws_call",
            ]
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), tools.len());
        for t in &tools {
            assert_eq!(static_name(&t.name), t.name, "dispatched by name");
            let schema = t.input_schema.as_value();
            assert_eq!(schema["type"], "object");
            assert_eq!(schema["additionalProperties"], false, "{}", t.name);
            assert!(
                t.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                t.name
            );
            if t.name != access::NAME {
                assert!(t.description.contains("IAM actions:"), "{}", t.name);
                let props = &schema["properties"];
                assert!(props.get("project").is_some() && props.get("region").is_some());
            }
        }
        assert_eq!(static_name("nope"), "unknown");
    }

    #[test]
    fn reads_are_read_only_and_writes_and_the_generic_call_are_destructive() {
        for t in list() {
            let write = t.name == s3::PUT || t.name == generic::NAME;
            assert_eq!(t.hints.read_only, !write, "{}", t.name);
            assert_eq!(t.hints.destructive, write, "{}", t.name);
            let listed = t.to_value();
            assert_eq!(listed["annotations"]["readOnlyHint"], !write);
        }
    }
}
