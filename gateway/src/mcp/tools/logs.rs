//! `logs_search` (CloudWatch Logs `FilterLogEvents`: a pattern over a group in a time range) and
//! `logs_tail` (the latest events of a stream: `GetLogEvents` from the end, on the named stream
//! or the group's stream that was written last, found with `DescribeLogStreams`). JSON protocol.

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::args::{self, int_arg, str_arg};
use super::request::AwsRequest;
use super::run::Run;
use super::span::{self, from_millis, millis};
use super::{described, target_props};
use crate::mcp::tool::{Hints, InputSchema, Tool, ToolResult};

/// `logs_search`.
pub const SEARCH: &str = "logs_search";
/// `logs_tail`.
pub const TAIL: &str = "logs_tail";
const SEARCH_ACTIONS: &[&str] = &["logs:FilterLogEvents"];
const TAIL_ACTIONS: &[&str] = &["logs:DescribeLogStreams", "logs:GetLogEvents"];
/// The JSON protocol's target prefix and version.
const TARGET: &str = "Logs_20140328";
const VERSION: &str = "1.1";

fn group_prop(p: &mut Map<String, Value>) {
    p.insert(
        "log_group".into(),
        args::string_max("The log group's name (/aws/lambda/orders).", 512),
    );
}

/// `logs_search` as listed.
pub fn search_tool() -> Tool {
    let mut p = Map::new();
    group_prop(&mut p);
    p.insert(
        "pattern".into(),
        args::string_max(
            "A CloudWatch Logs filter pattern (ERROR, \"timed out\", { $.level = \"error\" }); none: every event.",
            1024,
        ),
    );
    span::props(&mut p);
    p.insert(
        "limit".into(),
        args::integer("The most events returned (default 100).", 1, 1000),
    );
    target_props(&mut p);
    Tool {
        name: SEARCH.into(),
        title: "Search CloudWatch Logs".into(),
        description: described(
            "Searches a CloudWatch Logs group for events matching a filter pattern in a time range (the last hour unless given), oldest first, masked.",
            SEARCH_ACTIONS,
        ),
        input_schema: InputSchema::object(p, &["log_group"]),
        hints: Hints::READ,
    }
}

/// `logs_tail` as listed.
pub fn tail_tool() -> Tool {
    let mut p = Map::new();
    group_prop(&mut p);
    p.insert(
        "log_stream".into(),
        args::string_max("The stream; none: the group's stream written to last.", 512),
    );
    p.insert(
        "limit".into(),
        args::integer("How many of the latest events (default 50).", 1, 1000),
    );
    target_props(&mut p);
    Tool {
        name: TAIL.into(),
        title: "Tail CloudWatch Logs".into(),
        description: described(
            "Shows the latest events of a CloudWatch Logs stream (the group's most recently written stream unless named), masked.",
            TAIL_ACTIONS,
        ),
        input_schema: InputSchema::object(p, &["log_group"]),
        hints: Hints::READ,
    }
}

fn call(op: &str, body: &Value) -> Result<AwsRequest, String> {
    AwsRequest::json("logs", &format!("{TARGET}.{op}"), VERSION, body)
}

/// The `FilterLogEvents` request of `a` at `now`.
pub fn search_request(a: &Map<String, Value>, now: OffsetDateTime) -> Result<AwsRequest, String> {
    let (start, end) = span::of(a, now)?;
    let mut body = json!({
        "logGroupName": str_arg(a, "log_group").unwrap_or_default(),
        "startTime": millis(start),
        "endTime": millis(end),
        "limit": int_arg(a, "limit").unwrap_or(100),
    });
    if let Some(p) = str_arg(a, "pattern") {
        body["filterPattern"] = Value::from(p);
    }
    call("FilterLogEvents", &body)
}

/// The `DescribeLogStreams` request for the stream of `group` written to last.
pub fn latest_stream_request(group: &str) -> Result<AwsRequest, String> {
    call(
        "DescribeLogStreams",
        &json!({"logGroupName": group, "orderBy": "LastEventTime", "descending": true, "limit": 1}),
    )
}

/// The `GetLogEvents` request for the last `limit` events of `stream`.
pub fn tail_request(group: &str, stream: &str, limit: i64) -> Result<AwsRequest, String> {
    call(
        "GetLogEvents",
        &json!({"logGroupName": group, "logStreamName": stream, "limit": limit, "startFromHead": false}),
    )
}

/// One event as a line: time, stream (when known), message.
fn line(e: &Value) -> String {
    let at = e
        .get("timestamp")
        .and_then(Value::as_i64)
        .map(from_millis)
        .unwrap_or_default();
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim_end();
    match e.get("logStreamName").and_then(Value::as_str) {
        Some(s) => format!("{at} [{s}] {message}"),
        None => format!("{at} {message}"),
    }
}

/// A (masked) `FilterLogEvents` answer as text.
pub fn render_search(group: &str, body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    let events = v
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = if events.is_empty() {
        format!("No events in {group} match in that range.")
    } else {
        format!("{} events in {group}:\n", events.len())
    };
    let lines: Vec<String> = events.iter().map(line).collect();
    out.push_str(&lines.join("\n"));
    if v.get("nextToken").and_then(Value::as_str).is_some() {
        out.push_str("\n(More events match: narrow the pattern or the time range.)");
    }
    out
}

/// The stream named in a (masked) `DescribeLogStreams` answer.
pub fn latest_stream(body: &str) -> Option<String> {
    let v = serde_json::from_str::<Value>(body).ok()?;
    v.get("logStreams")?
        .as_array()?
        .first()?
        .get("logStreamName")?
        .as_str()
        .map(str::to_owned)
}

