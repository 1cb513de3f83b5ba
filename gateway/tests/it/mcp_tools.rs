//! The MCP tools over `/mcp` against moto as the project's account, beyond what the end-to-end
//! test with the real client covers: the access overview, a log tail, an S3 listing, a metric,
//! resources by tag, an argument error naming the field, a result cut at `max_result_bytes`
//! with its marker, a developer over the list limit, and a person who is no project's member.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::gateway::{config, Gateway};
use crate::support::mcp::access_token;
use crate::support::moto::{Moto, ENV};
use crate::support::pg::{free_port, shared};
use crate::support::runtime;

/// A secret an S3 object holds; it must never reach a tool result.
const SECRET: &str = "AKIAZZZZZZZZZZZZZZZZ";

/// The project, a small list allowance, and results cut at 1 KiB.
fn sections(moto: &str) -> String {
    format!(
        "aws_access:
  sts_endpoint_url: {moto}
  proxy:
    upstream_url: {moto}
    limits: {{window_seconds: 86400, read: 50, list: 3, write: 3}}
  mcp: {{max_result_bytes: 1024}}
  projects:
    - name: payments
      role_arn: arn:aws:iam::123456789012:role/agent-payments
      regions: [eu-west-1]
      tag: {{key: project, value: payments}}
      environment: nonprod
      read: ['s3:List*', 's3:GetObject', 'logs:Describe*', 'logs:GetLogEvents', 'cloudwatch:GetMetricStatistics', 'tag:GetResources']
  members:
    - {{project: payments, groups: [payments], level: read}}
"
    )
}

/// Seeds moto: a log group with an error line, a tagged bucket with a config file holding a
/// secret and a 3 KB report, another team's bucket, and a metric data point.
fn seed(moto: &Moto) {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let events = format!("timestamp={now_ms},message='ERROR payment 4711 declined'");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.txt");
    std::fs::write(&config, format!("aws_access_key_id = {SECRET}\n")).unwrap();
    let salaries = dir.path().join("salaries.txt");
    std::fs::write(&salaries, "SALARY-TABLE of another team\n").unwrap();
    let salaries = salaries.display().to_string();
    let report = dir.path().join("report.txt");
    std::fs::write(&report, "report line\n".repeat(250)).unwrap();
    let (config, report) = (config.display().to_string(), report.display().to_string());
    let runs: Vec<Vec<&str>> = vec![
        vec![
            "logs",
            "create-log-group",
            "--log-group-name",
            "/payments/api",
        ],
        vec![
            "logs",
            "create-log-stream",
            "--log-group-name",
            "/payments/api",
            "--log-stream-name",
            "web-1",
        ],
        vec![
            "logs",
            "put-log-events",
            "--log-group-name",
            "/payments/api",
            "--log-stream-name",
            "web-1",
            "--log-events",
            &events,
        ],
        vec![
            "s3api",
            "create-bucket",
            "--bucket",
            "payments-config",
            "--create-bucket-configuration",
            "LocationConstraint=eu-west-1",
        ],
        vec![
            "s3api",
            "put-bucket-tagging",
            "--bucket",
            "payments-config",
            "--tagging",
            "TagSet=[{Key=project,Value=payments}]",
        ],
        vec!["s3", "cp", &config, "s3://payments-config/config.txt"],
        vec![
            "s3api",
            "create-bucket",
            "--bucket",
            "hr-private",
            "--create-bucket-configuration",
            "LocationConstraint=eu-west-1",
        ],
        vec!["s3", "cp", &salaries, "s3://hr-private/salaries.txt"],
        vec!["s3", "cp", &report, "s3://payments-config/report.txt"],
        vec![
            "cloudwatch",
            "put-metric-data",
            "--namespace",
            "Payments",
            "--metric-name",
            "Declines",
            "--value",
            "7",
        ],
    ];
    for args in runs {
        moto.aws("eu-west-1", &args);
    }
}

/// One developer's MCP session.
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    session: String,
    next: i64,
}

impl Client {
    async fn start(base: &str, login: &str, groups: &[&str]) -> Client {
        let now = time::OffsetDateTime::now_utc();
        let token = access_token(base, login, groups, now, 900);
        let http = crate::support::client();
        let url = format!("{base}/mcp");
        let r = http
            .post(&url)
            .bearer_auth(&token)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        Client {
            http,
            url,
            token,
            session,
            next: 1,
        }
    }

