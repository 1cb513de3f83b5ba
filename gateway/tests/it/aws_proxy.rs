//! The gateway in the data path of agents' AWS calls, end to end: the real `aws` CLI and boto3
//! holding gateway-only credentials, the real gateway and PostgreSQL, and moto as AWS (its STS
//! for the just-in-time credential, its services for the calls). Reads pass and are recorded;
//! denied actions are refused as AWS refuses; secrets come back masked and are recorded masked;
//! forged, stale, tampered and foreign signatures are refused; the tiered limits hold across
//! two replicas; with the gateway stopped, the credentials reach nothing.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use claude_gateway::config::{Env, ProcessEnv};
use serde_json::Value;

use crate::aws_credentials::{get, token};
use crate::support::gateway::{config, Gateway};
use crate::support::moto::{Moto, ENV};
use crate::support::pg::{free_port, shared};
use crate::support::runtime;

/// A secret in Secrets Manager, and a password in an SSM parameter: neither may come back.
const DB_SECRET: &str = "Kx9-very-secret-Pa55word";
const DB_URL_PASSWORD: &str = "Ur1Pa55w0rdZ";

/// The project, and the proxy with a small read and list allowance and a day-long window (a
/// window boundary cannot fall inside the test's calls but once a day).
fn sections(moto: &str) -> String {
    format!(
        "admin:
  write_keys: [{{id: ops, key: {ADMIN}}}]
aws_access:
  sts_endpoint_url: {moto}
  proxy:
    upstream_url: {moto}
    limits: {{window_seconds: 86400, read: 20, list: 5, write: 3}}
    approval: {{wait_seconds: 1}}
  projects:
    - name: payments
      role_arn: arn:aws:iam::123456789012:role/agent-payments
      regions: [eu-west-1]
      tag: {{key: project, value: payments}}
      environment: nonprod
      read: ['s3:List*', 's3:Get*', 'logs:Describe*', 'secretsmanager:GetSecretValue', 'ssm:GetParameter']
      write: ['s3:*']
      approvers: [payments-leads]
  members:
    - {{project: payments, groups: [payments], level: write}}
"
    )
}

const ADMIN: &str = "proxy-admin-write-key-0123456789";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Seeds moto, as the project's account.
fn seed(moto: &Moto) {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "quarterly numbers are in\n").unwrap();
    let n = notes.to_str().unwrap().to_owned();
    let secret = format!("{{\"username\":\"app\",\"password\":\"{DB_SECRET}\"}}");
    let db_url = format!("postgres://app:{DB_URL_PASSWORD}@db.internal:5432/payments");
    let runs: Vec<Vec<&str>> = vec![
        vec![
            "s3api",
            "create-bucket",
            "--bucket",
            "payments-reports",
            "--create-bucket-configuration",
            "LocationConstraint=eu-west-1",
        ],
        vec!["s3", "cp", &n, "s3://payments-reports/notes.txt"],
        vec![
            "logs",
            "create-log-group",
            "--log-group-name",
            "/payments/api",
        ],
        vec![
            "secretsmanager",
            "create-secret",
            "--name",
            "payments/db",
            "--secret-string",
            &secret,
        ],
        vec![
            "ssm",
            "put-parameter",
            "--name",
            "/payments/db-url",
            "--type",
            "SecureString",
            "--value",
            &db_url,
        ],
    ];
    for args in runs {
        moto.aws("eu-west-1", &args);
    }
}

/// A gateway-only credential for `sub` in `groups` at `level`.
struct Creds {
    id: String,
    secret: String,
    token: String,
}

fn creds(
    rt: &tokio::runtime::Runtime,
    gw: &Gateway,
    sub: &str,
    groups: &[&str],
    level: &str,
) -> Creds {
    let bearer = token(sub, groups, None);
    let (s, v) = rt.block_on(get(
        gw,
        Some(&bearer),
        &format!("project=payments&level={level}&via=gateway"),
    ));
    assert_eq!(s, 200, "{v}");
    Creds {
        id: v["AccessKeyId"].as_str().unwrap().to_owned(),
        secret: v["SecretAccessKey"].as_str().unwrap().to_owned(),
        token: v["Token"].as_str().unwrap().to_owned(),
    }
}

