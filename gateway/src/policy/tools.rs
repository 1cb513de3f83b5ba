//! Server-side tool enforcement (beyond the reference, which leaves tool denial to the client):
//! denied tools are taken out of a request's `tools`, and a request whose history carries a call
//! of a denied tool, or whose `tool_choice` forces one, is refused.

use serde_json::{Map, Value};

use crate::api::body::RawObject;

/// The tool names one policy denies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolDenials {
    names: Vec<String>,
}

impl ToolDenials {
    /// Bare names in `permissions.deny` (a scoped rule such as `Bash(rm *)` is the client's to
    /// enforce) plus the policy's `deny_tools`.
    pub fn from_settings(settings: &Map<String, Value>, extra: &[String]) -> Self {
        let mut names: Vec<String> = settings
            .get("permissions")
            .and_then(|p| p.get("deny"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty() && !n.contains('('))
            .map(str::to_owned)
            .collect();
        for n in extra {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        Self { names }
    }

    /// No denials.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether a tool name is denied. `mcp__server` denies every tool of that server.
    pub fn denies(&self, tool: &str) -> bool {
        self.names.iter().any(|d| {
            d == tool
                || (d.starts_with("mcp__")
                    && tool
                        .strip_prefix(d.as_str())
                        .is_some_and(|rest| rest.starts_with("__")))
        })
    }
}

/// What enforcement did to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to change.
    Clean,
    /// These tools were taken out of `tools`.
    Stripped(Vec<String>),
    /// Refused: the history or `tool_choice` uses this denied tool.
    Refused(String),
}

/// Applies `denials` to a request body.
pub fn enforce(body: &mut RawObject, denials: &ToolDenials) -> Verdict {
    if denials.is_empty() {
        return Verdict::Clean;
    }
    if let Some(choice) = body.get_as::<Value>("tool_choice") {
        if let Some(name) = choice.get("name").and_then(Value::as_str) {
            if denials.denies(name) {
                return Verdict::Refused(name.to_owned());
            }
        }
    }
    if let Some(messages) = body.messages() {
        for m in messages {
            for block in m
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let kind = block
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if kind == "tool_use" || kind == "server_tool_use" {
                    if let Some(name) = block.get("name").and_then(Value::as_str) {
                        if denials.denies(name) {
                            return Verdict::Refused(name.to_owned());
                        }
                    }
                }
            }
        }
    }
    let Some(tools) = body.tools() else {
        return Verdict::Clean;
    };
    let denied = |t: &Value| {
        t.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| denials.denies(n))
    };
    // Each denied name once, in the order first offered.
    let mut seen = std::collections::HashSet::new();
    let removed: Vec<String> = tools
        .iter()
        .filter(|t| denied(t))
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .filter(|n| seen.insert(*n))
        .map(str::to_owned)
        .collect();
    if removed.is_empty() {
        return Verdict::Clean;
    }
    // Only a request that loses tools pays for a copy of the ones it keeps.
    let kept: Vec<Value> = tools.iter().filter(|t| !denied(t)).cloned().collect();
    if kept.is_empty() {
        body.remove("tools");
        body.remove("tool_choice");
    } else {
        body.set("tools", &kept);
    }
    Verdict::Stripped(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn denials() -> ToolDenials {
        let s = json!({"permissions": {"deny": ["WebFetch", "Bash(rm *)", "mcp__github"]}});
        ToolDenials::from_settings(s.as_object().unwrap(), &["WebSearch".into()])
    }

    #[test]
    fn names_and_mcp_servers() {
        let d = denials();
        assert!(d.denies("WebFetch") && d.denies("WebSearch"));
        assert!(!d.denies("Bash"), "scoped rules stay with the client");
        assert!(d.denies("mcp__github__create_issue"));
        assert!(!d.denies("mcp__githubx__a"));
    }

    #[test]
    fn strips_offered_tools_and_refuses_replays() {
        let mut body = RawObject::parse(br#"{"model":"m","tools":[{"name":"Read","input_schema":{}},{"name":"WebFetch","input_schema":{}}],"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(
            enforce(&mut body, &denials()),
            Verdict::Stripped(vec!["WebFetch".into()])
        );
        let tools: Vec<Value> = body.get_as("tools").unwrap();
        assert_eq!(tools.len(), 1);

        let mut replay = RawObject::parse(br#"{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"WebFetch","input":{}}]}]}"#).unwrap();
        assert_eq!(
            enforce(&mut replay, &denials()),
            Verdict::Refused("WebFetch".into())
        );

        let mut forced =
            RawObject::parse(br#"{"model":"m","tool_choice":{"type":"tool","name":"WebSearch"}}"#)
                .unwrap();
        assert_eq!(
            enforce(&mut forced, &denials()),
            Verdict::Refused("WebSearch".into())
        );

        let mut only_denied = RawObject::parse(
            br#"{"model":"m","tools":[{"name":"WebFetch"}],"tool_choice":{"type":"any"}}"#,
        )
        .unwrap();
        assert!(matches!(
            enforce(&mut only_denied, &denials()),
            Verdict::Stripped(_)
        ));
        assert!(only_denied.get("tools").is_none() && only_denied.get("tool_choice").is_none());
    }

    #[test]
    fn each_denied_tool_is_named_once() {
        let mut body = RawObject::parse(
            br#"{"model":"m","tools":[{"name":"WebFetch"},{"name":"mcp__github__a"},{"name":"WebFetch"},{"name":"Read"},{"name":"mcp__github__a"}]}"#,
        )
        .unwrap();
        assert_eq!(
            enforce(&mut body, &denials()),
            Verdict::Stripped(vec!["WebFetch".into(), "mcp__github__a".into()])
        );
    }
}
