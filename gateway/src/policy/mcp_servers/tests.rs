use serde_json::{json, Value};

use super::*;

const GOOD: &str = "https://gw.example.com/mcp";

/// The problems of `{"aws": entry}`, paths below `.managedMcpServers`.
fn problems(entry: Value) -> Vec<(String, String)> {
    check(&json!({ "aws": entry }))
}

fn paths(entry: Value) -> Vec<String> {
    problems(entry).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn a_plain_entry_and_every_documented_field_pass() {
    assert!(problems(json!({"type": "http", "url": GOOD})).is_empty());
    let full = json!({
        "type": "streamable-http",
        "url": "https://localhost:8443/mcp",
        "headers": {"X-Team": "payments"},
        "oauth": {"clientId": "c", "callbackPort": 49200,
                  "authServerMetadataUrl": "https://gw.example.com/.well-known/x",
                  "scopes": "aws", "xaa": false},
        "timeout": 30000,
        "alwaysLoad": true,
        "displayName": "AWS",
        "tools": [{"name": "s3_put", "permission_policy": "always_ask"}],
        "toolPermissions": {"aws_call": "ask"},
        "somethingNewer": 1
    });
    assert_eq!(problems(full), vec![]);
    assert!(problems(json!({"type": "sse", "url": GOOD})).is_empty());
    assert!(check(&json!({})).is_empty(), "no servers is fine");
}

#[test]
fn the_array_form_and_non_objects_are_refused() {
    let p = check(&json!([{"name": "aws", "transport": "http", "url": GOOD}]));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, "");
    assert!(p[0].1.contains("keyed by server name") && p[0].1.contains("transport"));
    assert_eq!(check(&json!("aws")).len(), 1);
    assert_eq!(paths(json!("https://gw.example.com/mcp")), [".aws"]);
}

#[test]
fn server_names_follow_the_clients_pattern() {
    for bad in [
        "has space",
        "dot.ted",
        "",
        "über",
        "constructor",
        "__proto__",
        "prototype",
    ] {
        let p = check(&json!({ bad: {"type": "http", "url": GOOD} }));
        assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
        assert!(p[0].1.contains("server name"), "{p:?}");
    }
    let p = check(&json!({"a\u{1b}[31m": {"type": "http", "url": GOOD}}));
    assert!(
        !p[0].1.contains('\u{1b}'),
        "a name is escaped in the message"
    );
    assert!(check(&json!({"aws-prod_2": {"type": "http", "url": GOOD}})).is_empty());
}

#[test]
fn program_keys_are_refused() {
    for key in ["command", "args", "env", "headersHelper"] {
        let mut e = json!({"type": "http", "url": GOOD});
        e[key] = json!("x");
        assert_eq!(paths(e), [format!(".aws.{key}")], "{key}");
    }
}

#[test]
fn only_url_transports_are_delivered() {
    assert_eq!(paths(json!({"type": "stdio", "url": GOOD})), [".aws.type"]);
    assert_eq!(paths(json!({"type": "ws", "url": GOOD})), [".aws.type"]);
    assert_eq!(paths(json!({"url": GOOD})), [".aws.type"]);
    assert_eq!(paths(json!({"type": 1, "url": GOOD})), [".aws.type"]);
}

#[test]
fn the_url_is_https_with_a_host() {
    for bad in [
        json!("http://gw.example.com/mcp"),
        json!("https://"),
        json!("gw.example.com/mcp"),
        json!("file:///etc/passwd"),
        json!(42),
        json!(format!("https://gw.example.com/{}", "a".repeat(65_536))),
    ] {
        assert_eq!(
            paths(json!({"type": "http", "url": bad})),
            [".aws.url"],
            "{bad}"
        );
    }
    assert_eq!(paths(json!({"type": "http"})), [".aws.url"]);
    assert!(problems(json!({"type": "http", "url": "https://127.0.0.1:9/mcp"})).is_empty());
}

#[test]
fn control_and_format_characters_are_refused_in_keys_and_values() {
    let cases = [
        (
            json!({"type": "http", "url": GOOD, "displayName": "A\u{7}WS"}),
            ".aws.displayName",
        ),
        (
            json!({"type": "http", "url": GOOD, "displayName": "A\u{200b}WS"}),
            ".aws.displayName",
        ),
        (
            json!({"type": "http", "url": GOOD, "displayName": "A\u{2028}"}),
            ".aws.displayName",
        ),
        (
            json!({"type": "http", "url": GOOD, "displayName": "\u{202e}SWA"}),
            ".aws.displayName",
        ),
        (
            json!({"type": "http", "url": GOOD, "headers": {"X-A": "v\r\nX-B: 1"}}),
            ".aws.headers.X-A",
        ),
        (
            json!({"type": "http", "url": GOOD, "headers": {"X\u{feff}A": "v"}}),
            ".aws.headers.X\\u{feff}A",
        ),
        (
            json!({"type": "http", "url": GOOD, "tools": [{"name": "a\u{0}"}]}),
            ".aws.tools[0].name",
        ),
    ];
    for (entry, path) in cases {
        let p = problems(entry.clone());
        assert_eq!(p.len(), 1, "{entry}: {p:?}");
        assert_eq!(p[0].0, path);
        assert!(p[0].1.contains("control or invisible"), "{p:?}");
        assert!(!p[0].0.contains('\u{feff}'), "paths are escaped");
    }
    assert!(!is_invisible('é') && !is_invisible(' ') && !is_invisible('\u{1F600}'));
}

