//! How a policy lands on the `match: {}` base: allow-lists replace, deny-lists and hook arrays
//! concatenate (without duplicates), record-typed keys merge key by key (a `managedMcpServers`
//! entry of the same name is replaced whole, as the client does across its sources, so one
//! server's headers never land on another's URL), anything else replaces.

use serde_json::{Map, Value};

/// Lists where the specific policy's list wins.
const REPLACE_LISTS: &[&[&str]] = &[&["availableModels"], &["permissions", "allow"]];
/// Lists that accumulate.
const UNION_LISTS: &[&[&str]] = &[
    &["permissions", "deny"],
    &["permissions", "ask"],
    &["disabledMcpjsonServers"],
    &["deniedMcpServers"],
    &["blockedMarketplaces"],
];
/// Records merged key by key.
const RECORDS: &[&str] = &[
    "env",
    "modelOverrides",
    "skillOverrides",
    "managedMcpServers",
];

/// `overlay` merged onto `base`.
pub fn merge(base: &Map<String, Value>, overlay: &Map<String, Value>) -> Map<String, Value> {
    let mut out = base.clone();
    for (key, value) in overlay {
        let merged = match (key.as_str(), out.get(key), value) {
            (k, Some(Value::Object(b)), Value::Object(o)) if RECORDS.contains(&k) => {
                let mut m = b.clone();
                m.extend(o.clone());
                Value::Object(m)
            }
            ("hooks", Some(Value::Object(b)), Value::Object(o)) => {
                let mut m = b.clone();
                for (event, entries) in o {
                    let joined = match (m.get(event), entries) {
                        (Some(Value::Array(x)), Value::Array(y)) => Value::Array(union(x, y)),
                        _ => entries.clone(),
                    };
                    m.insert(event.clone(), joined);
                }
                Value::Object(m)
            }
            ("permissions", Some(Value::Object(b)), Value::Object(o)) => {
                Value::Object(merge_permissions(b, o))
            }
            (k, Some(Value::Array(b)), Value::Array(o))
                if UNION_LISTS.iter().any(|p| p.len() == 1 && p[0] == k) =>
            {
                Value::Array(union(b, o))
            }
            _ => value.clone(),
        };
        out.insert(key.clone(), merged);
    }
    out
}

fn merge_permissions(
    base: &Map<String, Value>,
    overlay: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = base.clone();
    for (k, v) in overlay {
        let path: [&str; 2] = ["permissions", k.as_str()];
        let union_list = UNION_LISTS.iter().any(|p| *p == path);
        let replace_list = REPLACE_LISTS.iter().any(|p| *p == path);
        let merged = match (out.get(k), v) {
            (Some(Value::Array(b)), Value::Array(o)) if union_list && !replace_list => {
                Value::Array(union(b, o))
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    out
}

/// `a` then the items of `b` not already present.
fn union(a: &[Value], b: &[Value]) -> Vec<Value> {
    let mut out = a.to_vec();
    for item in b {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_rule() {
        let base = obj(json!({
            "availableModels": ["opus", "sonnet"],
            "permissions": {"allow": ["Read"], "deny": ["WebFetch"], "ask": ["Bash"], "defaultMode": "default"},
            "env": {"A": "1", "B": "base"},
            "hooks": {"PreToolUse": [{"matcher": "x"}]},
            "deniedMcpServers": [{"serverName": "a"}],
            "model": "opus"
        }));
        let overlay = obj(json!({
            "availableModels": ["haiku"],
            "permissions": {"allow": ["Grep"], "deny": ["WebSearch", "WebFetch"], "defaultMode": "plan"},
            "env": {"B": "policy", "C": "3"},
            "hooks": {"PreToolUse": [{"matcher": "y"}], "Stop": [{"matcher": "z"}]},
            "deniedMcpServers": [{"serverName": "b"}],
            "model": "haiku"
        }));
        let m = Value::Object(merge(&base, &overlay));
        assert_eq!(
            m["availableModels"],
            json!(["haiku"]),
            "allow-lists replace"
        );
        assert_eq!(m["permissions"]["allow"], json!(["Grep"]));
        assert_eq!(
            m["permissions"]["deny"],
            json!(["WebFetch", "WebSearch"]),
            "deny-lists union without duplicates"
        );
        assert_eq!(
            m["permissions"]["ask"],
            json!(["Bash"]),
            "untouched keys stay"
        );
        assert_eq!(m["permissions"]["defaultMode"], "plan");
        assert_eq!(
            m["env"],
            json!({"A": "1", "B": "policy", "C": "3"}),
            "env merges key by key"
        );
        assert_eq!(
            m["hooks"]["PreToolUse"],
            json!([{"matcher": "x"}, {"matcher": "y"}]),
            "hooks concatenate"
        );
        assert_eq!(m["hooks"]["Stop"], json!([{"matcher": "z"}]));
        assert_eq!(
            m["deniedMcpServers"],
            json!([{"serverName": "a"}, {"serverName": "b"}])
        );
        assert_eq!(m["model"], "haiku", "scalars replace");
    }

    #[test]
    fn managed_mcp_servers_merge_by_name_and_an_entry_is_replaced_whole() {
        let base = obj(json!({"managedMcpServers": {
            "aws": {"type": "http", "url": "https://a.example/mcp", "headers": {"X-Key": "a"}},
            "docs": {"type": "http", "url": "https://docs.example/mcp"}
        }}));
        let overlay = obj(json!({"managedMcpServers": {
            "aws": {"type": "http", "url": "https://b.example/mcp"}
        }}));
        let m = Value::Object(merge(&base, &overlay));
        assert_eq!(
            m["managedMcpServers"],
            json!({
                "aws": {"type": "http", "url": "https://b.example/mcp"},
                "docs": {"type": "http", "url": "https://docs.example/mcp"}
            }),
            "the base's headers do not follow its server name to another URL"
        );
    }
}
