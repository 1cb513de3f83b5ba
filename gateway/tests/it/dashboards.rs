//! The CloudWatch side reads what the gateway writes: every field that the templates' metric
//! filters, contributor rules and gateway-log queries name must appear in audit events captured
//! from a real run.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use testkit::{Behavior, FakeBedrock, Options};

use crate::support::gateway::{config_with, double_upstream, token, Gateway};
use crate::support::pg::shared;

const WRITE: &str = "write-key-0123456789abcdef0123456789";

/// Keys seen per `evt`, from a run that produces every event the dashboards read.
async fn captured() -> BTreeMap<String, BTreeSet<String>> {
    let fake = FakeBedrock::start(Options::default()).await.unwrap();
    let o = Options::default();
    let ups = double_upstream(&fake, &o);
    let url = shared().new_db();
    let extra = format!(
        "admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\nmanaged:\n  enforce_tool_denials: true\n  policies:\n    - match: {{}}\n      cli: {{permissions: {{deny: [WebFetch]}}}}\n      rate_limits: {{user: {{requests_per_minute: 6}}}}\n"
    );
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(|port| config_with(port, &url, &ups, &extra), &[])
    })
    .await
    .unwrap();
    let c = crate::support::client();
    let base = format!("http://127.0.0.1:{}", gw.port);
    let msg = |tools: bool| {
        let mut b = json!({"model": "claude-sonnet-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
        if tools {
            b["tools"] = json!([{"name": "WebFetch", "input_schema": {"type": "object"}}, {"name": "Read", "input_schema": {"type": "object"}}]);
        }
        b
    };
    // Success (with a stripped tool), an upstream error, a spend block, a rate-limit block.
    c.post(format!("{base}/v1/messages"))
        .bearer_auth(token("ana", &["eng"]))
        .json(&msg(true))
        .send()
        .await
        .unwrap();
    fake.push(Behavior::Error {
        status: 500,
        error_type: "InternalServerException".into(),
        message: "x".into(),
    });
    c.post(format!("{base}/v1/messages"))
        .bearer_auth(token("ana", &["eng"]))
        .json(&msg(false))
        .send()
        .await
        .unwrap();
    c.post(format!("{base}/v1/organizations/spend_limits"))
        .header("x-api-key", WRITE)
        .json(
            &json!({"scope": {"type": "user", "user_id": "ben"}, "amount": "0", "period": "daily"}),
        )
        .send()
        .await
        .unwrap();
    c.post(format!("{base}/v1/messages"))
        .bearer_auth(token("ben", &["ops"]))
        .json(&msg(false))
        .send()
        .await
        .unwrap();
    for _ in 0..8 {
        c.post(format!("{base}/v1/messages"))
            .bearer_auth(token("cat", &[]))
            .json(&msg(false))
            .send()
            .await
            .unwrap();
    }
    let grant: Value = c
        .post(format!("{base}/oauth/device_authorization"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(grant["device_code"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in gw.stdout().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let evt = v["evt"].as_str().unwrap().to_owned();
        keys.entry(evt)
            .or_default()
            .extend(v.as_object().unwrap().keys().cloned());
    }
    keys
}

/// `$.name` references in metric filters and contributor rules.
fn json_paths(text: &str) -> BTreeSet<String> {
    text.split("$.")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// The body of each `QueryString: |` block of a template.
pub(crate) fn query_blocks(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with("QueryString: |") {
            let indent = l.len() - l.trim_start().len();
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|x| x.trim().is_empty() || x.len() - x.trim_start().len() > indent)
                .copied()
                .collect();
            out.push(body.join("\n"));
        }
    }
    out
}

/// Queries over the gateway's log group (they filter on `evt`): their text, from saved queries
/// and from the dashboard's log widgets.
fn gateway_queries(text: &str) -> Vec<String> {
    let mut out = query_blocks(text);
    for l in text.lines() {
        for part in l.split("\"query\":\"").skip(1) {
            out.push(part.split("\"}").next().unwrap_or_default().to_owned());
        }
    }
    out.retain(|q| q.contains("filter evt"));
    out
}

/// Fields a query aggregates or groups by.
fn query_fields(q: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '@')
            .collect::<String>()
    };
    for f in [
        "sum(",
        "max(",
        "avg(",
        "min(",
        "count_distinct(",
        "latest(",
        "pct(",
    ] {
        for part in q.split(f).skip(1) {
            out.insert(ident(part));
        }
    }
    for part in q.split(" by ").skip(1) {
        let clause = part.split('|').next().unwrap_or_default();
        for name in clause.split(',') {
            out.insert(ident(name));
        }
    }
    // Names the query itself makes (parse aliases) or CloudWatch provides.
    for made in ["teams", "@timestamp", "bin", ""] {
        out.remove(made);
    }
    out.retain(|n| !q.contains(&format!("as {n}")) || q.contains(&format!("({n})")));
    out
}

/// The fields of the agent-access events (`aws.credentials`, `aws.credentials.refused`,
/// `aws.grant.*`, `aws.member.*`). The run above does not mint AWS credentials (that needs an
/// STS), so the queries over these events are held to this declared shape instead of to
/// captured lines.
const AWS_EVENT_FIELDS: &[&str] = &[
    "ts",
    "evt",
    "user",
    "email",
    "project",
    "level",
    "duration_seconds",
    "grant",
    "mfa",
    "client_ip",
    "code",
    "approver",
    "reason_len",
    "member",
    "actor",
];

#[test]
fn aws_access_queries_read_only_the_declared_event_fields() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../cfn/observability.yaml"
    ))
    .unwrap();
    let queries: Vec<String> = gateway_queries(&text)
        .into_iter()
        .filter(|q| q.contains("evt = 'aws."))
        .collect();
    assert!(
        queries.len() >= 4,
        "three saved queries and a panel: {queries:?}"
    );
    for q in &queries {
        let fields = query_fields(q);
        assert!(!fields.is_empty(), "{q}");
        for field in fields {
            assert!(
                AWS_EVENT_FIELDS.contains(&field.as_str()),
                "query field `{field}` is not an agent-access event field\n{q}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_read_fields_the_gateway_writes() {
    let keys = captured().await;
    let all: BTreeSet<String> = keys.values().flatten().cloned().collect();
    for evt in [
        "inference",
        "spend.blocked",
        "ratelimit.blocked",
        "policy.tool_denied",
        "device.authorize",
    ] {
        assert!(
            keys.contains_key(evt),
            "the run produced no {evt} event: {keys:?}"
        );
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../cfn");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for field in json_paths(&text) {
            assert!(
                all.contains(&field),
                "{}: `$.{field}` is not in any audit event ({all:?})",
                path.display()
            );
            checked += 1;
        }
        // Agent-access queries: see aws_access_queries_read_only_the_declared_event_fields.
        for q in gateway_queries(&text)
            .into_iter()
            .filter(|q| !q.contains("evt = 'aws."))
        {
            for field in query_fields(&q) {
                assert!(
                    all.contains(&field),
                    "{}: query field `{field}` is not in any audit event\n{q}",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 20,
        "the templates were read ({checked} references)"
    );
    // The dashboards' money comes from here.
    assert!(keys["inference"].contains("cost_usd") && keys["inference"].contains("email"));
}