/// The real `aws` CLI through the gateway at `port` with `c`, path-style S3, no retries.
fn aws(home: &Path, port: u16, c: &Creds, args: &[&str]) -> Output {
    aws_command(home, port, c, args).output().unwrap()
}

/// The `aws` command of [`aws`], not yet run.
fn aws_command(home: &Path, port: u16, c: &Creds, args: &[&str]) -> Command {
    let config = home.join("config");
    std::fs::write(&config, "[default]\ns3 =\n    addressing_style = path\n").unwrap();
    let mut cmd = Command::new("aws");
    cmd.args(args)
        .args([
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}/aws/"),
            "--region",
            "eu-west-1",
        ])
        .env_clear()
        .env("PATH", ProcessEnv.var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_RETRY_MODE", "standard")
        .env("AWS_ACCESS_KEY_ID", &c.id)
        .env("AWS_SECRET_ACCESS_KEY", &c.secret)
        .env("AWS_SESSION_TOKEN", &c.token)
        .stdin(Stdio::null());
    cmd
}

/// boto3 through the gateway: lists the bucket and reads the notes.
fn boto3(port: u16, c: &Creds) -> Output {
    let script = r#"
import sys, boto3
from botocore.config import Config
s = boto3.session.Session(aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
                          aws_session_token=sys.argv[4], region_name="eu-west-1")
cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"})
s3 = s.client("s3", endpoint_url=sys.argv[1], config=cfg)
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="payments-reports")["Contents"]]
body = s3.get_object(Bucket="payments-reports", Key="notes.txt")["Body"].read().decode()
logs = s.client("logs", endpoint_url=sys.argv[1], config=cfg)
groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
print(keys, body.strip(), groups)
"#;
    Command::new("python3")
        .args([
            "-c",
            script,
            &format!("http://127.0.0.1:{port}/aws/"),
            &c.id,
            &c.secret,
            &c.token,
        ])
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// boto3's `put_object` of `body` at `key` through the gateway as an aws-chunked body with a
/// CRC32 trailer: botocore sends that form only over TLS, so its URL check is told the gateway's
/// plain-HTTP endpoint is TLS. Prints the payload mode sent and the object read back.
fn boto3_chunked_put(port: u16, c: &Creds, key: &str, body: &str) -> Output {
    let script = r#"
import sys, boto3, botocore.httpchecksum as hc
from botocore.config import Config
real = hc.urlparse
hc.urlparse = lambda url: real(url)._replace(scheme="https")
seen = []
s = boto3.session.Session(aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
                          aws_session_token=sys.argv[4], region_name="eu-west-1")
cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"})
s3 = s.client("s3", endpoint_url=sys.argv[1], config=cfg)
s3.meta.events.register("before-send.s3.PutObject",
                        lambda request, **kw: seen.append(request.headers["x-amz-content-sha256"]))
s3.put_object(Bucket="payments-reports", Key=sys.argv[5], Body=sys.argv[6].encode(),
              ChecksumAlgorithm="CRC32")
hc.urlparse = real
got = s3.get_object(Bucket="payments-reports", Key=sys.argv[5])["Body"].read().decode()
print(seen[0].decode() if isinstance(seen[0], bytes) else seen[0], got.strip())
"#;
    Command::new("python3")
        .args([
            "-c",
            script,
            &format!("http://127.0.0.1:{port}/aws/"),
            &c.id,
            &c.secret,
            &c.token,
            key,
            body,
        ])
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The recordings the Admin API lists (newest first).
fn recordings(rt: &tokio::runtime::Runtime, gw: &Gateway, query: &str) -> Vec<Value> {
    rt.block_on(async {
        let r = crate::support::client()
            .get(format!(
                "http://127.0.0.1:{}/v1/organizations/aws_access/calls?{query}",
                gw.port
            ))
            .header("x-api-key", ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["data"].as_array().cloned().unwrap_or_default()
    })
}

/// Waits until `gw` has written `n` recordings for `user` (rows are written in the background).
fn wait_recorded(rt: &tokio::runtime::Runtime, gw: &Gateway, user: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = recordings(rt, gw, &format!("user={user}&limit=100"));
        if rows.len() >= n {
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} recorded: {rows:?}",
            rows.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A request signed by hand: `service` in eu-west-1 at `at`, with the given key, secret and
/// token, carrying `sent` as its body though `signed` was signed.
#[derive(Clone, Copy)]
struct Signed<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
    service: &'a str,
    id: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
    at: SystemTime,
    signed: &'a [u8],
    sent: &'a [u8],
}

/// Sends `r` to the gateway at `port`: its status and body.
async fn raw(port: u16, r: Signed<'_>) -> (u16, String) {
    let Signed {
        method,
        path,
        headers,
        service,
        id,
        secret,
        token,
        at,
        signed,
        sent,
    } = r;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let url = format!("http://127.0.0.1:{port}{path}");
    let identity =
        aws_credential_types::Credentials::new(id, secret, token.map(str::to_owned), None, "test")
            .into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name(service)
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let req = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(signed),
    )
    .unwrap();
    let (instructions, _) = sign(req, &params).unwrap().into_parts();
    let mut b = crate::support::client().request(method.parse().unwrap(), &url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    for (k, v) in instructions.headers() {
        b = b.header(k, v);
    }
    let r = b.body(sent.to_vec()).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Sends `r` (no body) to the gateway at `port` over a bare socket, its path exactly as written:
/// its status and body.
async fn raw_unresolved(port: u16, r: Signed<'_>) -> (u16, String) {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = format!("127.0.0.1:{port}");
    let url = format!("http://{host}{}", r.path);
    let identity = aws_credential_types::Credentials::new(
        r.id,
        r.secret,
        r.token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    settings.uri_path_normalization_mode =
        aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name(r.service)
        .time(r.at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers = [("host", host.as_str())];
    let req = SignableRequest::new(
        r.method,
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(r.signed),
    )
    .unwrap();
    let (instructions, _) = sign(req, &params).unwrap().into_parts();
    let mut head = format!("{} {} HTTP/1.1\r\nhost: {host}\r\n", r.method, r.path);
    for (k, v) in instructions.headers() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("content-length: 0\r\nconnection: close\r\n\r\n");
    let mut socket = tokio::net::TcpStream::connect(&host).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[test]
fn agents_calls_pass_through_the_gateway_checked_masked_and_recorded() {
    let rt = runtime();
    let moto = Moto::start();
    seed(&moto);
    let db = shared().new_db();
    let port = free_port();
    let gw = Gateway::spawn(&config(port, &db, &sections(&moto.url)), port, &ENV);
    gw.wait_healthy(Duration::from_secs(30));
    let home = tempfile::tempdir().unwrap();
    let ana = creds(&rt, &gw, "ana", &["payments"], "read");
    assert!(ana.id.starts_with("AGW"), "{}", ana.id);

    // Reads work, with the real CLI and boto3.
    let r = aws(
        home.path(),
        port,
        &ana,
        &["s3", "ls", "s3://payments-reports/"],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(text(&r.stdout).contains("notes.txt"), "{}", text(&r.stdout));
    let r = boto3(port, &ana);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(
        text(&r.stdout).trim(),
        "['notes.txt'] quarterly numbers are in ['/payments/api']"
    );

    // Secrets come back masked.
    let r = aws(
        home.path(),
        port,
        &ana,
        &[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "payments/db",
        ],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    let out: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(out["SecretString"], "[MASKED:secret]", "{out}");
    assert_eq!(out["Name"], "payments/db");
    let r = aws(
        home.path(),
        port,
        &ana,
        &[
            "ssm",
            "get-parameter",
            "--name",
            "/payments/db-url",
            "--with-decryption",
        ],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    let value = serde_json::from_slice::<Value>(&r.stdout).unwrap()["Parameter"]["Value"].clone();
    assert_eq!(
        value,
        "postgres://app:[MASKED:password]@db.internal:5432/payments"
    );

    // A bucket named like the approval pages is still a bucket to a signed call.
    let r = aws(
        home.path(),
        port,
        &ana,
        &[
            "s3api",
            "get-object",
            "--bucket",
            "approvals",
            "--key",
            "notes.txt",
            "/dev/null",
        ],
    );
    assert!(!r.status.success());
    assert!(
        text(&r.stderr).contains("(NoSuchBucket)"),
        "{}",
        text(&r.stderr)
    );

    // Denied actions are refused as AWS refuses, even where s3:* is allowed.
    let r = aws(
        home.path(),
        port,
        &ana,
        &["iam", "create-user", "--user-name", "mallory"],
    );
    assert!(!r.status.success());
    assert!(
        text(&r.stderr).contains("(AccessDenied)"),
        "{}",
        text(&r.stderr)
    );
    let writer = creds(&rt, &gw, "ana", &["payments"], "write");
    let r = aws(
        home.path(),
        port,
        &writer,
        &["s3api", "delete-bucket", "--bucket", "payments-reports"],
    );
    assert!(!r.status.success());
    let err = text(&r.stderr);
    assert!(
        err.contains("(AccessDenied)") && err.contains("s3:DeleteBucket is denied"),
        "{err}"
    );
    let r = aws(
        home.path(),
        port,
        &ana,
        &["s3", "ls", "s3://payments-reports/"],
    );
    assert!(
        r.status.success(),
        "the bucket is still there: {}",
        text(&r.stderr)
    );

    // Every call is recorded, masked; the trail and the logs hold no secret.
    let rows = wait_recorded(&rt, &gw, "ana", 9);
    let decisions: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("?"),
                r["decision"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    for want in [
        ("s3:ListBucket", "allowed"),
        ("s3:GetObject", "allowed"),
        ("logs:DescribeLogGroups", "allowed"),
        ("secretsmanager:GetSecretValue", "allowed"),
        ("ssm:GetParameter", "allowed"),
        ("iam:CreateUser", "denied"),
        ("s3:DeleteBucket", "denied"),
    ] {
        assert!(decisions.contains(&want), "{want:?} in {decisions:?}");
    }
    let all = serde_json::to_string(&rows).unwrap();
    // Every recording, bodies included, as the Admin API reads them one by one.
    let full: Vec<String> = rows
        .iter()
        .map(|row| {
            let id = row["id"].as_str().unwrap();
            rt.block_on(async {
                crate::support::client()
                    .get(format!(
                        "http://127.0.0.1:{port}/v1/organizations/aws_access/calls/{id}"
                    ))
                    .header("x-api-key", ADMIN)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let full = full.join("\n");
    assert!(full.contains("[MASKED:secret]"), "{full}");
    assert!(full.contains("[MASKED:password]"), "{full}");
    for secret in [
        DB_SECRET,
        DB_URL_PASSWORD,
        &ana.secret,
        &ana.token,
        &writer.token,
    ] {
        assert!(
            !all.contains(secret) && !full.contains(secret),
            "a recording holds a secret"
        );
    }
    gw.assert_absent(&[DB_SECRET, DB_URL_PASSWORD, &ana.secret, &ana.token]);
    let calls = gw.audit("aws.call");
    assert!(calls.len() >= 9, "{calls:?}");
    assert!(calls
        .iter()
        .all(|c| c["user"] == "ana" && c["project"] == "payments"));

    // Forged, stale, tampered and foreign signatures are refused.
    let list = "/aws/";
    let target = [
        ("x-amz-target", "Logs_20140328.DescribeLogGroups"),
        ("content-type", "application/x-amz-json-1.1"),
    ];
    let now: SystemTime = time::OffsetDateTime::now_utc().into();
    // A logs DescribeLogGroups by ana, signed as it should be; each case changes one thing.
    let good = Signed {
        method: "POST",
        path: list,
        headers: &target,
        service: "logs",
        id: &ana.id,
        secret: &ana.secret,
        token: Some(&ana.token),
        at: now,
        signed: b"{}",
        sent: b"{}",
    };
    rt.block_on(async {
        let (s, body) = raw(port, good).await;
        assert_eq!(s, 200, "a good signature passes: {body}");
        let forged = Signed {
            secret: "not-the-secret",
            ..good
        };
        let (s, body) = raw(port, forged).await;
        assert_eq!(s, 403);
        assert!(body.contains("SignatureDoesNotMatch"), "{body}");
        let stale = Signed {
            at: now - Duration::from_secs(6 * 60),
            ..good
        };
        let (s, body) = raw(port, stale).await;
        assert_eq!(s, 403);
        assert!(body.contains("RequestTimeTooSkewed"), "{body}");
        let tampered = Signed {
            sent: br#"{"logGroupNamePrefix":"/other"}"#,
            ..good
        };
        let (s, body) = raw(port, tampered).await;
        assert_eq!(s, 403);
        assert!(body.contains("SignatureDoesNotMatch"), "{body}");
        let s3_put = Signed {
            method: "PUT",
            path: "/aws/payments-reports/x.txt",
            headers: &[],
            service: "s3",
            id: &writer.id,
            secret: &writer.secret,
            token: Some(&writer.token),
            signed: b"signed",
            sent: b"sent!!",
            ..good
        };
        let (s, body) = raw(port, s3_put).await;
        assert_eq!(s, 400);
        assert!(body.contains("XAmzContentSHA256Mismatch"), "{body}");
        // A path with a `..` segment, sent as is (an HTTP client would resolve it): the gateway
        // would decide and record one bucket while its own client sent AWS another.
        let climb = Signed {
            method: "GET",
            path: "/aws/payments-reports/../no-such-bucket/notes.txt",
            headers: &[],
            service: "s3",
            signed: b"",
            sent: b"",
            ..good
        };
        let (s, body) = raw_unresolved(port, climb).await;
        assert_eq!(s, 400, "{body}");
        assert!(
            body.contains("<Code>InvalidRequest</Code>") && body.contains("segment"),
            "{body}"
        );
        // Real AWS keys, and a gateway key without its own token, are not known here.
        let real = Signed {
            id: "AKIAIOSFODNN7EXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            token: None,
            ..good
        };
        let (s, body) = raw(port, real).await;
        assert_eq!(s, 403);
        assert!(body.contains("InvalidClientTokenId"), "{body}");
        let borrowed = Signed {
            token: Some(&writer.token),
            ..good
        };
        let (s, body) = raw(port, borrowed).await;
        assert_eq!(s, 403);
        assert!(body.contains("InvalidClientTokenId"), "{body}");
    });

    // A signature that fails with a session the gateway sealed is recorded as that developer's.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !recordings(&rt, &gw, "user=ana&decision=refused&limit=100")
        .iter()
        .any(|r| {
            r["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("signature does not match")
        })
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the forged call was not recorded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The tiered limits hold across two replicas: cara lists five times in all, split across
    // them, and the sixth is refused wherever it lands.
    let port2 = free_port();
    let gw2 = Gateway::spawn(&config(port2, &db, &sections(&moto.url)), port2, &ENV);
    gw2.wait_healthy(Duration::from_secs(30));
    let cara = creds(&rt, &gw, "cara", &["payments"], "read");
    for p in [port, port2, port, port2, port] {
        let r = aws(
            home.path(),
            p,
            &cara,
            &["s3", "ls", "s3://payments-reports/"],
        );
        assert!(r.status.success(), "{}", text(&r.stderr));
    }
    let r = aws(
        home.path(),
        port2,
        &cara,
        &["s3", "ls", "s3://payments-reports/"],
    );
    assert!(!r.status.success());
    assert!(text(&r.stderr).contains("SlowDown"), "{}", text(&r.stderr));
    // Reads are a tier of their own.
    let r = aws(
        home.path(),
        port2,
        &cara,
        &["s3", "cp", "s3://payments-reports/notes.txt", "-"],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));

    // With the gateway stopped, the credentials reach nothing.
    drop(gw2);
    drop(gw);
    let r = aws(
        home.path(),
        port,
        &ana,
        &["s3", "ls", "s3://payments-reports/"],
    );
    assert!(!r.status.success());
    assert!(
        text(&r.stderr).contains("Could not connect"),
        "{}",
        text(&r.stderr)
    );
}

/// The project for the approval run: every write held, for `wait` seconds.
fn held_sections(moto: &str, wait: u32) -> String {
    format!(
        "admin:
  write_keys: [{{id: ops, key: {ADMIN}}}]
aws_access:
  sts_endpoint_url: {moto}
  proxy:
    upstream_url: {moto}
    approval: {{wait_seconds: {wait}}}
  projects:
    - name: payments
      role_arn: arn:aws:iam::123456789012:role/agent-payments
      regions: [eu-west-1]
      tag: {{key: project, value: payments}}
      environment: nonprod
      read: ['s3:List*', 's3:Get*']
      write: ['s3:PutObject']
      approvers: [payments-leads]
  members:
    - {{project: payments, groups: [payments], level: write}}
"
    )
}

/// Approves the held call at `url` in headless Chromium, signed in through the IdP as `login`.
async fn approve_in_browser(idp: &crate::support::idp::Idp, url: &str, login: &str) {
    let b = crate::support::webdriver::Browser::start().await;
    crate::aws_approval_page::sign_in(&b, &idp.issuer, url, login).await;
    let page = b.find("body").await.text().await;
    assert!(page.contains("s3:PutObject"), "{page}");
    b.find("#approve").await.click().await;
    b.wait_for_url(Duration::from_secs(20), "the decision", |u| {
        u.ends_with("/approve")
    })
    .await;
    assert_eq!(b.title().await, "Approved", "{}", b.source().await);
}

#[test]
fn a_write_waits_for_a_person_and_an_approved_call_goes_through() {
    use crate::support::gateway::{bedrock_upstream, config_oidc, oidc_for};
    use crate::support::idp::{Idp, IdpOptions, TestUser};
    let rt = runtime();
    let moto = Moto::start();
    seed(&moto);
    let users = [
        TestUser::new("ana").groups(&["payments"]),
        TestUser::new("lead").groups(&["payments-leads"]),
    ];
    // Two replicas on one database: one holds calls long enough for a person, the other briefly.
    let (patient, brief) = (free_port(), free_port());
    let callbacks = [patient, brief].map(|p| format!("http://127.0.0.1:{p}/oauth/callback"));
    let idp = Idp::start_with(
        &users,
        &[&callbacks[0], &callbacks[1]],
        IdpOptions::default(),
    );
    let db = shared().new_db();
    let upstream = bedrock_upstream(
        "bedrock",
        "http://127.0.0.1:9",
        "AKIATESTTESTTEST",
        "test-aws-secret",
    );
    let oidc = oidc_for(&idp, "client_secret_basic");
    let start = |port: u16, wait: u32| {
        let yaml = config_oidc(port, &db, &upstream, &oidc, &held_sections(&moto.url, wait));
        let gw = Gateway::spawn(&yaml, port, &ENV);
        gw.wait_healthy(Duration::from_secs(30));
        gw
    };
    let gw = start(patient, 40);
    let quick = start(brief, 1);
    let home = tempfile::tempdir().unwrap();
    let ana = creds(&rt, &gw, "ana", &["payments"], "write");
    let file = home.path().join("report.csv");
    std::fs::write(&file, "q4,ok\n").unwrap();
    let f = file.to_str().unwrap();

    // Not decided within the wait: the agent is told where to get it approved.
    let r = aws(
        home.path(),
        brief,
        &ana,
        &["s3", "cp", f, "s3://payments-reports/q4.csv"],
    );
    assert!(!r.status.success());
    let err = text(&r.stderr);
    assert!(err.contains("(ApprovalPending)"), "{err}");
    let url = err
        .split_whitespace()
        .find(|w| w.starts_with(&format!("http://127.0.0.1:{brief}/aws/approvals/cap_")))
        .unwrap_or_else(|| panic!("no approval link in {err}"))
        .to_owned();
    rt.block_on(approve_in_browser(&idp, &url, "lead"));
    // The identical call, run again, goes through on the approval.
    let r = aws(
        home.path(),
        brief,
        &ana,
        &["s3", "cp", f, "s3://payments-reports/q4.csv"],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));

    // The same upload from boto3 as an aws-chunked body with a trailing checksum (what botocore
    // sends over TLS; made to send it here): its chunks decode to the identical call, which the
    // approval already covers.
    let r = boto3_chunked_put(brief, &ana, "q4.csv", "q4,ok\n");
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(
        text(&r.stdout).trim(),
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER q4,ok"
    );

    // Held while a person decides: the call waits, is approved in the browser, and completes.
    let mut held = aws_command(
        home.path(),
        patient,
        &ana,
        &["s3", "cp", f, "s3://payments-reports/q4-final.csv"],
    );
    held.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = held.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let asked = loop {
        let asked = gw.audit("aws.call_approval.requested");
        if let Some(a) = asked.into_iter().next() {
            break a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no approval was asked"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(asked["action"], "s3:PutObject");
    let url = format!(
        "http://127.0.0.1:{patient}/aws/approvals/{}",
        asked["approval"].as_str().unwrap()
    );
    rt.block_on(approve_in_browser(&idp, &url, "lead"));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = aws(
        home.path(),
        patient,
        &ana,
        &["s3", "ls", "s3://payments-reports/"],
    );
    assert!(
        text(&r.stdout).contains("q4-final.csv") && text(&r.stdout).contains("q4.csv"),
        "{}",
        text(&r.stdout)
    );

    // The trail: the held call, and the three approved calls with their approver.
    let rows = wait_recorded(&rt, &gw, "ana", 5);
    let puts: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["action"] == "s3:PutObject")
        .map(|r| {
            (
                r["decision"].as_str().unwrap_or("?"),
                r["approver"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        puts.iter().filter(|(d, _)| *d == "held").count(),
        1,
        "{puts:?}"
    );
    let approved: Vec<&(&str, &str)> = puts.iter().filter(|(d, _)| *d == "approved").collect();
    assert_eq!(approved.len(), 3, "{puts:?}");
    assert!(
        approved.iter().all(|(_, who)| who.contains("lead")),
        "{puts:?}"
    );
    drop(quick);
}

#[test]
fn a_call_is_recorded_with_the_model_turn_whose_tool_call_made_it() {
    use crate::support::gateway::{config_with, double_upstream};
    use testkit::{Behavior, FakeBedrock, Options, Reply};

    let rt = runtime();
    let moto = Moto::start();
    seed(&moto);
    let fake = rt.block_on(FakeBedrock::start(Options::default())).unwrap();
    let ups = double_upstream(&fake, &Options::default());
    let db = shared().new_db();
    let port = free_port();
    let extra = format!(
        "{}audit: {{prompt_hash_key: prompt-hash-key-0123456789abcdef0123}}\n",
        sections(&moto.url)
    );
    let gw = Gateway::spawn(&config_with(port, &db, &ups, &extra), port, &ENV);
    gw.wait_healthy(Duration::from_secs(30));
    let home = tempfile::tempdir().unwrap();

    // The model answers ana's prompt with a Bash call that lists the bucket, streamed through
    // the gateway.
    fake.push(Behavior::Reply(
        Reply::builder("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
            .usage(40, 25)
            .text("Listing the reports bucket.")
            .tool_use(
                "toolu_01",
                "Bash",
                &serde_json::json!({"command": "aws s3 ls s3://payments-reports/", "description": "List the bucket"}),
            )
            .build(),
    ));
    let (rid, sse) = rt.block_on(async {
        let r = crate::support::client()
            .post(format!("http://127.0.0.1:{port}/v1/messages"))
            .bearer_auth(token("ana", &["payments"], None))
            .header("anthropic-version", "2023-06-01")
            .json(&serde_json::json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "stream": true,
                "messages": [{"role": "user", "content": "what reports do we have?"}],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rid = r.headers()["request-id"].to_str().unwrap().to_owned();
        (rid, r.text().await.unwrap())
    });
    assert!(sse.contains("input_json_delta"), "{sse}");

    // The agent runs it, and a call the answer did not ask for; bob runs the same command.
    let ana = creds(&rt, &gw, "ana", &["payments"], "read");
    let bob = creds(&rt, &gw, "bob", &["payments"], "read");
    for (c, args) in [
        (&ana, &["s3", "ls", "s3://payments-reports/"][..]),
        (
            &ana,
            &[
                "secretsmanager",
                "get-secret-value",
                "--secret-id",
                "payments/db",
            ][..],
        ),
        (&bob, &["s3", "ls", "s3://payments-reports/"][..]),
    ] {
        let r = aws(home.path(), port, c, args);
        assert!(r.status.success(), "{}", text(&r.stderr));
    }

    // The listing is recorded with the turn's request id and prompt fingerprint; the other
    // call, and bob's, with none.
    let inference = gw
        .audit("inference")
        .into_iter()
        .find(|e| e["request_id"] == rid.as_str())
        .unwrap_or_else(|| panic!("no inference event for {rid}"));
    let prompt = inference["prompt_hmac"].as_str().unwrap().to_owned();
    let rows = wait_recorded(&rt, &gw, "ana", 2);
    let listing = rows
        .iter()
        .find(|r| r["action"] == "s3:ListBucket")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(listing["turn_request_id"], rid.as_str(), "{listing}");
    assert_eq!(listing["prompt_fingerprint"], prompt.as_str(), "{listing}");
    let secret = rows
        .iter()
        .find(|r| r["action"] == "secretsmanager:GetSecretValue")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert!(secret["turn_request_id"].is_null(), "{secret}");
    assert!(secret["prompt_fingerprint"].is_null(), "{secret}");
    let bobs = wait_recorded(&rt, &gw, "bob", 1);
    assert!(
        bobs.iter().all(|r| r["turn_request_id"].is_null()),
        "{bobs:?}"
    );

    // What the agent touched while answering that prompt is one query.
    let touched = recordings(&rt, &gw, &format!("turn_request_id={rid}"));
    assert!(!touched.is_empty());
    assert!(
        touched
            .iter()
            .all(|r| r["user"]["sub"] == "ana" && r["action"] == "s3:ListBucket"),
        "{touched:?}"
    );
}

/// A write grant revoked by an admin stops at the proxy at once: the gateway-only credential
/// issued on it (writes not held one by one, so the credential rests on the grant) still works,
/// but at the read level, and a write through it is refused.
#[test]
fn a_revoked_write_grant_stops_writes_through_the_proxy_at_once() {
    let rt = runtime();
    let moto = Moto::start();
    seed(&moto);
    let db = shared().new_db();
    let port = free_port();
    let yaml = sections(&moto.url).replace(
        "    approval: {wait_seconds: 1}\n",
        "    approval: {wait_seconds: 1}\n    risk: {writes: false}\n",
    );
    assert!(yaml.contains("writes: false"));
    let gw = Gateway::spawn(&config(port, &db, &yaml), port, &ENV);
    gw.wait_healthy(Duration::from_secs(30));
    let api = crate::aws_grants::Api::new(&gw);
    let admin = format!("key:{ADMIN}");
    let (s, g) = rt.block_on(api.ask(&token("ana", &["payments"], None), 1800));
    assert_eq!(s, 201, "{g}");
    let grants = format!(
        "/v1/organizations/aws_access/grants/{}",
        g["id"].as_str().unwrap()
    );
    let (s, v) = rt.block_on(api.call("POST", &format!("{grants}/approve"), &admin, None));
    assert_eq!(s, 200, "{v}");
    let writer = creds(&rt, &gw, "ana", &["payments"], "write");
    let home = tempfile::tempdir().unwrap();
    let list = ["s3", "ls", "s3://payments-reports/"];
    let r = aws(home.path(), port, &writer, &list);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let rows = wait_recorded(&rt, &gw, "ana", 1);
    assert_eq!(rows[0]["level"], "write", "{rows:?}");
    assert_eq!(rows[0]["grant_id"], g["id"], "{rows:?}");

    let (s, v) = rt.block_on(api.call("POST", &format!("{grants}/revoke"), &admin, None));
    assert_eq!(s, 200, "{v}");
    let r = aws(home.path(), port, &writer, &list);
    assert!(r.status.success(), "reads go on: {}", text(&r.stderr));
    let rows = wait_recorded(&rt, &gw, "ana", 2);
    let levels: Vec<&str> = rows.iter().filter_map(|r| r["level"].as_str()).collect();
    assert!(levels.contains(&"read"), "{rows:?}");
    let file = home.path().join("late.csv");
    std::fs::write(&file, "late\n").unwrap();
    let r = aws(
        home.path(),
        port,
        &writer,
        &[
            "s3",
            "cp",
            file.to_str().unwrap(),
            "s3://payments-reports/late.csv",
        ],
    );
    assert!(!r.status.success());
    assert!(
        text(&r.stderr).contains("(AccessDenied)"),
        "{}",
        text(&r.stderr)
    );
}
