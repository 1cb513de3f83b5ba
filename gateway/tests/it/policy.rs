//! Group policies over HTTP: the managed-settings envelope, ETag and 304, the 404s, the model
//! allowlist at /v1/messages and /v1/models, and checksums equal across gateway processes.

use serde_json::{json, Value};

use crate::support::gateway::{config, double_upstream, token, Gateway};
use crate::support::http::{get, raw};
use crate::support::pg::shared;

const MANAGED: &str = "managed:
  enforce_tool_denials: true
  policies:
    - match: {groups: [contractors]}
      cli:
        availableModels: [claude-haiku-4-5]
        permissions: {deny: [WebFetch]}
    - match: {}
      cli:
        availableModels: [claude-opus-4-8, sonnet, claude-haiku-4-5]
        env: {COMPANY: example}
";

fn start(extra: &str) -> Gateway {
    let url = shared().new_db();
    let extra = extra.to_owned();
    Gateway::start(move |port| config(port, &url, &extra), &[])
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn post_json(port: u16, path: &str, token: &str, body: &Value) -> crate::support::http::Response {
    let b = body.to_string();
    raw(
        port,
        &format!("POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}", b.len()),
        b.as_bytes(),
    )
}

#[test]
fn managed_settings_envelope_etag_and_304() {
    let gw = start(MANAGED);
    let t = token("c1", &["contractors"]);
    let r = get(
        gw.port,
        "/managed/settings",
        &[("Authorization", &bearer(&t))],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let checksum = v["checksum"].as_str().unwrap().to_owned();
    assert_eq!(v["uuid"], checksum.as_str());
    assert_eq!(r.header("etag"), Some(format!("\"{checksum}\"").as_str()));
    assert!(r.header("x-cc-gateway-version").is_some());
    assert_eq!(
        v["settings"]["availableModels"],
        json!(["claude-haiku-4-5"])
    );
    assert_eq!(
        v["settings"]["env"],
        json!({"COMPANY": "example"}),
        "merged onto the base"
    );
    assert_eq!(v["settings"]["permissions"]["deny"], json!(["WebFetch"]));
    // The checksum is what the client computes: sorted keys, no whitespace.
    assert_eq!(checksum, claude_gateway::policy::checksum(&v["settings"]));

    let r = get(
        gw.port,
        "/managed/settings",
        &[
            ("Authorization", &bearer(&t)),
            ("If-None-Match", &format!("\"{checksum}\"")),
        ],
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = get(
        gw.port,
        "/managed/settings",
        &[("Authorization", &bearer(&t)), ("If-None-Match", "*")],
    );
    assert_eq!(r.status, 200, "* is answered like no header");
    let r = get(
        gw.port,
        "/managed/settings",
        &[
            ("Authorization", &bearer(&t)),
            ("If-None-Match", "\"sha256:stale\""),
        ],
    );
    assert_eq!(r.status, 200);

    let audit = gw.stdout();
    assert!(audit.contains("\"evt\":\"managed.serve\"") && audit.contains(&checksum));
    assert_eq!(get(gw.port, "/managed/settings", &[]).status, 401);
}

#[test]
fn not_configured_and_no_match_are_404() {
    let gw = start("");
    let r = get(
        gw.port,
        "/managed/settings",
        &[("Authorization", &bearer(&token("u", &[])))],
    );
    assert_eq!((r.status, r.body.as_str()), (404, "not configured"));
    drop(gw);
    let gw =
        start("managed:\n  policies:\n    - match: {groups: [eng]}\n      cli: {env: {A: '1'}}\n");
    let r = get(
        gw.port,
        "/managed/settings",
        &[("Authorization", &bearer(&token("u", &["sales"])))],
    );
    assert_eq!((r.status, r.body.as_str()), (404, "no policy matched"));
    let r = get(
        gw.port,
        "/managed/settings",
        &[("Authorization", &bearer(&token("u", &["eng"])))],
    );
    assert_eq!(r.status, 200);
    let r = get(
        gw.port,
        "/user/bootstrap",
        &[("Authorization", &bearer(&token("u", &["eng"])))],
    );
    assert_eq!(r.status, 404, "Desktop needs a desktop block");
}

#[test]
fn checksums_agree_across_gateways() {
    let a = start(MANAGED);
    let b = start(MANAGED);
    let t = token("c1", &["contractors"]);
    let ea = get(
        a.port,
        "/managed/settings",
        &[("Authorization", &bearer(&t))],
    );
    let eb = get(
        b.port,
        "/managed/settings",
        &[("Authorization", &bearer(&t))],
    );
    assert_eq!(ea.header("etag"), eb.header("etag"));
    assert!(ea.header("etag").is_some());
}

#[test]
fn the_model_allowlist_is_enforced_at_the_gateway() {
    let gw = start(MANAGED);
    let contractor = token("c1", &["contractors"]);
    let body = json!({"model": "claude-opus-4-8", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let r = post_json(gw.port, path, &contractor, &body);
        assert_eq!(r.status, 400, "{path}: {r:?}");
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(
            v["error"]["message"],
            "model claude-opus-4-8 is not in your role's availableModels allowlist"
        );
    }
    assert!(gw.stdout().contains("\"evt\":\"policy.blocked\""));

    let r = get(
        gw.port,
        "/v1/models",
        &[("Authorization", &bearer(&contractor))],
    );
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["claude-haiku-4-5"]);

    let everyone = token("e1", &["eng"]);
    let r = get(
        gw.port,
        "/v1/models",
        &[("Authorization", &bearer(&everyone))],
    );
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"claude-opus-4-8")
            && ids.contains(&"claude-sonnet-4-6")
            && ids.contains(&"claude-haiku-4-5")
    );
    assert!(!ids.contains(&"claude-haiku-5-5"));
}

#[test]
fn a_replayed_call_of_a_denied_tool_is_refused() {
    let gw = start(MANAGED);
    let contractor = token("c1", &["contractors"]);
    let body = json!({
        "model": "claude-haiku-4-5", "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "fetch it"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "WebFetch", "input": {"url": "https://x"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "..."}]}
        ]
    });
    let r = post_json(gw.port, "/v1/messages", &contractor, &body);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("tool WebFetch is denied"));
    let audit = gw.stdout();
    assert!(
        audit.contains("\"evt\":\"policy.tool_denied\"")
            && audit.contains("\"action\":\"refused\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_tool_never_reaches_the_upstream() {
    use crate::support::gateway::config_with;
    use testkit::{FakeBedrock, Options};
    let fake = FakeBedrock::start(Options::default()).await.unwrap();
    let o = Options::default();
    let ups = double_upstream(&fake, &o);
    let url = shared().new_db();
    let managed = MANAGED.replace("deny: [WebFetch]", "deny: [WebFetch, mcp__evil]");
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &url, &ups, &managed), &[])
    })
    .await
    .unwrap();
    let body = json!({
        "model": "claude-haiku-4-5", "max_tokens": 50,
        "tools": [
            {"name": "Read", "description": "read", "input_schema": {"type": "object"}},
            {"name": "WebFetch", "description": "fetch", "input_schema": {"type": "object"}}
        ],
        "messages": [{"role": "user", "content": "hello"}]
    });
    let r = crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("c1", &["contractors"]))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sent = &fake.requests()[0].body;
    let names: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Read"],
        "WebFetch was stripped before Bedrock saw the request"
    );
    assert!(gw.stdout().contains("\"action\":\"stripped\""));

    // A request offering a denied tool thousands of times, and many denied tools, is audited in
    // a bounded number of bounded lines: each denied tool once, at most 32 of them named.
    let before = gw.audit("policy.tool_denied").len();
    let mut tools = vec![json!({"name": "WebFetch", "input_schema": {"type": "object"}}); 5000];
    tools.extend(
        (0..40).map(
            |i| json!({"name": format!("mcp__evil__t{i}"), "input_schema": {"type": "object"}}),
        ),
    );
    tools.push(json!({"name": "Read", "input_schema": {"type": "object"}}));
    let mut many = body.clone();
    many["tools"] = tools.into();
    let r = crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("c1", &["contractors"]))
        .json(&many)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sent = fake.requests();
    let names: Vec<&str> = sent[sent.len() - 1].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Read"]);
    let lines = gw.audit("policy.tool_denied");
    let lines = &lines[before..];
    assert_eq!(lines.len(), 32, "{lines:?}");
    assert_eq!(lines[0]["tool"], "WebFetch");
    assert_eq!(lines[1]["tool"], "mcp__evil__t0");
    assert_eq!(lines[0]["tools"].as_array().unwrap().len(), 32);
    assert_eq!(lines[0]["tools_omitted"], 9);

    // A user whose policy allows it sends it through unchanged.
    let mut allowed = body.clone();
    allowed["model"] = "claude-opus-4-8".into();
    crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("e1", &["eng"]))
        .json(&allowed)
        .send()
        .await
        .unwrap();
    let sent = fake.requests();
    assert_eq!(
        sent[sent.len() - 1].body["tools"].as_array().unwrap().len(),
        2
    );
}

