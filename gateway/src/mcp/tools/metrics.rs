//! `metrics_read`: one CloudWatch metric's statistic over a time range, in periods
//! (`GetMetricStatistics`, Query protocol, signed as `monitoring`).

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::args::{self, int_arg, str_arg};
use super::request::AwsRequest;
use super::run::Run;
use super::span;
use super::xml::{elements, first};
use super::{described, target_props};
use crate::clock::rfc3339;
use crate::mcp::tool::{Hints, InputSchema, Tool, ToolResult};

/// The tool's name.
pub const NAME: &str = "metrics_read";
const ACTIONS: &[&str] = &["cloudwatch:GetMetricStatistics"];
const VERSION: &str = "2010-08-01";
const STATISTICS: &[&str] = &["Average", "Sum", "Minimum", "Maximum", "SampleCount"];
/// The most data points CloudWatch returns for one call.
const MAX_POINTS: i64 = 1440;

/// The tool as listed.
pub fn tool() -> Tool {
    let mut p = Map::new();
    p.insert(
        "namespace".into(),
        args::string_max("The metric's namespace (AWS/Lambda, AWS/EC2, MyApp).", 256),
    );
    p.insert(
        "metric_name".into(),
        args::string_max("The metric (Errors, CPUUtilization).", 256),
    );
    p.insert(
        "dimensions".into(),
        args::string_map(
            "The metric's dimensions, name to value ({\"FunctionName\": \"orders\"}).",
            30,
        ),
    );
    p.insert(
        "statistic".into(),
        args::one_of("The statistic (default Average).", STATISTICS),
    );
    p.insert(
        "period_seconds".into(),
        args::integer(
            "The length of each data point, in seconds (default 300).",
            1,
            86_400,
        ),
    );
    span::props(&mut p);
    target_props(&mut p);
    Tool {
        name: NAME.into(),
        title: "Read a CloudWatch metric".into(),
        description: described(
            "Reads one CloudWatch metric's statistic over a time range (the last hour unless given), one data point per period, oldest first.",
            ACTIONS,
        ),
        input_schema: InputSchema::object(p, &["namespace", "metric_name"]),
        hints: Hints::READ,
    }
}

/// The request of `a` at `now`.
pub fn request(a: &Map<String, Value>, now: OffsetDateTime) -> Result<AwsRequest, String> {
    let (start, end) = span::of(a, now)?;
    let period = int_arg(a, "period_seconds").unwrap_or(300).max(1);
    let points = (end - start).whole_seconds() / period;
    if points > MAX_POINTS {
        return Err(format!(
            "the range holds {points} periods of {period} seconds, over CloudWatch's {MAX_POINTS}: raise `period_seconds` or shorten the range"
        ));
    }
    let mut params = vec![
        (
            "Namespace".to_owned(),
            str_arg(a, "namespace").unwrap_or_default().to_owned(),
        ),
        (
            "MetricName".to_owned(),
            str_arg(a, "metric_name").unwrap_or_default().to_owned(),
        ),
        ("StartTime".to_owned(), rfc3339(start)),
        ("EndTime".to_owned(), rfc3339(end)),
        ("Period".to_owned(), period.to_string()),
        (
            "Statistics.member.1".to_owned(),
            str_arg(a, "statistic").unwrap_or("Average").to_owned(),
        ),
    ];
    // Sorted, so equal arguments make the same call.
    let mut dims: Vec<(&String, &Value)> = a
        .get("dimensions")
        .and_then(Value::as_object)
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    dims.sort_by(|x, y| x.0.cmp(y.0));
    for (i, (name, value)) in dims.into_iter().enumerate() {
        let n = i + 1;
        params.push((format!("Dimensions.member.{n}.Name"), name.clone()));
        params.push((
            format!("Dimensions.member.{n}.Value"),
            value.as_str().unwrap_or_default().to_owned(),
        ));
    }
    Ok(AwsRequest::query(
        "monitoring",
        "GetMetricStatistics",
        VERSION,
        &params,
    ))
}

