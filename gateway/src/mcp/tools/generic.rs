//! `aws_call`: any operation of a JSON- or Query-protocol service (service, operation,
//! parameters), decided by the project's rules like any other call: the operation's class
//! decides whether it reads or writes. A small table knows common services' JSON targets and
//! Query API versions; `target_prefix` (with `json_version`) or `api_version` reach the rest.

use serde_json::{Map, Value};

use super::args::{self, str_arg};
use super::request::AwsRequest;
use super::run::Run;
use super::{described, target_props};
use crate::mcp::tool::{InputSchema, Tool, ToolResult};

/// The tool's name.
pub const NAME: &str = "aws_call";
/// The most query parameters a Query call is flattened to.
const MAX_QUERY_PARAMS: usize = 200;

/// How a service is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// JSON: `X-Amz-Target: {prefix}.{operation}`, `application/x-amz-json-{version}`.
    Json {
        /// The target prefix.
        prefix: String,
        /// `1.0` or `1.1`.
        version: String,
    },
    /// Query: `Action={operation}&Version={version}`.
    Query {
        /// The API version.
        version: String,
    },
}

/// Common services by signing name: (JSON target prefix, JSON version) or Query API version.
const JSON_SERVICES: &[(&str, &str, &str)] = &[
    ("dynamodb", "DynamoDB_20120810", "1.0"),
    ("logs", "Logs_20140328", "1.1"),
    ("secretsmanager", "secretsmanager", "1.1"),
    ("ssm", "AmazonSSM", "1.1"),
    ("kms", "TrentService", "1.1"),
    ("events", "AWSEvents", "1.1"),
    ("kinesis", "Kinesis_20131202", "1.1"),
    ("ecs", "AmazonEC2ContainerServiceV20141113", "1.1"),
    ("ecr", "AmazonEC2ContainerRegistry_V20150921", "1.1"),
    ("states", "AWSStepFunctions", "1.0"),
    ("tagging", "ResourceGroupsTaggingAPI_20170126", "1.1"),
    (
        "cloudtrail",
        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101",
        "1.1",
    ),
    ("codebuild", "CodeBuild_20161006", "1.1"),
    ("glue", "AWSGlue", "1.1"),
    ("athena", "AmazonAthena", "1.1"),
    ("sqs", "AmazonSQS", "1.0"),
    ("acm", "CertificateManager", "1.1"),
    ("firehose", "Firehose_20150804", "1.1"),
    ("cognito-idp", "AWSCognitoIdentityProviderService", "1.1"),
];
const QUERY_SERVICES: &[(&str, &str)] = &[
    ("sts", "2011-06-15"),
    ("iam", "2010-05-08"),
    ("ec2", "2016-11-15"),
    ("monitoring", "2010-08-01"),
    ("sns", "2010-03-31"),
    ("cloudformation", "2010-05-15"),
    ("elasticloadbalancing", "2015-12-01"),
    ("rds", "2014-10-31"),
    ("autoscaling", "2011-01-01"),
    ("elasticache", "2015-02-02"),
    ("email", "2010-12-01"),
];

/// The tool as listed.
pub fn tool() -> Tool {
    let mut p = Map::new();
    p.insert(
        "service".into(),
        args::string_max(
            "The service's signing name: dynamodb, secretsmanager, ssm, kms, sqs, sns, ec2, iam, sts, monitoring (CloudWatch), cloudformation, rds, ecs, logs, events, states, ...",
            64,
        ),
    );
    p.insert(
        "operation".into(),
        args::string_max(
            "The API operation, as AWS names it (DescribeTable, ListQueues).",
            128,
        ),
    );
    p.insert(
        "params".into(),
        args::object(
            "The operation's parameters as AWS documents them (JSON services: the request body; Query services: names to values, lists and nested objects flattened as AWS expects).",
        ),
    );
    p.insert(
        "target_prefix".into(),
        args::string_max(
            "For a JSON-protocol service not known here: its X-Amz-Target prefix (AmazonSSM).",
            128,
        ),
    );
    p.insert(
        "json_version".into(),
        args::one_of(
            "With target_prefix: the JSON protocol version (default 1.1).",
            &["1.0", "1.1"],
        ),
    );
    p.insert(
        "api_version".into(),
        args::string_max(
            "For a Query-protocol service not known here: its API version (2010-05-08).",
            32,
        ),
    );
    target_props(&mut p);
    Tool {
        name: NAME.into(),
        title: "Call an AWS API".into(),
        description: described(
            "Calls one operation of an AWS service that speaks the JSON or Query protocol (not S3 or other REST APIs: use the S3 tools). The project's rules decide it like any call: reads run, writes may be refused or held for a person's approval (then call again with the same arguments once approved). The answer is masked.",
            &["<service>:<operation>, as the call names it"],
        ),
        input_schema: InputSchema::object(p, &["service", "operation"]),
        hints: crate::mcp::tool::Hints {
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: true,
        },
    }
}

