//! `aws_access`: the caller's AWS projects now: level, window, regions, whether writes need an
//! approved request, and their write requests of the last week. No AWS call; the same answer
//! as `GET /v1/aws/status`, written for the model.

use serde_json::{Map, Value};

use super::run::Run;
use crate::mcp::tool::{Hints, InputSchema, Tool, ToolResult};

/// The tool's name.
pub const NAME: &str = "aws_access";

/// The tool as listed.
pub fn tool() -> Tool {
    Tool {
        name: NAME.into(),
        title: "My AWS projects and access".into(),
        description: "Lists the AWS projects you may use through this gateway now or later: your level (read or write), the window it is open in, the project's regions and environment, whether writes need an approved request, and your write requests of the last seven days. Use it to learn which `project` to pass to the other tools. No AWS call.".into(),
        input_schema: InputSchema::object(Map::new(), &[]),
        hints: Hints::READ,
    }
}

/// Runs the tool.
pub async fn run(run: &mut Run<'_, '_>, _args: &Map<String, Value>) -> ToolResult {
    let cx = run.cx();
    let status = crate::aws_access::status::of(cx.state, &cx.caller.identity, cx.now).await;
    match status {
        Ok(v) => ToolResult::text(render(&v)),
        Err(e) => run.fail(format!("The gateway cannot tell your access now: {e}.")),
    }
}

/// The status answer as text.
pub fn render(status: &Value) -> String {
    let projects = status
        .get("projects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if projects.is_empty() {
        return "You are a member of no AWS project through this gateway, now or later. Ask the platform team or a project's owners for access.".into();
    }
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut out = format!("Your AWS projects ({}):\n", projects.len());
    for p in &projects {
        let regions: Vec<&str> = p
            .get("regions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let window = match (
            p.get("from").and_then(Value::as_str),
            p.get("until").and_then(Value::as_str),
        ) {
            (None, None) => "open-ended".to_owned(),
            (Some(f), None) => format!("from {f}"),
            (None, Some(u)) => format!("until {u}"),
            (Some(f), Some(u)) => format!("from {f} until {u}"),
        };
        out.push_str(&format!(
            "- {} ({}): {} access, {}; regions {}; writes {}\n",
            s(p, "name"),
            s(p, "environment"),
            s(p, "level"),
            window,
            if regions.is_empty() {
                "none".to_owned()
            } else {
                regions.join(", ")
            },
            if s(p, "write_approval") == "required" {
                "need an approved request"
            } else {
                "need no request"
            },
        ));
        for g in p
            .get("grants")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let until = g
                .get("until")
                .and_then(Value::as_str)
                .map(|u| format!(" until {u}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  - write request {}: {}{}\n",
                s(g, "id"),
                s(g, "status"),
                until
            ));
        }
    }
    out.push_str(
        "Pass `project` to the other tools (it may be left out when you have one project).",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projects_levels_windows_and_requests_are_shown() {
        let v = json!({"user": {"sub": "ana"}, "projects": [
            {"name": "payments", "environment": "prod", "regions": ["eu-west-1", "us-east-1"],
             "level": "write", "from": null, "until": "2026-12-31T00:00:00Z",
             "write_approval": "required", "grants": [
                {"id": "gr_1", "status": "pending", "until": null},
                {"id": "gr_2", "status": "approved", "until": "2026-12-06T12:00:00Z"}]},
            {"name": "search", "environment": "nonprod", "regions": [], "level": "read",
             "write_approval": "auto", "grants": []}
        ]});
        let text = render(&v);
        assert!(text.starts_with("Your AWS projects (2):"), "{text}");
        assert!(text.contains("- payments (prod): write access, until 2026-12-31T00:00:00Z; regions eu-west-1, us-east-1; writes need an approved request"), "{text}");
        assert!(text.contains("  - write request gr_1: pending\n"), "{text}");
        assert!(
            text.contains("  - write request gr_2: approved until 2026-12-06T12:00:00Z"),
            "{text}"
        );
        assert!(
            text.contains(
                "- search (nonprod): read access, open-ended; regions none; writes need no request"
            ),
            "{text}"
        );
        assert!(render(&json!({"projects": []})).contains("no AWS project"));
    }

    #[test]
    fn it_takes_no_arguments_and_only_reads() {
        let t = tool();
        assert_eq!(t.input_schema.as_value()["properties"], json!({}));
        assert!(t.hints.read_only);
    }
}
