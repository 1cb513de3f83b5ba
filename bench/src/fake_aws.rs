//! A stand-in for AWS on loopback, in this process: STS `AssumeRole` (Query protocol, XML) for
//! the gateway's just-in-time credential, and two JSON-protocol reads the proxy benchmark calls:
//! CloudWatch Logs `DescribeLogGroups` (about 1.7 KB, nothing to mask) and Secrets Manager
//! `GetSecretValue` (about 0.8 KB, a secret to mask). It checks no signature: the cost measured is
//! the gateway's, not the stand-in's.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// The JSON-protocol target of the read with nothing to mask.
pub const DESCRIBE_TARGET: &str = "Logs_20140328.DescribeLogGroups";
/// The JSON-protocol target of the read whose answer holds a secret.
pub const SECRET_TARGET: &str = "secretsmanager.GetSecretValue";
/// The password inside the secret's answer, which must not come back through the gateway.
pub const SECRET_PASSWORD: &str = "Zq7-bench-db-Pa55word-x81";

/// The running stand-in; it stops with the process.
pub struct FakeAws {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

/// Starts the stand-in on a free loopback port.
pub async fn start() -> Result<FakeAws, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new().fallback(answer);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(FakeAws {
        url: format!("http://{addr}"),
    })
}

async fn answer(headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match target {
        DESCRIBE_TARGET => json(describe_log_groups()),
        SECRET_TARGET => json(get_secret_value()),
        "" if form_value(&body, "Action").as_deref() == Some("AssumeRole") => {
            let seconds = form_value(&body, "DurationSeconds")
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(3600);
            assume_role(seconds)
        }
        _ => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.1")],
            r#"{"__type":"UnknownOperationException"}"#,
        )
            .into_response(),
    }
}

fn json(body: String) -> Response {
    (
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amzn-requestid", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
        ],
        body,
    )
        .into_response()
}

/// The value of `name` in a form-encoded body (names and values are plain ASCII here).
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// STS's answer: a credential lasting the seconds asked for (the gateway keeps it only if it
/// ends within the session it asked for).
fn assume_role(seconds: i64) -> Response {
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    let expiration = expires
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let xml = format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIAQBENCHFAKE000001</AccessKeyId>
      <SecretAccessKey>benchFakeSecretAccessKey0123456789abcdefgh</SecretAccessKey>
      <SessionToken>FwoGZXIvYXdzEBenchFakeSessionToken0123456789abcdefghijklmnop</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAQBENCHFAKE0000001:bench</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/agent-bench/bench</Arn>
    </AssumedRoleUser>
    <PackedPolicySize>12</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>"#
    );
    ([("content-type", "text/xml")], xml).into_response()
}

/// Five log groups, about 1.7 KB, nothing a mask would touch.
pub fn describe_log_groups() -> String {
    let groups: Vec<serde_json::Value> = [
        "/payments/api",
        "/payments/worker",
        "/payments/batch-settlement",
        "/aws/lambda/payments-webhook",
        "/aws/ecs/payments-cluster",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| {
        serde_json::json!({
            "logGroupName": name,
            "creationTime": 1_733_000_000_000_u64 + i as u64 * 86_400_000,
            "retentionInDays": 30,
            "metricFilterCount": i % 3,
            "arn": format!("arn:aws:logs:eu-west-1:123456789012:log-group:{name}:*"),
            "storedBytes": 10_485_760 * (i as u64 + 1),
            "logGroupClass": "STANDARD",
            "logGroupArn": format!("arn:aws:logs:eu-west-1:123456789012:log-group:{name}"),
        })
    })
    .collect();
    serde_json::json!({ "logGroups": groups }).to_string()
}

/// A database secret, about 0.8 KB; its `SecretString` is masked whole.
pub fn get_secret_value() -> String {
    let secret = serde_json::json!({
        "engine": "postgres",
        "host": "payments-db.cluster-c1a2b3c4d5e6.eu-west-1.rds.amazonaws.com",
        "port": 5432,
        "dbname": "payments",
        "username": "payments_app",
        "password": SECRET_PASSWORD,
        "dbClusterIdentifier": "payments-db",
    })
    .to_string();
    serde_json::json!({
        "ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:payments/db-AbCdEf",
        "Name": "payments/db",
        "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE",
        "SecretString": secret,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1_733_000_000.123,
        "Description": "Connection settings of the payments database, rotated every 30 days by the rotation function arn:aws:lambda:eu-west-1:123456789012:function:payments-db-rotation.",
        "Tags": [
            {"Key": "project", "Value": "payments"},
            {"Key": "environment", "Value": "nonprod"},
            {"Key": "owner", "Value": "payments-platform"}
        ]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use claude_gateway::aws_proxy::mask::{mask, Rules};

    #[test]
    fn the_answers_are_small_and_only_the_secret_one_is_masked() {
        let ct = Some("application/x-amz-json-1.1");
        let describe = describe_log_groups();
        assert!(
            (1_000..=2_000).contains(&describe.len()),
            "{}",
            describe.len()
        );
        let m = mask(describe.as_bytes(), ct, &Rules::default()).unwrap();
        assert_eq!(m.counts.total(), 0, "{m:?}");

        let secret = get_secret_value();
        assert!((700..=1_000).contains(&secret.len()), "{}", secret.len());
        let m = mask(secret.as_bytes(), ct, &Rules::default()).unwrap();
        assert!(m.counts.total() > 0);
        assert!(!String::from_utf8_lossy(&m.body).contains(SECRET_PASSWORD));
    }

    #[test]
    fn form_values_are_found_by_name() {
        let body = b"Action=AssumeRole&Version=2011-06-15&DurationSeconds=900";
        assert_eq!(form_value(body, "Action").as_deref(), Some("AssumeRole"));
        assert_eq!(form_value(body, "DurationSeconds").as_deref(), Some("900"));
        assert_eq!(form_value(body, "RoleArn"), None);
    }
}
