//! Agent access end to end, as developers meet it: the real gateway in front of the real test IdP
//! and moto's STS, the `claude-aws` CLI signing in with the device grant, the real `aws` CLI
//! reaching moto through `credential_process`, an outsider refused, a window ended mid-run, and a
//! prod write request approved in headless Chromium that yields write credentials only after a
//! sign-in with MFA. (moto applies no session policy and reads no session tag: those are checked
//! by the library's pure tests and by the policy linter.)

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use claude_gateway::config::{Env, ProcessEnv};
use serde_json::{json, Value};

use crate::aws_approval_page::sign_in;
use crate::aws_grants::{Api, WRITE};
use crate::support::gateway::{bedrock_upstream, config_oidc, oidc_for, Gateway};
use crate::support::idp::{Idp, IdpOptions, TestUser};
use crate::support::moto::{Moto, ENV};
use crate::support::pg::{free_port, shared};
use crate::support::webdriver::Browser;
use crate::support::{claude_aws_bin, runtime};

/// moto's own account: resources made with its keys live there, so the project role is in it.
const ROLE: &str = "arn:aws:iam::123456789012:role/agent-payments";

fn sections(sts: &str) -> String {
    format!(
        "admin:
  write_keys: [{{id: ops, key: {WRITE}}}]
aws_access:
  sts_endpoint_url: {sts}
  projects:
    - name: payments
      role_arn: {ROLE}
      regions: [eu-west-1]
      tag: {{key: project, value: payments}}
      environment: prod
      read: ['s3:List*', 's3:GetObject', 'logs:Describe*', 'logs:FilterLogEvents']
      write: ['s3:PutObject']
      approvers: [payments-leads]
  members:
    - {{project: payments, groups: [payments], level: write}}
"
    )
}

/// A developer's laptop: a home with `~/.aws/config` and the CLI's session folder.
struct Laptop {
    home: tempfile::TempDir,
}

