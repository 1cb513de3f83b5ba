//! The MCP server end to end, as a developer meets it: the real client (2.1.328) signs in to
//! the gateway (on TLS, trusted through the company CA as `NODE_EXTRA_CA_CERTS`), receives the
//! `aws` MCP server from its group policy, authorizes it through the real test IdP, and its
//! agent (`claude -p`, the model played by the Bedrock double) reaches moto through the tools:
//! a log search answers, a secret in an S3 object reaches the model masked, a denied action is
//! a tool error, and a write is held for approval.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::{Behavior, FakeBedrock, Options as BedrockOptions, Reply};

use crate::support::claude::Claude;
use crate::support::gateway::{config_oidc, double_upstream, oidc_for, Gateway, JWT_SECRET};
use crate::support::idp::{Idp, TestUser};
use crate::support::mcp::McpAuth;
use crate::support::moto::{Moto, ENV};
use crate::support::pg::{free_port, shared};
use crate::support::runtime;
use crate::support::test_ca::TestCa;

/// A secret an S3 object holds; it must never reach the model.
const SECRET: &str = "AKIAZZZZZZZZZZZZZZZZ";

fn sections(moto: &str, base: &str) -> String {
    format!(
        "aws_access:
  sts_endpoint_url: {moto}
  proxy:
    upstream_url: {moto}
    approval: {{wait_seconds: 1}}
  mcp: {{}}
  projects:
    - name: payments
      role_arn: arn:aws:iam::123456789012:role/agent-payments
      regions: [eu-west-1]
      tag: {{key: project, value: payments}}
      environment: nonprod
      read: ['s3:List*', 's3:GetObject', 'logs:Describe*', 'logs:FilterLogEvents', 'logs:GetLogEvents']
      write: ['s3:PutObject']
      deny: ['secretsmanager:GetSecretValue']
      approvers: [payments-leads]
  members:
    - {{project: payments, groups: [payments], level: write}}
managed:
  policies:
    - match: {{groups: [payments]}}
      cli:
        permissions: {{allow: ['mcp__aws']}}
        managedMcpServers:
          aws: {{type: http, url: '{base}/mcp'}}
"
    )
}

/// The gateway on TLS at `https://localhost:<port>`, in front of the IdP, the double and moto.
struct Site {
    ca: TestCa,
    idp: Idp,
    gw: Gateway,
    bedrock: FakeBedrock,
    moto: Moto,
    base: String,
}

fn site(rt: &tokio::runtime::Runtime, users: &[TestUser]) -> Site {
    let ca = TestCa::new();
    let moto = Moto::start();
    let bedrock = rt
        .block_on(FakeBedrock::start(BedrockOptions::default()))
        .unwrap();
    let upstream = double_upstream(&bedrock, &BedrockOptions::default());
    let port = free_port();
    let base = format!("https://localhost:{port}");
    let idp = Idp::start(users, &format!("{base}/oauth/callback"));
    let yaml = config_oidc(
        port,
        &shared().new_db(),
        &upstream,
        &oidc_for(&idp, "client_secret_basic"),
        &sections(&moto.url, &base),
    );
    let listen = format!("listen: {{host: 127.0.0.1, port: {port}}}");
    assert!(yaml.contains(&listen) && yaml.contains(JWT_SECRET));
    let yaml = yaml.replace(
        &listen,
        &format!(
            "listen: {{{}, host: 127.0.0.1, port: {port}, public_url: '{base}'}}",
            ca.listen_tls()
        ),
    );
    let gw = Gateway::spawn(&yaml, port, &ENV);
    let client = trusting(&ca);
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.get(format!("{base}/healthz")).send().await {
                Ok(r) if r.status() == 200 => break,
                _ if Instant::now() > deadline => {
                    panic!("no TLS answer\n{}\n{}", gw.stdout(), gw.stderr())
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    Site {
        ca,
        idp,
        gw,
        bedrock,
        moto,
        base,
    }
}

/// An HTTP client that trusts the test CA.
fn trusting(ca: &TestCa) -> reqwest::Client {
    crate::support::client();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&ca.ca_der).unwrap())
        .build()
        .unwrap()
}

