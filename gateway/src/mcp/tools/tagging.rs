//! `resources_find`: a project's resources by tag, through the Resource Groups Tagging API
//! (`GetResources`, JSON protocol, signed as `tagging`). The project's own tag is always one of
//! the filters, so the answer stays within the project.

use serde_json::{json, Map, Value};

use super::args::{self, int_arg};
use super::request::AwsRequest;
use super::run::Run;
use super::{described, target_props};
use crate::mcp::tool::{Hints, InputSchema, Tool, ToolResult};

/// The tool's name.
pub const NAME: &str = "resources_find";
const TARGET: &str = "ResourceGroupsTaggingAPI_20170126.GetResources";

/// The tool as listed.
pub fn tool() -> Tool {
    let mut p = Map::new();
    p.insert(
        "tags".into(),
        args::string_map(
            "Tags the resources must carry, key to value; an empty value matches any value of that key.",
            20,
        ),
    );
    p.insert(
        "resource_types".into(),
        args::strings(
            "Resource types to keep (s3:bucket, ec2:instance, lambda:function, logs:log-group); none: all.",
            20,
        ),
    );
    p.insert(
        "limit".into(),
        args::integer("The most resources returned (default 50).", 1, 100),
    );
    target_props(&mut p);
    Tool {
        name: NAME.into(),
        title: "Find a project's AWS resources".into(),
        description: described(
            "Finds the project's AWS resources (those carrying the project's tag) by further tags and resource types, with their ARNs and tags.",
            &["tag:GetResources"],
        ),
        input_schema: InputSchema::object(p, &[]),
        hints: Hints::READ,
    }
}

/// The `GetResources` request of `a`, narrowed to the project's tag `project_tag`.
pub fn request(
    a: &Map<String, Value>,
    project_tag: Option<(&str, &str)>,
) -> Result<AwsRequest, String> {
    let mut filters = Vec::new();
    if let Some((k, v)) = project_tag {
        filters.push(json!({"Key": k, "Values": [v]}));
    }
    let mut tags: Vec<(&String, &Value)> = a
        .get("tags")
        .and_then(Value::as_object)
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    tags.sort_by(|x, y| x.0.cmp(y.0));
    for (k, v) in tags {
        match v.as_str().filter(|v| !v.is_empty()) {
            Some(v) => filters.push(json!({"Key": k, "Values": [v]})),
            None => filters.push(json!({"Key": k})),
        }
    }
    let mut body = json!({
        "TagFilters": filters,
        "ResourcesPerPage": int_arg(a, "limit").unwrap_or(50),
    });
    if let Some(types) = a.get("resource_types").filter(|t| t.is_array()) {
        body["ResourceTypeFilters"] = types.clone();
    }
    AwsRequest::json("tagging", TARGET, "1.1", &body)
}

/// A (masked) `GetResources` answer as text: an ARN a line, with its tags.
pub fn render(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    let list = v
        .get("ResourceTagMappingList")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        return "No resources of the project match.".into();
    }
    let lines: Vec<String> = list
        .iter()
        .map(|r| {
            let arn = r.get("ResourceARN").and_then(Value::as_str).unwrap_or("?");
            let tags: Vec<String> = r
                .get("Tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|t| {
                    format!(
                        "{}={}",
                        t.get("Key").and_then(Value::as_str).unwrap_or_default(),
                        t.get("Value").and_then(Value::as_str).unwrap_or_default()
                    )
                })
                .collect();
            format!("{arn}  {}", tags.join(", "))
        })
        .collect();
    let mut out = format!("{} resources:\n{}", lines.len(), lines.join("\n"));
    if v.get("PaginationToken")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        out.push_str("\n(More resources match: narrow the tags or types.)");
    }
    out
}

/// The ARNs of a (masked) `GetResources` answer.
fn arns(body: &str) -> Vec<String> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("ResourceTagMappingList").cloned())
        .and_then(|l| l.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            r.get("ResourceARN")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

/// Runs the tool.
pub async fn run(run: &mut Run<'_, '_>, a: &Map<String, Value>) -> ToolResult {
    let target = match run.target(a).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let tag = run
        .cx()
        .state
        .config
        .aws_access
        .as_ref()
        .and_then(|c| c.projects.iter().find(|p| p.name == target.project))
        .map(|p| (p.tag.key.clone(), p.tag.value.clone()));
    let req = match request(a, tag.as_ref().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(r) => r,
        Err(e) => return run.fail(format!("{e}.")),
    };
    match run.send(&target, req).await {
        Ok(body) => {
            for arn in arns(&body) {
                run.names(arn);
            }
            ToolResult::text(render(&body))
        }
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_projects_tag_is_always_a_filter() {
        let r = request(
            &a(json!({"tags": {"team": "pay", "env": ""}, "resource_types": ["s3:bucket"], "limit": 10})),
            Some(("project", "payments")),
        )
        .unwrap();
        assert_eq!(r.service, "tagging");
        assert_eq!(
            r.headers["x-amz-target"],
            "ResourceGroupsTaggingAPI_20170126.GetResources"
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"TagFilters": [
                {"Key": "project", "Values": ["payments"]},
                {"Key": "env"},
                {"Key": "team", "Values": ["pay"]}],
              "ResourceTypeFilters": ["s3:bucket"], "ResourcesPerPage": 10})
        );
        let r = request(&a(json!({})), Some(("p", "x"))).unwrap();
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"TagFilters": [{"Key": "p", "Values": ["x"]}], "ResourcesPerPage": 50})
        );
    }

    #[test]
    fn resources_render_with_their_tags() {
        let body = json!({"ResourceTagMappingList": [
            {"ResourceARN": "arn:aws:s3:::pay-logs", "Tags": [{"Key": "project", "Value": "payments"}]}
        ], "PaginationToken": ""})
        .to_string();
        assert_eq!(
            render(&body),
            "1 resources:\narn:aws:s3:::pay-logs  project=payments"
        );
        assert_eq!(arns(&body), vec!["arn:aws:s3:::pay-logs".to_owned()]);
        assert_eq!(
            render(r#"{"ResourceTagMappingList":[]}"#),
            "No resources of the project match."
        );
    }
}