    /// Calls `tool` with `arguments`: whether the result is an error, and its text.
    async fn call(&mut self, tool: &str, arguments: Value) -> (bool, String) {
        self.next += 1;
        let r = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", &self.session)
            .json(
                &json!({"jsonrpc": "2.0", "id": self.next, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["id"], self.next, "{v}");
        let result = &v["result"];
        let text = result["content"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .filter_map(|c| c["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n");
        (result["isError"] == true, text)
    }
}

#[test]
fn the_tools_read_the_projects_account_within_the_limits_and_only_for_members() {
    let rt = runtime();
    let moto = Moto::start();
    let seeded = time::OffsetDateTime::now_utc();
    seed(&moto);
    let db = shared().new_db();
    let port = free_port();
    let gw = Gateway::spawn(&config(port, &db, &sections(&moto.url)), port, &ENV);
    gw.wait_healthy(Duration::from_secs(30));
    let base = format!("http://127.0.0.1:{port}");
    rt.block_on(async {
        let mut ana = Client::start(&base, "ana", &["payments"]).await;

        let (err, text) = ana.call("aws_access", json!({})).await;
        assert!(!err, "{text}");
        assert!(text.contains("- payments (nonprod): read access"), "{text}");

        let (err, text) = ana
            .call("logs_tail", json!({"log_group": "/payments/api"}))
            .await;
        assert!(!err, "{text}");
        assert!(text.contains("stream web-1"), "{text}");
        assert!(text.contains("ERROR payment 4711 declined"), "{text}");

        let (err, text) = ana
            .call("s3_list", json!({"bucket": "payments-config"}))
            .await;
        assert!(!err, "{text}");
        assert!(
            text.contains("config.txt") && text.contains("report.txt"),
            "{text}"
        );

        let (err, text) = ana
            .call(
                "metrics_read",
                // A window around the seeding, whatever the machine's load made of the time
                // since: the datum is in it however long the steps before took.
                json!({"namespace": "Payments", "metric_name": "Declines", "statistic": "Sum",
                    "period_seconds": 3600,
                    "start_time": rfc3339(seeded - time::Duration::minutes(5)),
                    "end_time": rfc3339(seeded + time::Duration::minutes(55))}),
            )
            .await;
        assert!(!err, "{text}");
        assert!(
            text.starts_with("Payments/Declines (Sum), 1 data points:"),
            "{text}"
        );
        assert!(text.contains(" 7.0"), "{text}");

        let (err, text) = ana.call("resources_find", json!({})).await;
        assert!(!err, "{text}");
        assert!(
            text.contains("arn:aws:s3:::payments-config  project=payments"),
            "{text}"
        );

        // An argument outside its schema is a tool error naming it; AWS is not called.
        let (err, text) = ana
            .call(
                "s3_list",
                json!({"bucket": "payments-config", "max_keys": 0}),
            )
            .await;
        assert!(err, "{text}");
        assert!(text.contains("`max_keys`"), "{text}");

        // A result over max_result_bytes is cut, and says so; the secret is masked either way.
        let (err, text) = ana
            .call(
                "s3_read",
                json!({"bucket": "payments-config", "key": "report.txt"}),
            )
            .await;
        assert!(!err, "{text}");
        assert!(text.len() <= 1024, "{}", text.len());
        assert!(text.contains("[result cut:"), "{text}");
        assert!(text.starts_with("s3://payments-config/report.txt (3000 bytes):\nreport line"));
        let (err, text) = ana
            .call(
                "s3_read",
                json!({"bucket": "payments-config", "key": "config.txt"}),
            )
            .await;
        assert!(!err, "{text}");
        assert!(
            !text.contains(SECRET) && text.contains("[MASKED:"),
            "{text}"
        );

        // A key cannot climb out of the bucket the call is decided, recorded and audited for.
        let (err, text) = ana
            .call(
                "s3_read",
                json!({"bucket": "payments-config", "key": "../hr-private/salaries.txt"}),
            )
            .await;
        assert!(err, "{text}");
        assert!(text.contains("`key`") && !text.contains("SALARY"), "{text}");

        // Over the list allowance (3 a day): the fourth listing is refused, as a tool error.
        let mut tia = Client::start(&base, "tia", &["payments"]).await;
        for _ in 0..3 {
            let (err, text) = tia
                .call("s3_list", json!({"bucket": "payments-config"}))
                .await;
            assert!(!err, "{text}");
        }
        let (err, text) = tia
            .call("s3_list", json!({"bucket": "payments-config"}))
            .await;
        assert!(err, "{text}");
        assert!(text.contains("too many list calls"), "{text}");

        // Someone in no project's group: no project to act in, nor one named.
        let mut eve = Client::start(&base, "eve", &["marketing"]).await;
        let (err, text) = eve.call("aws_access", json!({})).await;
        assert!(!err, "{text}");
        assert!(text.contains("member of no AWS project"), "{text}");
        let (err, text) = eve
            .call("logs_tail", json!({"log_group": "/payments/api"}))
            .await;
        assert!(err, "{text}");
        assert!(text.contains("not a member of any AWS project"), "{text}");
        let (err, text) = eve
            .call(
                "logs_tail",
                json!({"log_group": "/payments/api", "project": "payments"}),
            )
            .await;
        assert!(err, "{text}");
        assert!(text.starts_with("Refused:"), "{text}");
        assert!(!text.contains("4711"), "{text}");
    });

    let results: Vec<(String, String, String)> = gw
        .audit("mcp.tool")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("user"), s("tool"), s("result"))
        })
        .collect();
    for want in [
        ("ana", "logs_tail", "ok"),
        ("ana", "s3_list", "error"),
        ("tia", "s3_list", "throttled"),
        ("eve", "logs_tail", "denied"),
    ] {
        let want = (want.0.to_owned(), want.1.to_owned(), want.2.to_owned());
        assert!(results.contains(&want), "{want:?} in {results:?}");
    }
    gw.assert_no_secrets();
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