/// The client, trusting the test CA, signed in to the gateway as `login` (the device grant,
/// the browser step played over HTTP at the real IdP).
fn signed_in_client(rt: &tokio::runtime::Runtime, s: &Site, login: &str) -> Claude {
    let mut claude = Claude::new(&s.base);
    claude.set_env(
        "NODE_EXTRA_CA_CERTS",
        Some(&s.ca.ca_pem.display().to_string()),
    );
    let device = claude.login();
    let browser = crate::support::idp::Browser::trusting(&s.ca.ca_der);
    let approval = rt.block_on(async {
        s.idp
            .device_callback_in(browser, &s.base, &device.user_code, login)
            .await
            .open()
            .await
    });
    assert_eq!(approval.status, 200, "{}\n{}", approval.body, s.gw.stdout());
    claude.wait_signed_in(Duration::from_secs(60));
    claude.wait_ready(Duration::from_secs(60));
    claude
}

/// Seeds moto as the project's account: a log group with an error line, and a bucket whose
/// config file holds a secret.
fn seed(moto: &Moto) {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let events =
        format!("timestamp={now_ms},message='ERROR payment 4711 declined by the card network'");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.txt");
    std::fs::write(
        &config,
        format!("aws_access_key_id = {SECRET}\nregion = eu-west-1\n"),
    )
    .unwrap();
    let config = config.display().to_string();
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
        vec!["s3", "cp", &config, "s3://payments-config/config.txt"],
    ];
    for args in runs {
        moto.aws("eu-west-1", &args);
    }
}

/// A model turn that calls MCP tool `tool` of server `aws` with `input`.
fn calls(id: &str, tool: &str, input: Value) -> Behavior {
    Behavior::Reply(
        Reply::builder("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
            .usage(40, 20)
            .tool_use(id, &format!("mcp__aws__{tool}"), &input)
            .build(),
    )
}

/// The `tool_result` blocks a model request carried: (tool_use_id, is_error, text).
fn tool_results(body: &Value) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        for b in m["content"].as_array().into_iter().flatten() {
            if b["type"] != "tool_result" {
                continue;
            }
            let text = match &b["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            };
            out.push((
                b["tool_use_id"].as_str().unwrap_or_default().to_owned(),
                b["is_error"] == true,
                text,
            ));
        }
    }
    out
}