/// A (masked) `GetLogEvents` answer as text.
pub fn render_tail(group: &str, stream: &str, body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    let events = v
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if events.is_empty() {
        return format!("No events in {group} stream {stream}.");
    }
    let lines: Vec<String> = events.iter().map(line).collect();
    format!(
        "The latest {} events of {group} stream {stream}:\n{}",
        events.len(),
        lines.join("\n")
    )
}

/// Runs `logs_search`.
pub async fn search(run: &mut Run<'_, '_>, a: &Map<String, Value>) -> ToolResult {
    let group = str_arg(a, "log_group").unwrap_or_default().to_owned();
    let req = match search_request(a, run.cx().now) {
        Ok(r) => r,
        Err(e) => return run.fail(format!("{e}.")),
    };
    let target = match run.target(a).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    run.names(format!("log-group:{group}"));
    match run.send(&target, req).await {
        Ok(body) => ToolResult::text(render_search(&group, &body)),
        Err(r) => r,
    }
}

/// Runs `logs_tail`.
pub async fn tail(run: &mut Run<'_, '_>, a: &Map<String, Value>) -> ToolResult {
    let group = str_arg(a, "log_group").unwrap_or_default().to_owned();
    let limit = int_arg(a, "limit").unwrap_or(50);
    let target = match run.target(a).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    run.names(format!("log-group:{group}"));
    let stream = match str_arg(a, "log_stream") {
        Some(s) => s.to_owned(),
        None => {
            let req = match latest_stream_request(&group) {
                Ok(r) => r,
                Err(e) => return run.fail(format!("{e}.")),
            };
            match run.send(&target, req).await {
                Ok(body) => match latest_stream(&body) {
                    Some(s) => s,
                    None => return ToolResult::text(format!("Log group {group} has no streams.")),
                },
                Err(r) => return r,
            }
        }
    };
    let req = match tail_request(&group, &stream, limit) {
        Ok(r) => r,
        Err(e) => return run.fail(format!("{e}.")),
    };
    match run.send(&target, req).await {
        Ok(body) => ToolResult::text(render_tail(&group, &stream, &body)),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn a(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn body(r: &AwsRequest) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn a_search_filters_the_group_in_the_range() {
        let now = datetime!(2026-12-06 10:00 UTC);
        let r = search_request(
            &a(json!({"log_group": "/app", "pattern": "ERROR", "since_minutes": 10, "limit": 5})),
            now,
        )
        .unwrap();
        assert_eq!(r.service, "logs");
        assert_eq!(r.headers["x-amz-target"], "Logs_20140328.FilterLogEvents");
        assert_eq!(
            body(&r),
            json!({"logGroupName": "/app", "filterPattern": "ERROR", "limit": 5,
                   "startTime": 1_796_550_600_000_i64, "endTime": 1_796_551_200_000_i64})
        );
        // No pattern: every event, the last hour, 100 at most.
        let r = search_request(&a(json!({"log_group": "/app"})), now).unwrap();
        let b = body(&r);
        assert!(b.get("filterPattern").is_none());
        assert_eq!(b["limit"], 100);
        assert_eq!(b["startTime"], 1_796_547_600_000_i64);
        assert!(search_request(&a(json!({"log_group": "/app", "end_time": "x"})), now).is_err());
    }

    #[test]
    fn a_tail_reads_the_latest_stream_from_its_end() {
        let r = latest_stream_request("/app").unwrap();
        assert_eq!(
            r.headers["x-amz-target"],
            "Logs_20140328.DescribeLogStreams"
        );
        assert_eq!(
            body(&r),
            json!({"logGroupName": "/app", "orderBy": "LastEventTime", "descending": true, "limit": 1})
        );
        let r = tail_request("/app", "s1", 20).unwrap();
        assert_eq!(r.headers["x-amz-target"], "Logs_20140328.GetLogEvents");
        assert_eq!(
            body(&r),
            json!({"logGroupName": "/app", "logStreamName": "s1", "limit": 20, "startFromHead": false})
        );
        assert_eq!(
            latest_stream(r#"{"logStreams":[{"logStreamName":"2026/12/06/abc"}]}"#).as_deref(),
            Some("2026/12/06/abc")
        );
        assert_eq!(latest_stream(r#"{"logStreams":[]}"#), None);
    }

    #[test]
    fn events_render_as_lines() {
        let answer = json!({"events": [
            {"logStreamName": "s1", "timestamp": 1_796_551_200_000_i64, "message": "ERROR db password=[MASKED:secret]\n"},
            {"logStreamName": "s2", "timestamp": 1_796_551_201_000_i64, "message": "ok"}
        ], "nextToken": "t"});
        let text = render_search("/app", &answer.to_string());
        assert_eq!(
            text,
            "2 events in /app:\n2026-12-06T10:00:00Z [s1] ERROR db password=[MASKED:secret]\n2026-12-06T10:00:01Z [s2] ok\n(More events match: narrow the pattern or the time range.)"
        );
        assert_eq!(
            render_search("/app", r#"{"events":[]}"#),
            "No events in /app match in that range."
        );
        let tail = render_tail(
            "/app",
            "s1",
            &json!({"events": [{"timestamp": 1_796_551_200_000_i64, "message": "up"}]}).to_string(),
        );
        assert_eq!(
            tail,
            "The latest 1 events of /app stream s1:\n2026-12-06T10:00:00Z up"
        );
    }

    #[test]
    fn both_tools_only_read_and_name_their_actions() {
        for t in [search_tool(), tail_tool()] {
            assert!(t.hints.read_only && !t.hints.destructive);
            assert!(
                t.description.contains("IAM actions: logs:"),
                "{}",
                t.description
            );
            assert_eq!(t.input_schema.as_value()["required"], json!(["log_group"]));
        }
    }
}