/// `managed.unmatched: deny`: a signed-in user no policy matches is refused inference with
/// `403 permission_error` (audited `policy.blocked` `no_policy`), before anything reaches the
/// upstream; a matched user is served. Without the key, the same user is served (the default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_users_are_refused_when_the_operator_says_so() {
    use crate::support::gateway::config_with;
    use testkit::{FakeBedrock, Options};
    let fake = FakeBedrock::start(Options::default()).await.unwrap();
    let ups = double_upstream(&fake, &Options::default());
    let managed =
        "managed:\n  policies:\n    - match: {groups: [eng]}\n      cli: {env: {A: '1'}}\n";
    let start = |extra: String| {
        let (url, ups) = (shared().new_db(), ups.clone());
        tokio::task::spawn_blocking(move || {
            Gateway::start(|port| config_with(port, &url, &ups, &extra), &[])
        })
    };
    let deny = start(managed.replace("managed:\n", "managed:\n  unmatched: deny\n"))
        .await
        .unwrap();
    let body = json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let ask = |port: u16, groups: &'static [&'static str]| {
        let body = body.clone();
        async move {
            let r = crate::support::client()
                .post(format!("http://127.0.0.1:{port}/v1/messages"))
                .bearer_auth(token("u1", groups))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, v) = ask(deny.port, &["sales"]).await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["type"], "permission_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no policy of this gateway applies"),
        "{v}"
    );
    assert!(fake.requests().is_empty(), "nothing went upstream");
    assert!(deny.stdout().contains("\"reason\":\"no_policy\""));
    assert_eq!(ask(deny.port, &["eng"]).await.0, 200);
    assert_eq!(fake.requests().len(), 1);

    let allow = start(managed.to_owned()).await.unwrap();
    assert_eq!(
        ask(allow.port, &["sales"]).await.0,
        200,
        "the default serves them"
    );
}