#[test]
fn the_real_client_gets_the_aws_tools_from_its_policy_and_uses_them() {
    let rt = runtime();
    let users = [TestUser::new("ana").groups(&["payments"])];
    let s = site(&rt, &users);
    seed(&s.moto);
    let mut claude = signed_in_client(&rt, &s, "ana");
    claude.quit();

    // The policy delivered the server: the client lists it, needing authorization.
    let out = claude.run(&["mcp", "list"], Duration::from_secs(60));
    assert!(
        out.stdout.contains("aws: https://localhost:")
            && out.stdout.contains("Needs authentication"),
        "{out:?}"
    );

    // `claude mcp login aws`: the client registers, opens the authorize URL in the browser, and
    // waits on its loopback listener. The browser part is played over HTTP: the IdP's sign-in,
    // then the gateway's consent page, whose Allow sends the browser back to the client.
    claude.start_with(&["mcp", "login", "aws"]);
    claude.wait_screen(
        "the client waiting for authorization",
        Duration::from_secs(60),
        |sc| sc.contains("Waiting for authorization"),
    );
    let opened = claude
        .opened_urls()
        .into_iter()
        .find(|u| u.contains("/mcp/oauth/authorize"))
        .unwrap_or_else(|| panic!("no authorize URL opened: {:?}", claude.opened_urls()));
    let auth = McpAuth::trusting(&s.base, &s.ca.ca_der);
    let back = rt.block_on(async {
        let page = auth.consent_page(&s.idp, &opened, "ana").await;
        assert!(page.html.contains("Claude Code"), "{}", page.html);
        let r = auth.decide(&page, "allow").await;
        assert_eq!(r.status(), 302, "consent: {:?}", r.text().await);
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(to.starts_with("http://localhost:"), "{to}");
        assert!(
            to.contains(&format!(
                "iss={}",
                urlencode(&format!("{}/mcp/oauth", s.base))
            )),
            "{to}"
        );
        let listener = reqwest::Client::new().get(&to).send().await.unwrap();
        listener.status().as_u16()
    });
    assert_eq!(back, 200);
    claude.wait_screen("the client authorized", Duration::from_secs(60), |sc| {
        sc.contains("Authenticated with \"aws\"")
    });
    claude.quit();
    let creds = claude.credentials();
    let stored = creds["mcpOAuth"].to_string();
    assert!(
        stored.contains("accessToken"),
        "the client keeps its MCP tokens: {creds}"
    );
    let minted = s.gw.audit("mcp.token");
    assert!(minted.iter().any(|e| e["sub"] == "ana"), "{minted:?}");

    // The agent's turn: the model (the double) asks for four tools in turn, then answers.
    for b in [
        calls(
            "toolu_01",
            "logs_search",
            json!({"log_group": "/payments/api", "pattern": "ERROR"}),
        ),
        calls(
            "toolu_02",
            "s3_read",
            json!({"bucket": "payments-config", "key": "config.txt"}),
        ),
        calls(
            "toolu_03",
            "aws_call",
            json!({"service": "secretsmanager", "operation": "GetSecretValue", "params": {"SecretId": "payments/db"}}),
        ),
        calls(
            "toolu_04",
            "s3_put",
            json!({"bucket": "payments-config", "key": "notes.txt", "content": "rotate the key"}),
        ),
    ] {
        s.bedrock.push(b);
    }
    let out = claude.print_with(
        &["Why are payments failing? Check the logs and the config."],
        Duration::from_secs(180),
    );
    assert_eq!(out.status, Some(0), "{out:?}\n{}", s.gw.stdout());
    assert!(
        out.stdout.contains("Hello from the Bedrock double."),
        "{out:?}"
    );

    // What reached the model: every tool's result, in the last request.
    let sent = s.bedrock.requests();
    let last = sent.last().expect("model requests");
    let results = tool_results(&last.body);
    let result = |id: &str| {
        results
            .iter()
            .find(|(i, _, _)| i == id)
            .cloned()
            .unwrap_or_else(|| panic!("no result for {id}: {results:?}"))
    };
    let (_, err, logs) = result("toolu_01");
    assert!(
        !err && logs.contains("ERROR payment 4711 declined"),
        "{logs}"
    );
    let (_, err, object) = result("toolu_02");
    assert!(!err && object.contains("[MASKED:"), "{object}");
    let (_, err, denied) = result("toolu_03");
    assert!(
        err && denied.contains("secretsmanager:GetSecretValue"),
        "{denied}"
    );
    let (_, err, held) = result("toolu_04");
    assert!(!err && held.contains("approval"), "{held}");
    for r in &sent {
        assert!(
            !r.body.to_string().contains(SECRET),
            "the secret reached the model"
        );
    }

    // One audit line per tool call, with who, what and the turn that asked for it.
    let audited = s.gw.audit("mcp.tool");
    let by_tool = |t: &str| {
        audited
            .iter()
            .find(|e| e["tool"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no mcp.tool for {t}: {audited:?}"))
    };
    assert_eq!(by_tool("logs_search")["result"], "ok");
    assert_eq!(by_tool("s3_read")["result"], "ok");
    assert_eq!(by_tool("aws_call")["result"], "denied");
    assert_eq!(by_tool("s3_put")["result"], "held");
    for e in &audited {
        assert_eq!(e["user"], "ana", "{e}");
        assert_eq!(e["project"], "payments", "{e}");
        assert!(e["turn_request_id"].is_string(), "{e}");
    }
    // Each AWS call the tools made is recorded like a proxy call, naming its tool; the write
    // waits for an approver.
    let recorded = s.gw.audit("aws.call");
    let call = |tool: &str| {
        recorded
            .iter()
            .find(|e| e["tool"] == tool)
            .cloned()
            .unwrap_or_else(|| panic!("no aws.call for {tool}: {recorded:?}"))
    };
    assert_eq!(call("logs_search")["action"], "logs:FilterLogEvents");
    assert_eq!(call("s3_read")["action"], "s3:GetObject");
    assert_eq!(call("aws_call")["decision"], "denied");
    assert_eq!(call("s3_put")["decision"], "held");
    s.gw.assert_no_secrets();
    s.gw.assert_absent(&[SECRET]);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