impl Laptop {
    fn new() -> Laptop {
        Laptop {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn sessions(&self) -> PathBuf {
        self.home.path().join("claude-aws")
    }

    fn aws_config(&self) -> PathBuf {
        self.home.path().join(".aws/config")
    }

    /// A command with this laptop's environment and no AWS credential in it.
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", ProcessEnv.var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("CLAUDE_AWS_CONFIG_DIR", self.sessions())
            .env("AWS_CONFIG_FILE", self.aws_config())
            .env("AWS_SHARED_CREDENTIALS_FILE", self.home.path().join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        c
    }

    fn claude_aws(&self, args: &[&str]) -> Output {
        self.command(&claude_aws_bin()).args(args).output().unwrap()
    }

    /// The real `aws` CLI against moto with `profile`.
    fn aws(&self, moto: &Moto, profile: &str, args: &[&str]) -> Output {
        self.command(Path::new("aws"))
            .args(args)
            .args(["--profile", profile, "--endpoint-url", &moto.url])
            .output()
            .unwrap()
    }

    /// `claude-aws login` against `base`, the browser step played at the IdP as `user`.
    fn login(&self, rt: &tokio::runtime::Runtime, idp: &Idp, base: &str, user: &str) {
        let mut login = self
            .command(&claude_aws_bin())
            .args(["login", "--no-browser", "--gateway", base])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(login.stderr.take().unwrap());
        let mut line = String::new();
        while !line.starts_with("Open ") {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "login ended early"
            );
        }
        let code = line
            .trim_end()
            .rsplit_once(" and confirm the code ")
            .map(|(_, c)| c.to_owned())
            .unwrap_or_else(|| panic!("not the documented line: {line:?}"));
        let approval = rt.block_on(idp.approve_device(base, &code, user));
        assert_eq!(approval.status, 200, "{}", approval.body);
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = login.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "login did not finish");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        assert_eq!(status.code(), Some(0), "{rest}");
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Seeds moto, as the project's account, with a bucket and a log group of the project.
fn seed(moto: &Moto) {
    let run = |args: &[&str]| {
        let out = Command::new("aws")
            .args(args)
            .args(["--endpoint-url", &moto.url])
            .envs(ENV)
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .output()
            .unwrap();
        assert!(out.status.success(), "aws {args:?}: {}", text(&out.stderr));
    };
    run(&["s3", "mb", "s3://payments-reports"]);
    run(&[
        "logs",
        "create-log-group",
        "--log-group-name",
        "/payments/api",
        "--region",
        "eu-west-1",
    ]);
}

/// Signs in at the approval page `url` in a fresh headless Chromium as `login`.
async fn approval_page(idp: &Idp, url: &str, login: &str) -> Browser {
    let b = Browser::start().await;
    sign_in(&b, &idp.issuer, url, login).await;
    b
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn developers_agents_reach_aws_through_the_gateway_and_only_as_far_as_allowed() {
    let rt = runtime();
    let moto = Moto::start();
    seed(&moto);
    let users = [
        TestUser::new("ana").groups(&["payments"]),
        TestUser::new("lead").groups(&["payments-leads"]),
        TestUser::new("bob").groups(&["frontend"]),
        TestUser::new("gus").groups(&["contractors"]),
    ];
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start_with(
        &users,
        &[&format!("{base}/oauth/callback")],
        IdpOptions::default(),
    );
    let upstream = bedrock_upstream(
        "bedrock",
        "http://127.0.0.1:9",
        "AKIATESTTESTTEST",
        "test-aws-secret",
    );
    let oidc = oidc_for(&idp, "client_secret_basic");
    let yaml = config_oidc(
        port,
        &shared().new_db(),
        &upstream,
        &oidc,
        &sections(&moto.url),
    );
    let gw = Gateway::spawn(&yaml, port, &ENV);
    gw.wait_healthy(Duration::from_secs(30));
    let api = Api::new(&gw);
    let admin = format!("key:{WRITE}");

    // Ana signs in once, adds a profile, and the real aws CLI reaches moto through it.
    let ana = Laptop::new();
    ana.login(&rt, &idp, &base, "ana");
    let r = ana.claude_aws(&["configure", "--project", "payments"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let profile = std::fs::read_to_string(ana.aws_config()).unwrap();
    assert!(profile.contains("[profile claude-payments]"), "{profile}");
    assert!(profile.contains("region = eu-west-1"), "{profile}");
    assert!(
        profile.contains("credentials --project payments"),
        "{profile}"
    );
    let r = ana.aws(&moto, "claude-payments", &["s3", "ls"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stdout).contains("payments-reports"),
        "{}",
        text(&r.stdout)
    );
    let r = ana.aws(&moto, "claude-payments", &["logs", "describe-log-groups"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stdout).contains("/payments/api"),
        "{}",
        text(&r.stdout)
    );
    let issued = gw.audit("aws.credentials");
    assert!(!issued.is_empty());
    assert!(issued
        .iter()
        .all(|e| e["user"] == "ana" && e["level"] == "read" && e["project"] == "payments"));

    // Bob is in no group of the project: refused, in words, exit 4, nothing on stdout.
    let bob = Laptop::new();
    bob.login(&rt, &idp, &base, "bob");
    let r = bob.claude_aws(&["credentials", "--project", "payments"]);
    assert_eq!(r.status.code(), Some(4), "{}", text(&r.stderr));
    assert!(r.stdout.is_empty());
    assert!(
        text(&r.stderr).contains("you are not a member of project payments"),
        "{}",
        text(&r.stderr)
    );

    // Gus is assigned through the Admin API until some time away; his credentials end by then.
    // The platform team cuts his time short mid-run: the next request gets nothing, and says when
    // his access ended.
    let until = time::OffsetDateTime::now_utc() + Duration::from_secs(40 * 60);
    let (s, member) = rt.block_on(api.call(
        "POST",
        "/v1/organizations/aws_access/members",
        &admin,
        Some(
            json!({"project": "payments", "emails": ["gus@example.com"], "level": "read",
                    "until": rfc3339(until)}),
        ),
    ));
    assert_eq!(s, 200, "{member}");
    let gus = Laptop::new();
    gus.login(&rt, &idp, &base, "gus");
    let r = gus.claude_aws(&["credentials", "--project", "payments"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let creds: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(creds["Version"], 1);
    let expires = time::OffsetDateTime::parse(
        creds["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        expires <= until,
        "{expires} is past the window's end {until}"
    );
    let id = member["id"].as_str().unwrap();
    let (s, _) = rt.block_on(api.call(
        "DELETE",
        &format!("/v1/organizations/aws_access/members/{id}"),
        &admin,
        None,
    ));
    assert_eq!(s, 200);
    let ended = time::OffsetDateTime::now_utc() + Duration::from_secs(5 * 60);
    let (s, _) = rt.block_on(api.call(
        "POST",
        "/v1/organizations/aws_access/members",
        &admin,
        Some(
            json!({"project": "payments", "emails": ["gus@example.com"], "level": "read",
                    "until": rfc3339(ended)}),
        ),
    ));
    assert_eq!(s, 200);
    let r = gus.claude_aws(&["credentials", "--project", "payments"]);
    assert_eq!(r.status.code(), Some(4), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("your access to project payments ends at"),
        "{}",
        text(&r.stderr)
    );

    // Ana asks for write. Without an approval, no write credentials.
    let r = ana.claude_aws(&[
        "request",
        "--project",
        "payments",
        "--for",
        "30m",
        "--reason",
        "rotate the report key",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let out = text(&r.stdout);
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("approval_url: "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    let grant = out
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .to_owned();
    let r = ana.claude_aws(&["credentials", "--project", "payments", "--write"]);
    assert_eq!(r.status.code(), Some(4));
    assert!(text(&r.stderr).contains("needs an approved request"));

    // She cannot approve it herself; the lead approves it in the browser.
    rt.block_on(async {
        let b = approval_page(&idp, &url, "ana").await;
        let body = b.find("body").await.text().await;
        assert!(
            body.contains("You cannot approve your own request."),
            "{body}"
        );
        assert!(b.try_find("#approve").await.is_none());
        drop(b);
        let b = approval_page(&idp, &url, "lead").await;
        b.find("#approve").await.click().await;
        b.wait_for_url(Duration::from_secs(20), "the decision", |u| {
            u.ends_with("/approve")
        })
        .await;
        assert_eq!(b.title().await, "Approved", "{}", b.source().await);
    });

    // A prod write needs a recent sign-in with MFA: refused, then granted after one.
    let r = ana.claude_aws(&["credentials", "--project", "payments", "--write"]);
    assert_eq!(r.status.code(), Some(4));
    assert!(
        text(&r.stderr).contains("needs a sign-in with MFA"),
        "{}",
        text(&r.stderr)
    );
    idp.set_mfa("ana", true);
    ana.login(&rt, &idp, &base, "ana");
    let r = ana.claude_aws(&["credentials", "--project", "payments", "--write"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let write: Value = serde_json::from_slice(&r.stdout).unwrap();
    let last = gw.audit("aws.credentials");
    let last = last.last().unwrap();
    assert_eq!(last["level"], "write");
    assert_eq!(last["mfa"], true);
    assert_eq!(last["grant"], grant.as_str());
    assert_eq!(last["access_key_id"], write["AccessKeyId"]);

    // And the agent writes with them, through exec.
    let file = ana.home.path().join("report.csv");
    std::fs::write(&file, "q4,ok\n").unwrap();
    let r = ana
        .command(&claude_aws_bin())
        .args([
            "exec",
            "--project",
            "payments",
            "--write",
            "--",
            "aws",
            "s3",
            "cp",
        ])
        .arg(&file)
        .args([
            "s3://payments-reports/report.csv",
            "--endpoint-url",
            &moto.url,
        ])
        .env("AWS_REGION", "eu-west-1")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
    let r = ana.aws(
        &moto,
        "claude-payments",
        &["s3", "ls", "s3://payments-reports/"],
    );
    assert!(
        text(&r.stdout).contains("report.csv"),
        "{}",
        text(&r.stdout)
    );

    // No secret the gateway handed out reaches its logs.
    let secret = write["SecretAccessKey"].as_str().unwrap();
    let token = write["SessionToken"].as_str().unwrap();
    gw.assert_absent(&[secret, token]);
    let refused = gw.audit("aws.credentials.refused");
    let codes: Vec<&str> = refused.iter().filter_map(|e| e["code"].as_str()).collect();
    assert_eq!(
        codes,
        [
            "not_member",
            "access_ending",
            "write_not_approved",
            "mfa_needed"
        ]
    );
}
