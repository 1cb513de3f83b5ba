//! Boot-time checks of the settings documents a policy carries: known keys must have the type the
//! client expects, so a typo fails boot with its path instead of reaching every laptop.

use serde_json::{Map, Value};

/// Keys the gateway refuses to serve (the client takes them only from the device itself, or they
/// would point the client somewhere else).
const REFUSED: &[(&str, &str)] = &[
    (
        "mcpServers",
        "is not allowed in managed settings; use managedMcpServers",
    ),
    (
        "forceLoginMethod",
        "cannot be served by the gateway: set it in the device's own managed settings",
    ),
    (
        "forceLoginGatewayUrl",
        "cannot be served by the gateway: set it in the device's own managed settings",
    ),
];

enum Kind {
    Str,
    Bool,
    StrList,
    Obj,
    StrMap,
    Num,
}

const KNOWN: &[(&str, Kind)] = &[
    ("availableModels", Kind::StrList),
    ("enforceAvailableModels", Kind::Bool),
    ("deniedModels", Kind::StrList),
    ("model", Kind::Str),
    ("permissions", Kind::Obj),
    ("env", Kind::StrMap),
    ("hooks", Kind::Obj),
    ("modelOverrides", Kind::Obj),
    ("skillOverrides", Kind::Obj),
    ("disabledMcpjsonServers", Kind::StrList),
    ("enableAllProjectMcpServers", Kind::Bool),
    ("allowManagedPermissionRulesOnly", Kind::Bool),
    ("allowManagedHooksOnly", Kind::Bool),
    ("disableAllHooks", Kind::Bool),
    ("cleanupPeriodDays", Kind::Num),
    ("includeCoAuthoredBy", Kind::Bool),
    ("apiKeyHelper", Kind::Str),
    ("outputStyle", Kind::Str),
    ("companyAnnouncements", Kind::StrList),
];

/// Problems in a CLI settings document, as (path suffix, message).
pub fn check_settings(doc: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, why) in REFUSED {
        if doc.contains_key(*key) {
            out.push((format!(".{key}"), (*why).to_owned()));
        }
    }
    for (key, kind) in KNOWN {
        let Some(v) = doc.get(*key) else { continue };
        let ok = match kind {
            Kind::Str => v.is_string(),
            Kind::Bool => v.is_boolean(),
            Kind::Num => v.is_number(),
            Kind::Obj => v.is_object(),
            Kind::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Kind::StrMap => v
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string)),
        };
        if !ok {
            let want = match kind {
                Kind::Str => "a string",
                Kind::Bool => "true or false",
                Kind::Num => "a number",
                Kind::Obj => "an object",
                Kind::StrList => "a list of strings",
                Kind::StrMap => "an object of string values",
            };
            out.push((format!(".{key}"), format!("must be {want}")));
        }
    }
    if let Some(Value::Object(p)) = doc.get("permissions") {
        for list in ["allow", "deny", "ask", "additionalDirectories"] {
            if let Some(v) = p.get(list) {
                if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    out.push((
                        format!(".permissions.{list}"),
                        "must be a list of strings".into(),
                    ));
                }
            }
        }
    }
    if let Some(servers) = doc.get("managedMcpServers") {
        for (path, message) in super::mcp_servers::check(servers) {
            out.push((format!(".managedMcpServers{path}"), message));
        }
    }
    if let Some(Value::Object(h)) = doc.get("hooks") {
        for (event, entries) in h {
            if !entries.is_array() {
                out.push((
                    format!(".hooks.{event}"),
                    "must be a list of hook matchers".into(),
                ));
            }
        }
    }
    out
}

/// Keys the gateway computes for Claude Desktop itself, so a policy may not set them.
const DESKTOP_COMPUTED: &[&str] = &[
    "inferenceProvider",
    "inferenceGatewayBaseUrl",
    "inferenceCredentialKind",
    "models",
    "otlpEndpoint",
    "bootstrapUrl",
];

/// Problems in a `desktop` block.
pub fn check_desktop(doc: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in DESKTOP_COMPUTED {
        if doc.contains_key(*key) {
            out.push((
                format!(".{key}"),
                "is computed by the gateway and cannot be set".into(),
            ));
        }
    }
    for list in ["disabledBuiltinTools", "coworkEgressAllowedHosts"] {
        if let Some(v) = doc.get(list) {
            if !v
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty())))
            {
                out.push((
                    format!(".{list}"),
                    "must be a list of non-empty strings".into(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typos_in_types_are_named() {
        let doc = json!({"availableModels": "opus", "permissions": {"deny": "WebFetch"}, "env": {"A": 1}, "mcpServers": {}});
        let issues = check_settings(doc.as_object().unwrap());
        let paths: Vec<&str> = issues.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&".mcpServers"));
        assert!(paths.contains(&".availableModels"));
        assert!(paths.contains(&".env"));
        assert!(paths.contains(&".permissions.deny"));
        assert!(check_settings(
            json!({"availableModels": ["opus"], "somethingNew": 1})
                .as_object()
                .unwrap()
        )
        .is_empty());
    }
}