/// How `service` is called, from the arguments' override or the table.
pub fn protocol(service: &str, a: &Map<String, Value>) -> Result<Protocol, String> {
    if let Some(prefix) = str_arg(a, "target_prefix") {
        return Ok(Protocol::Json {
            prefix: prefix.to_owned(),
            version: str_arg(a, "json_version").unwrap_or("1.1").to_owned(),
        });
    }
    if let Some(version) = str_arg(a, "api_version") {
        return Ok(Protocol::Query {
            version: version.to_owned(),
        });
    }
    if let Some((_, prefix, version)) = JSON_SERVICES.iter().find(|(s, _, _)| *s == service) {
        return Ok(Protocol::Json {
            prefix: (*prefix).to_owned(),
            version: (*version).to_owned(),
        });
    }
    if let Some((_, version)) = QUERY_SERVICES.iter().find(|(s, _)| *s == service) {
        return Ok(Protocol::Query {
            version: (*version).to_owned(),
        });
    }
    if service == "s3" {
        return Err("S3 speaks REST, not JSON or Query: use s3_list, s3_read or s3_put".into());
    }
    Err(format!(
        "the gateway does not know how to call service `{service}`: pass `target_prefix` (a JSON-protocol service) or `api_version` (a Query-protocol service)"
    ))
}

/// Whether a name is a plausible service signing name or operation.
fn valid_name(s: &str, operation: bool) -> bool {
    let first_ok = if operation {
        s.starts_with(|c: char| c.is_ascii_uppercase())
    } else {
        s.starts_with(|c: char| c.is_ascii_lowercase())
    };
    first_ok
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || (!operation && b == b'-'))
}

/// The longest flattened parameter name (the longest of AWS's Query APIs are under 100).
const MAX_PARAM_NAME: usize = 256;

/// Query parameters flattened from JSON `params`: objects as `Name.Sub`, lists as
/// `Name.member.N` (EC2: `Name.N`), scalars as text.
pub fn flatten(
    service: &str,
    params: &Map<String, Value>,
) -> Result<Vec<(String, String)>, String> {
    fn walk(
        ec2: bool,
        name: &str,
        v: &Value,
        out: &mut Vec<(String, String)>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 16 || out.len() > MAX_QUERY_PARAMS {
            return Err(format!(
                "`params` flattens to more than {MAX_QUERY_PARAMS} query parameters or nests too deep"
            ));
        }
        // Each parameter's name repeats its parents' names: bounded, so that a long key above a
        // list cannot multiply into a large request.
        if name.len() > MAX_PARAM_NAME {
            return Err(format!(
                "`params` flattens to a parameter name longer than {MAX_PARAM_NAME} characters"
            ));
        }
        match v {
            Value::Null => {}
            Value::Bool(b) => out.push((name.to_owned(), b.to_string())),
            Value::Number(n) => out.push((name.to_owned(), n.to_string())),
            Value::String(s) => out.push((name.to_owned(), s.clone())),
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    let n = i + 1;
                    let key = if ec2 {
                        format!("{name}.{n}")
                    } else {
                        format!("{name}.member.{n}")
                    };
                    walk(ec2, &key, x, out, depth + 1)?;
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    walk(ec2, &format!("{name}.{k}"), x, out, depth + 1)?;
                }
            }
        }
        Ok(())
    }
    let ec2 = service == "ec2";
    let mut out = Vec::new();
    for (k, v) in params {
        walk(ec2, k, v, &mut out, 0)?;
    }
    if out.iter().any(|(k, _)| k == "Action" || k == "Version") {
        return Err(
            "`params` must not set Action or Version: they come from `operation` and the service"
                .into(),
        );
    }
    Ok(out)
}

/// The request of `a`.
pub fn request(a: &Map<String, Value>) -> Result<AwsRequest, String> {
    let service = str_arg(a, "service").unwrap_or_default();
    let operation = str_arg(a, "operation").unwrap_or_default();
    if !valid_name(service, false) {
        return Err("argument `service` must be a signing name such as dynamodb or ec2".into());
    }
    if !valid_name(operation, true) {
        return Err("argument `operation` must be an operation name such as DescribeTable".into());
    }
    let empty = Map::new();
    let params = a.get("params").and_then(Value::as_object).unwrap_or(&empty);
    match protocol(service, a)? {
        Protocol::Json { prefix, version } => AwsRequest::json(
            service,
            &format!("{prefix}.{operation}"),
            &version,
            &Value::Object(params.clone()),
        ),
        Protocol::Query { version } => Ok(AwsRequest::query(
            service,
            operation,
            &version,
            &flatten(service, params)?,
        )),
    }
}

