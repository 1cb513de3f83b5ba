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
        "count(",
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

/// Keys seen per `evt` for the agent-access events, from a run against moto's STS that produces
/// each of them: credentials read and refused, a member added and removed, a write request made,
/// approved through the Admin API, used for write credentials, and revoked.
async fn aws_captured() -> BTreeMap<String, BTreeSet<String>> {
    use crate::aws_credentials::{aws_access, get, token};
    let (moto, gw) = tokio::task::spawn_blocking(|| {
        let moto = crate::support::moto::Moto::start();
        let url = shared().new_db();
        let extra = format!(
            "admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\n{}",
            aws_access(&moto.url)
        );
        let gw = Gateway::start(
            |port| crate::support::gateway::config(port, &url, &extra),
            &crate::support::moto::ENV,
        );
        (moto, gw)
    })
    .await
    .unwrap();
    let api = crate::aws_grants::Api::new(&gw);
    let admin = format!("key:{WRITE}");
    let base = "/v1/organizations/aws_access";
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ana = token("ana", &["payments"], Some(now));

    let (s, body) = get(&gw, Some(&ana), "project=payments").await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = get(&gw, Some(&token("bob", &["ops"], None)), "project=payments").await;
    assert_eq!(s, 403);
    let member = json!({"project": "payments", "emails": ["cy@example.com"]});
    let (s, m) = api
        .call("POST", &format!("{base}/members"), &admin, Some(member))
        .await;
    assert_eq!(s, 200, "{m}");
    let id = m["id"].as_str().unwrap();
    let (s, _) = api
        .call("DELETE", &format!("{base}/members/{id}"), &admin, None)
        .await;
    assert_eq!(s, 200);
    let (s, g) = api.ask(&ana, 1800).await;
    assert_eq!(s, 201, "{g}");
    let grant = g["id"].as_str().unwrap();
    for action in ["approve", "revoke"] {
        if action == "revoke" {
            let (s, body) = get(&gw, Some(&ana), "project=payments&level=write").await;
            assert_eq!(s, 200, "{body}");
        }
        let path = format!("{base}/grants/{grant}/{action}");
        let (s, body) = api.call("POST", &path, &admin, None).await;
        assert_eq!(s, 200, "{action}: {body}");
    }

    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for v in gw
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let evt = v["evt"].as_str().unwrap_or_default().to_owned();
        if evt.starts_with("aws.") {
            keys.entry(evt)
                .or_default()
                .extend(v.as_object().unwrap().keys().cloned());
        }
    }
    // The approval names its approver on the audit stream (the write-access query reads it).
    let approved = gw.audit("aws.grant.approved");
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(approved[0]["approver"], "admin-key:ops");
    assert_eq!(approved[0]["grant"], grant);
    let issued = gw.audit("aws.credentials");
    assert!(
        issued
            .iter()
            .any(|e| e["level"] == "write" && e["grant"] == grant),
        "{issued:?}"
    );
    drop(moto);
    keys
}

/// Keys of the `aws.call` lines the gateway's own recorder writes (`record`, the function the
/// proxy calls for each call), one line per decision; each line is checked to hold no body.
fn aws_call_captured() -> BTreeSet<String> {
    use claude_gateway::aws_proxy::record::Decision;
    use claude_gateway::aws_proxy::serve::record;
    use claude_gateway::clock::{ManualClock, SharedClock};
    use claude_gateway::config::{self, MapEnv};
    use claude_gateway::state::AppState;
    use claude_gateway::store::Store;
    use claude_gateway::telemetry::audit::Audit;
    use std::str::FromStr;

    let yaml = format!(
        "listen: {{host: 127.0.0.1, port: 8080}}\nupstreams: [{{provider: bedrock, region: us-east-1}}]\nsession: {{jwt_secret: {}}}\nstore: {{postgres_url: 'postgres://nobody@127.0.0.1:1/none'}}\noidc: {{issuer: 'https://idp.example.com', client_id: c, client_secret: s}}\n",
        crate::support::gateway::JWT_SECRET
    );
    let loaded = config::load(&yaml, &MapEnv::new()).unwrap();
    let store = Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str("postgres://nobody@127.0.0.1:1/none").unwrap(),
        1,
        std::time::Duration::from_millis(100),
    );
    let audit = Audit::memory();
    let clock: SharedClock = std::sync::Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let state = AppState::new(
        loaded,
        audit.clone(),
        clock,
        store,
        claude_gateway::upstream::Upstreams::none(),
    )
    .unwrap();
    for d in Decision::ALL {
        let mut rec = crate::aws_calls::call("ana", "payments", "AGWSESSION", d);
        rec.approval_id = Some("cap_1".into());
        rec.approver = Some("lead@example.com".into());
        record(&state, rec);
    }
    let mut keys = BTreeSet::new();
    let lines = audit.lines();
    assert_eq!(lines.len(), Decision::ALL.len());
    assert_eq!(
        state.recorder.pending(),
        Decision::ALL.len(),
        "each row queued"
    );
    for line in lines {
        assert!(
            !line.contains("MASKED") && !line.contains("\"body\""),
            "no body on the audit stream: {line}"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["evt"], "aws.call");
        assert_eq!(v["masked"]["secret"], 1);
        keys.extend(v.as_object().unwrap().keys().cloned());
    }
    keys
}