#[test]
fn managed_mcp_servers_are_delivered_unchanged_and_merged_by_name() {
    let gw = start(
        "managed:
  policy_mode: layered
  policies:
    - match: {}
      cli:
        managedMcpServers:
          docs: {type: http, url: 'https://docs.example.com/mcp'}
          aws: {type: http, url: 'https://old.example.com/mcp', headers: {X-Old: '1'}}
    - match: {groups: [eng]}
      cli:
        permissions: {allow: [mcp__aws]}
        managedMcpServers:
          aws:
            type: http
            url: 'https://gw.example.com/mcp'
            oauth: {callbackPort: 49200, scopes: aws}
            tools: [{name: s3_put, permission_policy: always_ask}]
",
    );
    let r = get(
        gw.port,
        "/managed/settings",
        &[("Authorization", &bearer(&token("ana", &["eng"])))],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["settings"]["managedMcpServers"],
        json!({
            "docs": {"type": "http", "url": "https://docs.example.com/mcp"},
            "aws": {
                "type": "http",
                "url": "https://gw.example.com/mcp",
                "oauth": {"callbackPort": 49200, "scopes": "aws"},
                "tools": [{"name": "s3_put", "permission_policy": "always_ask"}]
            }
        }),
        "the eng entry replaces the base's aws entry whole; docs stays"
    );
    assert_eq!(v["settings"]["permissions"]["allow"], json!(["mcp__aws"]));
    assert_eq!(
        v["checksum"].as_str(),
        Some(claude_gateway::policy::checksum(&v["settings"]).as_str())
    );
}