/// Runs the tool.
pub async fn run(run: &mut Run<'_, '_>, a: &Map<String, Value>) -> ToolResult {
    let req = match request(a) {
        Ok(r) => r,
        Err(e) => return run.fail(format!("{e}.")),
    };
    let target = match run.target(a).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let what = format!(
        "{} {}",
        str_arg(a, "service").unwrap_or_default(),
        str_arg(a, "operation").unwrap_or_default()
    );
    match run.send(&target, req).await {
        Ok(body) if body.trim().is_empty() => {
            ToolResult::text(format!("{what}: done (no content)."))
        }
        Ok(body) => ToolResult::text(format!("{what}:\n{body}")),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_known_json_service_gets_its_target_and_version() {
        let r = request(&a(json!({"service": "dynamodb", "operation": "DescribeTable", "params": {"TableName": "orders"}}))).unwrap();
        assert_eq!(r.service, "dynamodb");
        assert_eq!(r.headers["x-amz-target"], "DynamoDB_20120810.DescribeTable");
        assert_eq!(r.headers["content-type"], "application/x-amz-json-1.0");
        assert_eq!(r.body, bytes::Bytes::from(r#"{"TableName":"orders"}"#));
        // No params: an empty object.
        let r = request(&a(
            json!({"service": "secretsmanager", "operation": "ListSecrets"}),
        ))
        .unwrap();
        assert_eq!(r.body, bytes::Bytes::from("{}"));
    }

    #[test]
    fn a_known_query_service_gets_its_version_and_flattened_params() {
        let r = request(&a(json!({"service": "sns", "operation": "Publish",
            "params": {"TopicArn": "arn:t", "Attrs": {"A": 1}, "Names": ["x", "y"], "Skip": null}}))).unwrap();
        assert_eq!(r.service, "sns");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            "Action=Publish&Version=2010-03-31&Attrs.A=1&Names.member.1=x&Names.member.2=y&TopicArn=arn%3At"
        );
        let r = request(&a(
            json!({"service": "ec2", "operation": "DescribeInstances",
            "params": {"InstanceId": ["i-1", "i-2"]}}),
        ))
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2"
        );
    }

    #[test]
    fn the_escape_hatches_reach_unknown_services() {
        let r = request(&a(json!({"service": "newsvc", "operation": "GetThing", "target_prefix": "NewSvc_2030", "json_version": "1.0"}))).unwrap();
        assert_eq!(r.headers["x-amz-target"], "NewSvc_2030.GetThing");
        assert_eq!(r.headers["content-type"], "application/x-amz-json-1.0");
        let r = request(&a(
            json!({"service": "oldsvc", "operation": "GetThing", "api_version": "2012-01-01"}),
        ))
        .unwrap();
        assert!(String::from_utf8_lossy(&r.body).starts_with("Action=GetThing&Version=2012-01-01"));
    }

    #[test]
    fn bad_calls_say_what_to_do() {
        let unknown =
            request(&a(json!({"service": "newsvc", "operation": "GetThing"}))).unwrap_err();
        assert!(
            unknown.contains("target_prefix") && unknown.contains("api_version"),
            "{unknown}"
        );
        let s3 = request(&a(json!({"service": "s3", "operation": "GetObject"}))).unwrap_err();
        assert!(s3.contains("s3_read"), "{s3}");
        for (svc, op) in [
            ("Dynamodb", "DescribeTable"),
            ("dynamodb", "describe-table"),
            ("dyn amo", "X"),
            ("sts", "Get.Caller"),
        ] {
            let e = request(&a(json!({"service": svc, "operation": op}))).unwrap_err();
            assert!(e.starts_with("argument `"), "{svc} {op}: {e}");
        }
        let sneaky = request(&a(json!({"service": "sts", "operation": "GetCallerIdentity", "params": {"Action": "AssumeRole"}}))).unwrap_err();
        assert!(sneaky.contains("Action"), "{sneaky}");
        let mut big = Map::new();
        big.insert(
            "L".into(),
            Value::Array(vec![Value::from(1); MAX_QUERY_PARAMS + 5]),
        );
        assert!(flatten("sns", &big).is_err());
        // A long key above a list would be repeated in every element's name.
        let mut long = Map::new();
        long.insert(
            "!".repeat(100_000),
            Value::Array(vec![Value::from(0); MAX_QUERY_PARAMS]),
        );
        let e = flatten("ec2", &long).unwrap_err();
        assert!(e.contains("name longer"), "{e}");
        let mut nested = Map::new();
        nested.insert("A".repeat(MAX_PARAM_NAME - 4), json!({"Long": [1, 2]}));
        assert!(flatten("sns", &nested).is_err());
        let mut fine = Map::new();
        fine.insert("A".repeat(200), json!([1, 2]));
        assert_eq!(flatten("ec2", &fine).unwrap().len(), 2);
    }

    #[test]
    fn it_is_marked_as_possibly_destructive() {
        let t = tool();
        assert!(!t.hints.read_only && t.hints.destructive);
    }
}