/// The agent-access events a query filters on (`evt = 'aws.…'`).
fn filtered_events(q: &str) -> BTreeSet<String> {
    q.split("evt = '")
        .skip(1)
        .filter_map(|rest| rest.split('\'').next())
        .map(str::to_owned)
        .collect()
}

/// Fields a query's `filter` compares, besides `evt` (as `level = 'write'`).
fn filter_fields(q: &str) -> BTreeSet<String> {
    let filter = q
        .split('|')
        .find(|part| part.contains("filter "))
        .unwrap_or_default();
    let mut parts: Vec<&str> = filter.split(" = ").collect();
    parts.pop();
    parts
        .into_iter()
        .map(|left| {
            let tail: Vec<char> = left
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            tail.into_iter().rev().collect::<String>()
        })
        .filter(|n| !n.is_empty() && n != "evt")
        .collect()
}

/// Fields a query groups rows by (`by a, b`): each must be on every event the query reads, or
/// the rows of different events never meet.
fn group_fields(q: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for part in q.split(" by ").skip(1) {
        let clause = part.split('|').next().unwrap_or_default();
        for name in clause.split(',') {
            let n: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !n.is_empty() {
                out.insert(n);
            }
        }
    }
    out
}

/// The agent-access queries of the templates read only fields the gateway writes on the events
/// they filter on, checked against lines captured from a real run (a renamed field fails here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_access_queries_read_fields_the_gateway_writes() {
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
    let mut keys = aws_captured().await;
    // Until the proxy route runs in this test, the aws.call lines come from the recorder itself.
    keys.insert("aws.call".into(), aws_call_captured());
    let mut checked = 0;
    for q in &queries {
        let events = filtered_events(q);
        let mut union = BTreeSet::new();
        for e in &events {
            let seen = keys
                .get(e)
                .unwrap_or_else(|| panic!("the run produced no {e} event ({keys:?})\n{q}"));
            union.extend(seen.iter().cloned());
        }
        let fields = query_fields(q);
        assert!(!fields.is_empty(), "{q}");
        for field in fields.iter().chain(&filter_fields(q)) {
            assert!(
                union.contains(field),
                "query field `{field}` is on none of {events:?} ({keys:?})\n{q}"
            );
            checked += 1;
        }
        for field in group_fields(q) {
            for e in &events {
                assert!(
                    keys[e].contains(&field),
                    "query groups by `{field}`, which {e} does not carry ({keys:?})\n{q}"
                );
            }
        }
    }
    assert!(checked > 10, "the queries were read ({checked} fields)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_read_fields_the_gateway_writes() {
    let keys = captured().await;
    let mut all: BTreeSet<String> = keys.values().flatten().cloned().collect();
    // The agents' AWS call metrics and their contributor rule read `aws.call` lines.
    all.extend(aws_call_captured());
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
        // Agent-access queries: see aws_access_queries_read_fields_the_gateway_writes.
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

/// The decisions the templates' metric filters and queries compare `decision` with are decisions
/// the gateway records (a renamed or misspelled one would count nothing, silently).
#[test]
fn templates_name_decisions_the_gateway_records() {
    use claude_gateway::aws_proxy::record::Decision;

    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../cfn/observability.yaml"
    ))
    .unwrap();
    let mut named = BTreeSet::new();
    for (opening, close) in [("$.decision = \"", '"'), ("decision = '", '\'')] {
        for rest in text.split(opening).skip(1) {
            named.insert(rest.split(close).next().unwrap_or_default().to_owned());
        }
    }
    for opening in ["decision in [", "decision not in ["] {
        for rest in text.split(opening).skip(1) {
            let list = rest.split(']').next().unwrap_or_default();
            for item in list.split(',') {
                named.insert(item.trim().trim_matches('\'').to_owned());
            }
        }
    }
    for d in [
        "allowed",
        "approved",
        "denied",
        "throttled",
        "refused",
        "failed",
        "held",
    ] {
        assert!(named.contains(d), "the templates never name {d}: {named:?}");
    }
    for d in &named {
        assert!(
            Decision::parse(d).is_some(),
            "`{d}` is not a decision the gateway records"
        );
    }
}