/// A (masked) `GetMetricStatistics` answer as text, oldest point first.
pub fn render(metric: &str, statistic: &str, body: &str) -> String {
    // An empty list may come as `<Datapoints/>`: no points either way.
    let points = elements(body, "Datapoints").first().copied().unwrap_or("");
    let mut rows: Vec<(String, String, String)> = elements(points, "member")
        .into_iter()
        .map(|m| {
            (
                first(m, "Timestamp").unwrap_or_default(),
                first(m, statistic).unwrap_or_default(),
                first(m, "Unit").unwrap_or_default(),
            )
        })
        .collect();
    if rows.is_empty() {
        return format!("No data points for {metric} in that range.");
    }
    rows.sort();
    let lines: Vec<String> = rows
        .into_iter()
        .map(|(t, v, u)| {
            if u.is_empty() || u == "None" {
                format!("{t} {v}")
            } else {
                format!("{t} {v} {u}")
            }
        })
        .collect();
    format!(
        "{metric} ({statistic}), {} data points:\n{}",
        lines.len(),
        lines.join("\n")
    )
}

/// Runs the tool.
pub async fn run(run: &mut Run<'_, '_>, a: &Map<String, Value>) -> ToolResult {
    let req = match request(a, run.cx().now) {
        Ok(r) => r,
        Err(e) => return run.fail(format!("{e}.")),
    };
    let target = match run.target(a).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let metric = format!(
        "{}/{}",
        str_arg(a, "namespace").unwrap_or_default(),
        str_arg(a, "metric_name").unwrap_or_default()
    );
    run.names(format!("metric:{metric}"));
    let statistic = str_arg(a, "statistic").unwrap_or("Average").to_owned();
    match run.send(&target, req).await {
        Ok(body) => ToolResult::text(render(&metric, &statistic, &body)),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn a(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_request_is_a_query_call_with_sorted_dimensions() {
        let now = datetime!(2026-12-06 10:00 UTC);
        let r = request(
            &a(json!({"namespace": "AWS/Lambda", "metric_name": "Errors", "statistic": "Sum",
                      "period_seconds": 60, "dimensions": {"Resource": "r", "FunctionName": "orders"}})),
            now,
        )
        .unwrap();
        assert_eq!(r.service, "monitoring");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            "Action=GetMetricStatistics&Version=2010-08-01&Namespace=AWS%2FLambda&MetricName=Errors\
             &StartTime=2026-12-06T09%3A00%3A00Z&EndTime=2026-12-06T10%3A00%3A00Z&Period=60\
             &Statistics.member.1=Sum&Dimensions.member.1.Name=FunctionName&Dimensions.member.1.Value=orders\
             &Dimensions.member.2.Name=Resource&Dimensions.member.2.Value=r"
        );
        let too_many = request(
            &a(json!({"namespace": "n", "metric_name": "m", "period_seconds": 1, "since_minutes": 60})),
            now,
        )
        .unwrap_err();
        assert!(too_many.contains("`period_seconds`"), "{too_many}");
    }

    #[test]
    fn data_points_render_oldest_first() {
        let body = "<GetMetricStatisticsResponse><GetMetricStatisticsResult><Label>Errors</Label><Datapoints>\
            <member><Timestamp>2026-12-06T09:05:00Z</Timestamp><Sum>3.0</Sum><Unit>Count</Unit></member>\
            <member><Timestamp>2026-12-06T09:00:00Z</Timestamp><Sum>1.0</Sum><Unit>Count</Unit></member>\
            </Datapoints></GetMetricStatisticsResult></GetMetricStatisticsResponse>";
        assert_eq!(
            render("AWS/Lambda/Errors", "Sum", body),
            "AWS/Lambda/Errors (Sum), 2 data points:\n2026-12-06T09:00:00Z 1.0 Count\n2026-12-06T09:05:00Z 3.0 Count"
        );
        assert_eq!(
            render("m", "Sum", "<R><Datapoints/></R>"),
            "No data points for m in that range."
        );
    }
}
