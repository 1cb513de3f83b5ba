//! Whether a tool input made an AWS call, and which recent turn did: the AWS CLI form
//! (`aws secretsmanager get-secret-value`, `aws s3api get-object`, and the operations `aws s3
//! ls/cp/sync/mv/rm` run), or SDK code naming the operation (`boto3` with `.get_secret_value(`,
//! the JavaScript SDK's `GetSecretValueCommand`). Pure: the turns and the time are given.

use time::{Duration, OffsetDateTime};

use super::Turn;

/// What is known of a call, for matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Called<'a> {
    /// The service's signing name (`s3`, `secretsmanager`, `monitoring`).
    pub service: &'a str,
    /// The operation (`GetSecretValue`); a call that cannot be named matches no turn.
    pub operation: Option<&'a str>,
    /// For S3, the bucket the call names.
    pub bucket: Option<&'a str>,
}

/// The newest of `newest_first` within `window` before `now` with a tool input that names
/// `call`.
pub fn best<'t>(
    newest_first: impl Iterator<Item = &'t Turn>,
    call: &Called<'_>,
    now: OffsetDateTime,
    window: Duration,
) -> Option<&'t Turn> {
    call.operation?;
    newest_first
        .filter(|t| t.at <= now && now - t.at <= window)
        .find(|t| t.inputs.iter().any(|i| names(i, call)))
}

/// Whether tool input `input` (a command, or an input's JSON) makes `call`.
pub fn names(input: &str, call: &Called<'_>) -> bool {
    let Some(op) = call.operation else {
        return false;
    };
    if input.starts_with(super::capture::MCP_MARK) {
        // An MCP tool's call: its AWS calls are matched by the tool, not by the proxy.
        return false;
    }
    cli(input, call, op) || sdk(input, call.service, op)
}

/// The AWS CLI's names of a service, by its signing name.
fn cli_names(service: &str) -> &'static [&'static str] {
    match service {
        "s3" => &["s3api", "s3"],
        "monitoring" => &["cloudwatch"],
        "states" => &["stepfunctions"],
        "email" => &["ses", "sesv2"],
        "elasticloadbalancing" => &["elbv2", "elb"],
        "es" => &["opensearch", "es"],
        "execute-api" => &["apigateway", "apigatewayv2"],
        "cognito-idp" => &["cognito-idp"],
        _ => &[],
    }
}

/// Whether the `aws s3` command `command` runs the S3 operation `op`.
fn s3_high_level_runs(command: &str, op: &str) -> bool {
    /// What copying objects runs (`cp`, and `mv` and `sync` before their deletes).
    const COPY: &[&str] = &[
        "GetObject",
        "PutObject",
        "CopyObject",
        "HeadObject",
        "HeadBucket",
        "ListObjectsV2",
        "ListObjects",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
    ];
    let ops: &[&str] = match command {
        "ls" => &["ListBuckets", "ListObjectsV2", "ListObjects"],
        "cp" => COPY,
        "mv" | "sync" => return COPY.contains(&op) || op == "DeleteObject",
        "rm" => &[
            "DeleteObject",
            "DeleteObjects",
            "ListObjectsV2",
            "ListObjects",
        ],
        "mb" => &["CreateBucket"],
        "rb" => &[
            "DeleteBucket",
            "DeleteObject",
            "ListObjectsV2",
            "ListObjects",
        ],
        "website" => &["PutBucketWebsite"],
        _ => &[],
    };
    ops.contains(&op)
}