#[test]
fn references_left_after_expansion_are_refused() {
    for s in ["Bearer ${TOKEN}", "${A_1:-def}", "x${_y}z", "${B:-}"] {
        let p = problems(json!({"type": "http", "url": GOOD, "headers": {"Authorization": s}}));
        assert_eq!(p.len(), 1, "{s}: {p:?}");
        assert_eq!(p[0].0, ".aws.headers.Authorization");
        assert!(p[0].1.contains("${NAME}"), "{p:?}");
    }
    for s in [
        "$HOME", "${1X}", "${}", "${A", "${A:-x", "${A-b}", "$ {A}", "pa$$word",
    ] {
        assert!(!has_reference(s), "{s}");
    }
    let p = problems(json!({"type": "http", "url": "https://gw.example.com/${PATH}"}));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, ".aws.url");
    assert!(
        problems(json!({"type": "http", "url": GOOD, "headers": {"${K}": "v"}})).is_empty(),
        "keys are not checked for references, as the client does"
    );
}

#[test]
fn typed_fields_are_named() {
    let e = json!({
        "type": "http", "url": GOOD,
        "headers": {"A": 1},
        "oauth": {"clientId": 1, "callbackPort": 0, "authServerMetadataUrl": "http://x/y",
                  "scopes": "", "xaa": "yes"},
        "timeout": -5,
        "alwaysLoad": "true",
        "displayName": 3,
        "tools": [{"permission_policy": "sometimes"}],
        "toolPermissions": {"aws_call": "never"}
    });
    assert_eq!(
        paths(e),
        [
            ".aws.headers.A",
            ".aws.oauth.clientId",
            ".aws.oauth.callbackPort",
            ".aws.oauth.authServerMetadataUrl",
            ".aws.oauth.scopes",
            ".aws.oauth.xaa",
            ".aws.timeout",
            ".aws.alwaysLoad",
            ".aws.displayName",
            ".aws.tools[0].name",
            ".aws.tools[0].permission_policy",
            ".aws.toolPermissions.aws_call",
        ]
    );
    let long = format!("https://gw.example.com/{}", "a".repeat(4096));
    assert_eq!(
        paths(json!({"type": "http", "url": GOOD, "oauth": {"authServerMetadataUrl": long}})),
        [".aws.oauth.authServerMetadataUrl"]
    );
    assert_eq!(
        paths(json!({"type": "http", "url": GOOD, "oauth": "x", "tools": {}, "headers": []})),
        [".aws.headers", ".aws.oauth", ".aws.tools"]
    );
}

fn own(origin: &str, mcp_on: bool) -> Own {
    Own {
        origin: origin.into(),
        mcp_on,
    }
}

#[test]
fn static_headers_are_a_warning() {
    let at = "managed.policies[2].cli.managedMcpServers";
    let servers = json!({
        "vendor": {"type": "http", "url": "https://mcp.vendor.example/x", "headers": {"X-Api-Key": "k"}},
        "plain": {"type": "http", "url": "https://mcp.vendor.example/y", "headers": {}}
    });
    let w = warnings(at, &servers, &own("https://gw.example.com", true));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("managed.policies[2].cli.managedMcpServers.vendor.headers: every member")
    );
    assert!(!w[0].contains("k\""), "the value is not repeated");
}

#[test]
fn this_gateways_mcp_needs_https_and_the_server_on() {
    let at = "managed.policies[0].cli.managedMcpServers";
    let servers = json!({"aws": {"type": "http", "url": "https://gw.example.com/mcp"}});
    assert!(warnings(at, &servers, &own("https://gw.example.com", true)).is_empty());
    let w = warnings(at, &servers, &own("http://gw.example.com", true));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(&format!("{at}.aws.url: ")) && w[0].contains("not https"),
        "{w:?}"
    );
    let w = warnings(at, &servers, &own("https://gw.example.com", false));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("aws_access.mcp is not set"), "{w:?}");
    // Another host, or another path on this host, is not this gateway's /mcp.
    for url in [
        "https://other.example.com/mcp",
        "https://gw.example.com/mcp2",
    ] {
        let s = json!({"x": {"type": "http", "url": url}});
        assert!(
            warnings(at, &s, &own("http://gw.example.com", false)).is_empty(),
            "{url}"
        );
    }
}
