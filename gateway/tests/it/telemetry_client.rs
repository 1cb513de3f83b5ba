//! The client's own telemetry, captured for real: the real client (2.1.328), signed in to our
//! gateway, takes the OTLP environment from its managed settings, exports through the gateway's
//! relay to a receiver, and every name the CloudFormation side reads from it (the collector's
//! metric declarations, the dashboard's metric searches, the saved queries over client events)
//! must be in what it sent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use serde_json::json;
use testkit::{Behavior, Reply};

use crate::dashboards::query_blocks;
use crate::support::claude::Claude;
use crate::support::idp::TestUser;
use crate::support::otlp::Receiver;
use crate::support::runtime;
use crate::support::stack::{sign_in, stack};

/// What the client exported: per log event (its body), the attribute keys; per metric, the
/// attribute keys of its points; the resource attributes (keys and values) of everything.
#[derive(Debug, Default)]
struct Captured {
    events: BTreeMap<String, BTreeSet<String>>,
    metrics: BTreeMap<String, BTreeSet<String>>,
    resource: BTreeMap<String, String>,
}

fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn capture(rx: &Receiver) -> Captured {
    let mut c = Captured::default();
    for r in rx.received() {
        if r.path.ends_with("/v1/logs") {
            let req = ExportLogsServiceRequest::decode(r.body.as_slice()).expect("OTLP logs");
            for rl in req.resource_logs {
                for kv in rl.resource.iter().flat_map(|r| &r.attributes) {
                    c.resource.insert(kv.key.clone(), text(kv));
                }
                for rec in rl.scope_logs.iter().flat_map(|s| &s.log_records) {
                    let body = match rec.body.as_ref().and_then(|b| b.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => s.clone(),
                        _ => continue,
                    };
                    c.events
                        .entry(body)
                        .or_default()
                        .extend(rec.attributes.iter().map(|kv| kv.key.clone()));
                }
            }
        } else if r.path.ends_with("/v1/metrics") {
            let req = ExportMetricsServiceRequest::decode(r.body.as_slice()).expect("OTLP metrics");
            for rm in req.resource_metrics {
                for kv in rm.resource.iter().flat_map(|r| &r.attributes) {
                    c.resource.insert(kv.key.clone(), text(kv));
                }
                for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                    let keys = c.metrics.entry(m.name.clone()).or_default();
                    let attrs: Vec<&KeyValue> = match &m.data {
                        Some(Data::Sum(s)) => {
                            s.data_points.iter().flat_map(|p| &p.attributes).collect()
                        }
                        Some(Data::Gauge(g)) => {
                            g.data_points.iter().flat_map(|p| &p.attributes).collect()
                        }
                        Some(Data::Histogram(h)) => {
                            h.data_points.iter().flat_map(|p| &p.attributes).collect()
                        }
                        _ => Vec::new(),
                    };
                    keys.extend(attrs.into_iter().map(|kv| kv.key.clone()));
                }
            }
        }
    }
    c
}

/// A reply that asks the client to read `path`.
fn read_tool_reply(path: &str) -> Reply {
    Reply::builder("m")
        .usage(30, 20)
        .tool_use("toolu_read_01", "Read", &json!({ "file_path": path }))
        .build()
}