/// `GetSecretValue` as the CLI and boto3 spell it, with `sep` between words
/// (`get-secret-value`, `get_secret_value`; `ListObjectsV2` → `list-objects-v2`,
/// `DescribeDBInstances` → `describe-db-instances`).
pub fn spelled(op: &str, sep: char) -> String {
    let chars: Vec<char> = op.chars().collect();
    let mut out = String::with_capacity(op.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push(sep);
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A command's words, split at shell separators (`;`, `|`, `&`, parentheses, backquotes, line
/// breaks) into segments, quotes and backslashes dropped.
fn segments(input: &str) -> Vec<Vec<String>> {
    let mut all = vec![Vec::new()];
    let mut word = String::new();
    let end_word = |word: &mut String, all: &mut Vec<Vec<String>>| {
        if !word.is_empty() {
            if let Some(seg) = all.last_mut() {
                seg.push(std::mem::take(word));
            }
        }
    };
    for c in input.chars() {
        match c {
            ';' | '|' | '&' | '(' | ')' | '`' | '\n' | '\r' => {
                end_word(&mut word, &mut all);
                if all.last().is_some_and(|s| !s.is_empty()) {
                    all.push(Vec::new());
                }
            }
            '\'' | '"' | '\\' => {}
            c if c.is_whitespace() => end_word(&mut word, &mut all),
            c => word.push(c),
        }
    }
    end_word(&mut word, &mut all);
    all
}

/// The AWS CLI form: `aws [options] <service> <operation>`, or `aws s3 <command>`.
fn cli(input: &str, call: &Called<'_>, op: &str) -> bool {
    let kebab = spelled(op, '-');
    // Only a command that could name the call is split into words.
    if !input.contains("aws") || (call.service != "s3" && !input.contains(&kebab)) {
        return false;
    }
    let names = cli_names(call.service);
    let names: &[&str] = if names.is_empty() {
        std::slice::from_ref(&call.service)
    } else {
        names
    };
    for seg in segments(input) {
        let Some(at) = seg.iter().position(|w| w == "aws" || w.ends_with("/aws")) else {
            continue;
        };
        let rest = &seg[at + 1..];
        let Some(svc) = rest.iter().position(|w| names.contains(&w.as_str())) else {
            continue;
        };
        let after = &rest[svc + 1..];
        let runs = if call.service == "s3" && rest[svc] == "s3" {
            after
                .iter()
                .find(|w| !w.starts_with('-'))
                .is_some_and(|c| s3_high_level_runs(c, op))
        } else {
            after.contains(&kebab)
        };
        if runs && same_bucket(after, call) {
            return true;
        }
    }
    false
}

/// For S3, whether the buckets a command names (`--bucket b`, `s3://b/...`) include the call's;
/// a command that names none could be any.
fn same_bucket(words: &[String], call: &Called<'_>) -> bool {
    let Some(bucket) = call.bucket.filter(|_| call.service == "s3") else {
        return true;
    };
    let mut named = words
        .iter()
        .filter_map(|w| w.strip_prefix("s3://"))
        .map(|p| p.split('/').next().unwrap_or_default())
        .chain(
            words
                .windows(2)
                .filter(|w| w[0] == "--bucket")
                .map(|w| w[1].as_str()),
        )
        .peekable();
    named.peek().is_none() || named.any(|b| b == bucket)
}

/// SDK code: boto3 calling the operation's snake_case method on a client of the service, or the
/// JavaScript SDK sending the operation's command.
fn sdk(input: &str, service: &str, op: &str) -> bool {
    if input.contains("boto") {
        let method = format!(".{}(", spelled(op, '_'));
        if input.contains(&method) {
            let sdk_names: &[&str] = match service {
                "s3" => &["s3"],
                _ => cli_names(service),
            };
            let sdk_names: &[&str] = if sdk_names.is_empty() {
                std::slice::from_ref(&service)
            } else {
                sdk_names
            };
            return sdk_names.iter().any(|n| {
                // Quoted in code, or in code inside an input's JSON.
                input.contains(&format!("'{n}'"))
                    || input.contains(&format!("\"{n}\""))
                    || input.contains(&format!("\\\"{n}\\\""))
            });
        }
    }
    input.contains("@aws-sdk/client-") && input.contains(&format!("{op}Command"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn call<'a>(service: &'a str, operation: &'a str, bucket: Option<&'a str>) -> Called<'a> {
        Called {
            service,
            operation: Some(operation),
            bucket,
        }
    }

    #[test]
    fn operations_are_spelled_as_the_cli_and_boto3_spell_them() {
        for (op, kebab) in [
            ("GetSecretValue", "get-secret-value"),
            ("ListObjectsV2", "list-objects-v2"),
            ("DescribeDBInstances", "describe-db-instances"),
            ("GetObject", "get-object"),
            ("Scan", "scan"),
            ("GetCallerIdentity", "get-caller-identity"),
            ("FilterLogEvents", "filter-log-events"),
        ] {
            assert_eq!(spelled(op, '-'), kebab);
        }
        assert_eq!(spelled("GetSecretValue", '_'), "get_secret_value");
    }

    #[test]
    fn commands_and_code_match_the_calls_they_make() {
        let b = Some("payments-reports");
        // (tool input, call, matches)
        let table: Vec<(&str, Called<'_>, bool)> = vec![
            ("aws s3 ls s3://payments-reports/", call("s3", "ListObjectsV2", b), true),
            ("aws s3 ls", call("s3", "ListBuckets", None), true),
            ("aws s3 ls s3://payments-reports/", call("s3", "ListObjectsV2", Some("other")), false),
            ("aws s3 ls s3://payments-reports/", call("s3", "DeleteObject", b), false),
            ("aws s3 cp s3://payments-reports/notes.txt -", call("s3", "GetObject", b), true),
            ("aws s3 cp ./a.txt s3://payments-reports/a.txt", call("s3", "PutObject", b), true),
            ("aws s3 sync . s3://payments-reports/ --delete", call("s3", "DeleteObject", b), true),
            ("aws s3 rm s3://payments-reports/x", call("s3", "DeleteObject", b), true),
            ("aws s3 rm s3://payments-reports/x", call("s3", "GetObject", b), false),
            ("aws s3api get-object --bucket payments-reports --key k out", call("s3", "GetObject", b), true),
            ("aws s3api get-object --bucket elsewhere --key k out", call("s3", "GetObject", b), false),
            ("aws --region eu-west-1 s3api list-objects-v2 --bucket payments-reports", call("s3", "ListObjectsV2", b), true),
            ("aws secretsmanager get-secret-value --secret-id payments/db", call("secretsmanager", "GetSecretValue", None), true),
            ("/usr/local/bin/aws ssm get-parameter --name /p --with-decryption | jq .", call("ssm", "GetParameter", None), true),
            ("cd /tmp && aws logs describe-log-groups", call("logs", "DescribeLogGroups", None), true),
            ("echo $(aws sts get-caller-identity)", call("sts", "GetCallerIdentity", None), true),
            ("aws cloudwatch get-metric-data --cli-input-json file://q.json", call("monitoring", "GetMetricData", None), true),
            // Another service, another operation, or the operation outside an aws command.
            ("aws secretsmanager get-secret-value --secret-id x", call("ssm", "GetParameter", None), false),
            ("aws ssm get-parameter --name x", call("secretsmanager", "GetParameter", None), false),
            ("aws secretsmanager list-secrets", call("secretsmanager", "GetSecretValue", None), false),
            ("echo get-secret-value; secretsmanager", call("secretsmanager", "GetSecretValue", None), false),
            ("aws secretsmanager list-secrets; get-secret-value", call("secretsmanager", "GetSecretValue", None), false),
            ("ls -la", call("s3", "ListBuckets", None), false),
            // SDK code, as a script's text or an input's JSON.
            ("python3 -c \"import boto3; print(boto3.client('secretsmanager').get_secret_value(SecretId='x'))\"", call("secretsmanager", "GetSecretValue", None), true),
            (r#"{"file_path":"a.py","content":"import boto3\ns3 = boto3.client(\"s3\")\ns3.list_objects_v2(Bucket=b)"}"#, call("s3", "ListObjectsV2", b), true),
            ("import boto3\nboto3.client('s3').get_object(Bucket='b', Key='k')", call("secretsmanager", "GetObject", None), false),
            ("import boto3\nboto3.client('s3').get_object(Bucket='b', Key='k')", call("s3", "PutObject", b), false),
            ("import { S3Client, GetObjectCommand } from \"@aws-sdk/client-s3\"", call("s3", "GetObject", b), true),
        ];
        for (input, c, want) in table {
            assert_eq!(names(input, &c), want, "{input:?} for {c:?}");
        }
        // An operation that could not be named matches nothing.
        let unnamed = Called {
            service: "s3",
            operation: None,
            bucket: None,
        };
        assert!(!names("aws s3 ls", &unnamed));
    }

    #[test]
    fn the_newest_matching_turn_within_the_window_is_the_one() {
        let turn = |secs: i64, id: &str, input: &str| Turn {
            at: t0() + Duration::seconds(secs),
            request_id: id.into(),
            prompt_fingerprint: None,
            inputs: vec!["echo unrelated".into(), input.into()],
        };
        let turns = [
            turn(0, "first", "aws s3 ls s3://payments-reports/"),
            turn(5, "second", "aws s3 ls s3://payments-reports/"),
            turn(8, "other-service", "aws secretsmanager list-secrets"),
            turn(20, "later", "aws s3 ls s3://payments-reports/"),
        ];
        let ls = call("s3", "ListObjectsV2", Some("payments-reports"));
        let window = Duration::seconds(120);
        let at = |secs: i64| t0() + Duration::seconds(secs);
        let pick = |now| best(turns.iter().rev(), &ls, now, window).map(|t| t.request_id.as_str());
        // The newest matching turn before the call, not one after it, nor another service's.
        assert_eq!(pick(at(10)), Some("second"));
        assert_eq!(pick(at(30)), Some("later"));
        // Too old: outside the window.
        assert_eq!(pick(at(20 + 121)), None);
        assert_eq!(pick(at(5 + 120)), Some("later"));
        // Before any turn.
        assert_eq!(pick(at(-1)), None);
    }
}