fn template(name: &str) -> String {
    let path = format!("{}/../cfn/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The dotted names after `prefix` (`attributes.`, `resource.`) in `text`.
fn names_after(text: &str, prefix: &str) -> Vec<String> {
    text.match_indices(prefix)
        .filter(|(i, _)| {
            // A whole word: not the tail of a longer identifier.
            text[..*i]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        })
        .map(|(i, _)| {
            text[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect::<String>()
                .trim_end_matches('.')
                .to_owned()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// Is `field` (`attributes.x` or `resource.x`) in what the client sent for `event`?
fn has_field(c: &Captured, event: &str, field: &str) -> bool {
    if let Some(name) = field.strip_prefix("attributes.") {
        c.events.get(event).is_some_and(|keys| keys.contains(name))
    } else if let Some(name) = field.strip_prefix("resource.") {
        c.resource.contains_key(name)
    } else {
        false
    }
}

/// Checks one saved query over client events; returns how many field references it checked.
fn check_query(c: &Captured, q: &str) -> usize {
    let event = q
        .split("filter body = '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("a client query names its event: {q}"));
    assert!(
        c.events.contains_key(event),
        "the client sent no {event} event; it sent {:?}\n{q}",
        c.events.keys().collect::<Vec<_>>()
    );
    let mut checked = 0;
    // `coalesce(a, b)`: one of them is enough. Every other reference must be there.
    let mut rest = q.to_owned();
    while let Some(start) = rest.find("coalesce(") {
        let end = start + rest[start..].find(')').expect("a closed coalesce");
        let inner = &rest[start + "coalesce(".len()..end];
        let alternatives: Vec<String> = ["attributes.", "resource."]
            .iter()
            .flat_map(|p| {
                names_after(inner, p)
                    .into_iter()
                    .map(move |n| format!("{p}{n}"))
            })
            .collect();
        assert!(
            alternatives.iter().any(|f| has_field(c, event, f)),
            "none of {alternatives:?} is in the client's {event} (attributes {:?}, resource {:?})",
            c.events[event],
            c.resource.keys().collect::<Vec<_>>()
        );
        checked += 1;
        rest.replace_range(start..=end, "");
    }
    for p in ["attributes.", "resource."] {
        for n in names_after(&rest, p) {
            let field = format!("{p}{n}");
            assert!(
                has_field(c, event, &field),
                "`{field}` is not in the client's {event} (attributes {:?}, resource {:?})\n{q}",
                c.events[event],
                c.resource.keys().collect::<Vec<_>>()
            );
            checked += 1;
        }
    }
    checked
}

/// (metric names, dimension sets) from the collector's `metric_declarations`.
fn metric_declarations(collector: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let lines: Vec<&str> = collector.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(sel) = l.split("metric_name_selectors:").nth(1) else {
            continue;
        };
        let names = sel
            .split('\'')
            .skip(1)
            .step_by(2)
            .map(|re| {
                re.trim_start_matches('^')
                    .trim_end_matches('$')
                    .replace('\\', "")
            })
            .collect();
        let dims_line = lines[i + 1]
            .split("dimensions:")
            .nth(1)
            .expect("dimensions after the selectors");
        let dims = dims_line
            .split('[')
            .filter_map(|part| part.split(']').next())
            .filter(|set| !set.trim().is_empty())
            .map(|set| set.split(',').map(|d| d.trim().to_owned()).collect())
            .collect();
        out.push((names, dims));
    }
    out
}

/// (dimensions, metric) of the dashboard's searches over client metrics.
fn dashboard_searches(observability: &str) -> Vec<(Vec<String>, String)> {
    observability
        .split("SEARCH('{\\\"${ClientMetricsNamespace}\\\",")
        .skip(1)
        .map(|rest| {
            let dims = rest.split('}').next().unwrap_or_default();
            let metric = rest
                .split("MetricName=\\\"")
                .nth(1)
                .and_then(|m| m.split('\\').next())
                .unwrap_or_default();
            let dims = dims
                .split(',')
                .map(|d| d.trim_matches(|c| c == '"' || c == '\\').to_owned())
                .collect();
            (dims, metric.to_owned())
        })
        .collect()
}

/// Is `dim` on `metric`'s points, or a resource attribute (the collector turns those into
/// labels)? `OTelLib` is the collector's own (the instrumentation scope).
fn has_dimension(c: &Captured, metric: &str, dim: &str) -> bool {
    dim == "OTelLib"
        || c.metrics.get(metric).is_some_and(|k| k.contains(dim))
        || c.resource.contains_key(dim)
}

#[test]
fn the_templates_read_what_the_real_client_sends() {
    let rt = runtime();
    let rx = rt.block_on(Receiver::start());
    let users = [TestUser::new("erin").groups(&["eng", "finance"])];
    let extra = format!(
        "telemetry:\n  forward_to:\n    - {{url: '{}', metrics: true, logs: true}}\nmanaged:\n  policies:\n    - match: {{}}\n      cli: {{availableModels: [claude-haiku-4-5], permissions: {{deny: [WebFetch]}}}}\n",
        rx.url
    );
    let s = stack(&rt, &users, "", &extra);
    let mut claude = Claude::new(&s.base);
    // The harness turns the client's own telemetry off; here it is the subject.
    claude.set_env("DISABLE_TELEMETRY", None);
    sign_in(&rt, &s, &mut claude, "erin");

    // A tool call (a decision, two requests), then a refused model (an API error).
    let notes = claude.workdir().join("notes.txt");
    std::fs::write(&notes, "remember the milk\n").unwrap();
    s.bedrock.push(Behavior::Reply(read_tool_reply(
        &notes.display().to_string(),
    )));
    let out = claude.print_with(
        &["--model", "claude-haiku-4-5", "Read notes.txt"],
        Duration::from_secs(90),
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    let sent = s.bedrock.requests();
    assert!(
        sent.iter()
            .any(|r| r.body.to_string().contains("remember the milk")),
        "the client ran the tool and sent its result"
    );
    // The client's default model is outside the policy's list: the gateway answers 400.
    let out = claude.print_with(&["Once more"], Duration::from_secs(90));
    assert_ne!(out.status, Some(0), "{out:?}");
    assert!(
        !s.gw.audit("policy.blocked").is_empty(),
        "the gateway refused the default model: {out:?}"
    );

    // The client flushes on exit; the relay forwards at once. Wait for what the templates read.
    let wanted_events = [
        "claude_code.api_request",
        "claude_code.tool_decision",
        "claude_code.api_error",
    ];
    let wanted_metrics = ["claude_code.cost.usage", "claude_code.token.usage"];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut c = capture(&rx);
    while Instant::now() < deadline
        && !(wanted_events.iter().all(|e| c.events.contains_key(*e))
            && wanted_metrics.iter().all(|m| c.metrics.contains_key(*m)))
    {
        std::thread::sleep(Duration::from_millis(250));
        c = capture(&rx);
    }
    eprintln!("captured from the real client: {c:#?}");

    // Who: the gateway identity, as the client tags its telemetry.
    assert_eq!(
        c.resource.get("user.email").map(String::as_str),
        Some("erin@example.com")
    );
    assert!(
        c.resource
            .get("user.groups")
            .is_some_and(|g| g.contains("finance")),
        "{:?}",
        c.resource
    );

    // The saved queries over client events.
    let observability = template("observability.yaml");
    let mut checked = 0;
    let client_queries: Vec<String> = query_blocks(&observability)
        .into_iter()
        .filter(|q| q.contains("filter body = '"))
        .collect();
    assert!(client_queries.len() >= 3, "{client_queries:?}");
    for q in &client_queries {
        checked += check_query(&c, q);
    }

    // The collector's metric declarations. Every client metric they name was sent in this run,
    // except those this run cannot produce (no commit, pull request or file edit happened): a
    // misspelled name fails here.
    const NOT_EXERCISED: &[&str] = &[
        "claude_code.commit.count",
        "claude_code.pull_request.count",
        "claude_code.lines_of_code.count",
        "claude_code.code_edit_tool.decision",
    ];
    let declarations = metric_declarations(&template("collector.yaml"));
    assert!(declarations.len() >= 5, "{declarations:?}");
    for name in declarations.iter().flat_map(|(names, _)| names) {
        if name.starts_with("claude_code.") && !NOT_EXERCISED.contains(&name.as_str()) {
            assert!(
                c.metrics.contains_key(name),
                "collector.yaml declares {name}, which the client did not send (it sent {:?})",
                c.metrics.keys().collect::<Vec<_>>()
            );
        }
    }
    for (names, dims) in &declarations {
        for name in names.iter().filter(|n| c.metrics.contains_key(*n)) {
            for dim in dims.iter().flatten() {
                assert!(
                    has_dimension(&c, name, dim),
                    "collector.yaml: dimension `{dim}` of {name} is not on what the client sent \
                     (points {:?}, resource {:?})",
                    c.metrics[name],
                    c.resource.keys().collect::<Vec<_>>()
                );
                checked += 1;
            }
        }
    }
    for m in wanted_metrics {
        assert!(
            declarations
                .iter()
                .any(|(names, _)| names.iter().any(|n| n == m)),
            "collector.yaml declares {m}"
        );
    }

    // The finance dashboard's searches over client metrics.
    let searches: Vec<_> = dashboard_searches(&observability)
        .into_iter()
        .filter(|(_, m)| m.starts_with("claude_code."))
        .collect();
    assert!(searches.len() >= 3, "{searches:?}");
    for (dims, metric) in &searches {
        assert!(
            c.metrics.contains_key(metric),
            "the client sent no {metric}"
        );
        for dim in dims {
            assert!(
                has_dimension(&c, metric, dim),
                "dashboard: dimension `{dim}` of {metric} is not on what the client sent"
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked} references checked");
    eprintln!("{checked} template references checked against the real client's telemetry");
}
