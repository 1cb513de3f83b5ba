//! End to end against a local moto server: `deploy-all`, a second `deploy-all` that changes
//! nothing, `status`, `outputs` and `destroy`, through the real AWS SDK for Rust with the
//! deployer's endpoint pointed at moto on loopback. Resource types moto does not model are skipped
//! by moto (see `support/moto_server.py`); the orchestration is what is under test.
//!
//! Needs `python3` with `moto[server]` (scripts/install-test-deps installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};

struct Moto {
    child: Child,
    url: String,
    /// Extra variables for the deployer (e.g. a lower inline template limit).
    env: Vec<(&'static str, String)>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let probe = Command::new("python3")
        .args(["-c", "import moto.server"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "moto is not installed: run scripts/install-test-deps (pip install \"moto[server]\")"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_server.py");
    let child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
        env: Vec::new(),
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Runs the deployer against moto; returns (exit code, stdout + stderr).
/// The base images pinned in the environment (no registry is reachable here): placeholder
/// digests, which the deployer takes as given and hashes into the content tag.
static BASE_PINS: std::sync::LazyLock<Vec<(&'static str, String)>> =
    std::sync::LazyLock::new(|| {
        vec![
            (
                "DEPLOYER_BUILDER_IMAGE",
                format!("rust:1.95-bookworm@sha256:{}", "1".repeat(64)),
            ),
            (
                "DEPLOYER_RUNTIME_IMAGE",
                format!(
                    "gcr.io/distroless/cc-debian12:nonroot@sha256:{}",
                    "2".repeat(64)
                ),
            ),
        ]
    });

fn deployer(moto: &Moto, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .current_dir(repo_root())
        .env("DEPLOYER_AWS_ENDPOINT_URL", &moto.url)
        .env("DEPLOYER_POLL_MS", "20")
        .envs(BASE_PINS.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(moto.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn sdk_config(moto: &Moto) -> aws_sdk_route53::Config {
    aws_sdk_route53::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build()
}

/// A public zone for the managed certificate, an image already in ECR under the content tag, and
/// a bring-your-own OIDC client secret.
async fn seed(moto: &Moto) -> (String, String) {
    let r53 = aws_sdk_route53::Client::from_conf(sdk_config(moto));
    let zone = r53
        .create_hosted_zone()
        .name("corp.example.com")
        .caller_reference("e2e")
        .send()
        .await
        .unwrap();
    let zone_id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();

    let ecr_conf = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let ecr = aws_sdk_ecr::Client::from_conf(ecr_conf);
    ecr.create_repository()
        .repository_name("claude-gateway")
        .send()
        .await
        .unwrap();
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let bases = deployer::image::with_pins(deployer::image::base_images(&dockerfile), |k| {
        BASE_PINS
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let tag = deployer::image::content_tag(&repo_root(), "linux/amd64", &bases).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": "sha256:aaaa"},
        "layers": []
    });
    ecr.put_image()
        .repository_name("claude-gateway")
        .image_manifest(manifest.to_string())
        .image_tag(&tag)
        .send()
        .await
        .unwrap();

    let sm_conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let sm = aws_sdk_secretsmanager::Client::from_conf(sm_conf);
    // Under a customer-managed KMS key, as a bring-your-own secret may be.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let key: serde_json::Value = reqwest::Client::new()
        .post(&moto.url)
        .header("X-Amz-Target", "TrentService.CreateKey")
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let secret = sm
        .create_secret()
        .name("claude-gateway-google")
        .kms_key_id(&key_arn)
        .secret_string("not-a-real-client-secret")
        .send()
        .await
        .unwrap();
    (zone_id, secret.arn().unwrap().to_owned())
}

/// A CloudFormation client on moto.
fn cfn_client(moto: &Moto) -> aws_sdk_cloudformation::Client {
    let conf = aws_sdk_cloudformation::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_cloudformation::Client::from_conf(conf)
}

/// The secrets of the gateway's latest task definition, read as raw JSON: moto keeps the
/// template's AWS::NoValue entries as nulls, which the SDK refuses to parse.
async fn task_secrets(moto: &Moto) -> serde_json::Value {
    let secrets = task_secrets_if_any(moto).await;
    assert!(secrets.is_array(), "no task definition: {secrets}");
    secrets
}

/// [`task_secrets`], or the error moto answers when it made no task definition.
async fn task_secrets_if_any(moto: &Moto) -> serde_json::Value {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let td: serde_json::Value = reqwest::Client::new()
        .post(&moto.url)
        .header(
            "X-Amz-Target",
            "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition",
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(r#"{"taskDefinition":"claude-gateway-gateway-gateway"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    match &td["taskDefinition"] {
        serde_json::Value::Null => td,
        t => t["containerDefinitions"][0]["secrets"].clone(),
    }
}

/// Where the gateway's task reads GATEWAY_JWT_SECRET and GATEWAY_JWT_SECRET_PREVIOUS from, when
/// moto made its task definition.
async fn jwt_sources(moto: &Moto) -> Option<(String, String)> {
    if !task_secrets_if_any(moto).await.is_array() {
        return None;
    }
    Some((
        task_secret_from(moto, "GATEWAY_JWT_SECRET").await,
        task_secret_from(moto, "GATEWAY_JWT_SECRET_PREVIOUS").await,
    ))
}

/// Where the gateway's task reads `name` from.
async fn task_secret_from(moto: &Moto, name: &str) -> String {
    let secrets = task_secrets(moto).await;
    secrets
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no secret {name}: {secrets}"))["valueFrom"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A Secrets Manager client on moto.
fn sm_client(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

const STATE_SECRET: &str = "claude-gateway-deployer-state";

/// The deployment's state as the account keeps it, if it does.
async fn account_state(moto: &Moto) -> Option<serde_json::Value> {
    let got = sm_client(moto)
        .get_secret_value()
        .secret_id(STATE_SECRET)
        .send()
        .await
        .ok()?;
    Some(serde_json::from_str(got.secret_string().unwrap()).unwrap())
}

/// Replaces one file of the account's copy of the state, as another operator's run would.
async fn put_account_file(moto: &Moto, rel: &str, text: &str) {
    let mut shared = account_state(moto).await.unwrap();
    shared["files"][rel] = text.into();
    sm_client(moto)
        .put_secret_value()
        .secret_id(STATE_SECRET)
        .secret_string(shared.to_string())
        .send()
        .await
        .unwrap();
}

/// A stack's parameters.
async fn stack_params(moto: &Moto, name: &str) -> std::collections::BTreeMap<String, String> {
    let out = cfn_client(moto)
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .unwrap();
    out.stacks()[0]
        .parameters()
        .iter()
        .map(|p| {
            (
                p.parameter_key().unwrap().to_owned(),
                p.parameter_value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Whether a stack exists (and is not deleted).
async fn stack_exists(moto: &Moto, name: &str) -> bool {
    match cfn_client(moto)
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
    {
        Ok(out) => out
            .stacks()
            .first()
            .is_some_and(|s| s.stack_status().map(|x| x.as_str()) != Some("DELETE_COMPLETE")),
        Err(_) => false,
    }
}

/// Outputs of one stack really feed the next: the rendered config carries the identity stack's
/// issuer, and the collector and VPN sit in the VPC the gateway stack created.
async fn check_wiring(moto: &Moto, stacks: &[&str]) {
    let cfn = cfn_client(moto);
    let stack = |name: &str| {
        let cfn = cfn.clone();
        let name = format!("claude-gateway-{name}");
        async move {
            let out = cfn.describe_stacks().stack_name(name).send().await.unwrap();
            let s = out.stacks()[0].clone();
            let params: std::collections::BTreeMap<String, String> = s
                .parameters()
                .iter()
                .map(|p| {
                    (
                        p.parameter_key().unwrap().to_owned(),
                        p.parameter_value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let outputs: std::collections::BTreeMap<String, String> = s
                .outputs()
                .iter()
                .map(|o| {
                    (
                        o.output_key().unwrap().to_owned(),
                        o.output_value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            (params, outputs)
        }
    };
    let (gw_params, gw_out) = stack("gateway").await;
    // Every stack carries the deployment's cost-allocation tags.
    for name in stacks {
        let out = cfn
            .describe_stacks()
            .stack_name(format!("claude-gateway-{name}"))
            .send()
            .await
            .unwrap();
        let tags: std::collections::BTreeMap<&str, &str> = out.stacks()[0]
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value()?)))
            .collect();
        assert_eq!(
            tags.get("claude-gateway:deployment"),
            Some(&"claude-gateway"),
            "{name}: {tags:?}"
        );
        assert_eq!(
            tags.get("claude-gateway:stack"),
            Some(name),
            "{name}: {tags:?}"
        );
    }
    // A task leaving keeps its streams for the profile's drain (the default, 600 s), not the
    // load balancer's 300 s or the 35 s this used to be.
    assert_eq!(gw_params["StreamDrainSeconds"], "600");
    let text: String = (1..=4)
        .map(|i| gw_params[&format!("GatewayConfigPart{i}")].as_str())
        .collect();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        config["listen"]["public_url"].as_str().unwrap(),
        gw_out["GatewayUrl"]
    );
    if stacks.contains(&"identity") {
        let (_, id_out) = stack("identity").await;
        assert_eq!(config["oidc"]["issuer"].as_str().unwrap(), id_out["Issuer"]);
        assert_eq!(gw_params["OidcClientSecretArn"], id_out["ClientSecretArn"]);
    }
    if stacks.contains(&"collector") {
        let (c_params, c_out) = stack("collector").await;
        assert_eq!(c_params["VpcId"], gw_out["VpcId"]);
        // Only the gateway's tasks may send to the collector, not the whole VPC.
        assert!(gw_out["TaskSecurityGroupId"].starts_with("sg-"));
        assert_eq!(
            c_params["GatewayTaskSecurityGroupId"],
            gw_out["TaskSecurityGroupId"]
        );
        assert!(gw_out["VpcId"].starts_with("vpc-"), "moto models the VPC");
        assert_eq!(
            config["telemetry"]["forward_to"][0]["url"]
                .as_str()
                .unwrap(),
            c_out["CollectorEndpoint"]
        );
    }
    // Agent access: the task role's roles are the section's, and a webhook URL reaches the task
    // only as a secret.
    // moto shows a list parameter as a Python list (`['a', 'b']`, `['']` when empty).
    let roles: Vec<&str> = gw_params["AwsAccessRoleArns"]
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|r| r.trim().trim_matches('\''))
        .filter(|r| !r.is_empty())
        .collect();
    let projects = config["aws_access"]["projects"].as_array().cloned();
    let wanted: Vec<String> = projects
        .iter()
        .flatten()
        .map(|p| p["role_arn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roles, wanted);
    let webhook = &config["aws_access"]["webhook_url"];
    assert_eq!(
        webhook.is_string(),
        !gw_params["AwsAccessWebhookSecretArn"].is_empty()
    );
    if webhook.is_string() {
        assert_eq!(webhook, "${AWS_ACCESS_WEBHOOK_URL}");
        // Read as raw JSON: moto keeps the template's AWS::NoValue entries as nulls, which the
        // SDK refuses to parse.
        let secrets = task_secrets(moto).await;
        assert!(
            secrets
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == "AWS_ACCESS_WEBHOOK_URL"
                    && s["valueFrom"] == gw_params["AwsAccessWebhookSecretArn"].as_str()),
            "{secrets}"
        );
    }
    if stacks.contains(&"observability") {
        // The database alarms watch this deployment's database (moto's CloudFormation makes no
        // CloudWatch alarms, so the alarms themselves are checked by cfn-lint and checkov).
        let (o_params, _) = stack("observability").await;
        assert!(!gw_out["DatabaseInstanceId"].is_empty());
        assert_eq!(o_params["DatabaseInstanceId"], gw_out["DatabaseInstanceId"]);
    }
    if stacks.contains(&"vpn") {
        let (v_params, _) = stack("vpn").await;
        assert_eq!(v_params["VpcId"], gw_out["VpcId"]);
        assert!(v_params["ServerCertificateArn"].starts_with("arn:aws:acm:"));
    }
}

/// An operator raises the observability stack's error threshold by hand (a parameter the profile
/// does not set); a later deployment that changes something else keeps it rather than resetting
/// it to the template's default.
/// Returns the changed profile.
async fn keeps_values_set_out_of_band(moto: &Moto, profile: &Path, state: &Path) -> PathBuf {
    let cfn = cfn_client(moto);
    let name = "claude-gateway-observability";
    let params =
        |s: &aws_sdk_cloudformation::types::Stack| -> std::collections::BTreeMap<String, String> {
            s.parameters()
                .iter()
                .map(|p| {
                    (
                        p.parameter_key().unwrap().to_owned(),
                        p.parameter_value().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        };
    let before = cfn.describe_stacks().stack_name(name).send().await.unwrap();
    let before = params(&before.stacks()[0]);
    let template = cfn.get_template().stack_name(name).send().await.unwrap();
    let mut update = cfn
        .update_stack()
        .stack_name(name)
        .template_body(template.template_body().unwrap())
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityIam);
    for (k, v) in &before {
        let v = if k == "ErrorThreshold" { "77" } else { v };
        update = update.parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build(),
        );
    }
    update.send().await.unwrap();

    // The profile's own change: a daily cost threshold.
    let edited = state.with_extension("changed.env");
    rewrite(
        profile,
        &edited,
        &[],
        &[("DAILY_COST_THRESHOLD_USD", "777")],
    );
    let (code, out) = deployer(
        moto,
        &[
            "deploy",
            "observability",
            "--profile",
            edited.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "deploy observability:\n{out}");
    assert!(out.contains("updating"), "{out}");
    let after = cfn.describe_stacks().stack_name(name).send().await.unwrap();
    let after = params(&after.stacks()[0]);
    assert_eq!(after["DailyCostThresholdUsd"], "777", "{after:?}");
    assert_eq!(
        after["ErrorThreshold"], "77",
        "the value set by hand is kept: {after:?}"
    );
    edited
}

/// A shipped profile with some keys replaced, written to `dir`.
fn edited(dir: &Path, name: &str, set: &[(&str, &str)]) -> PathBuf {
    let path = dir.join(format!("{name}.env"));
    rewrite(
        &repo_root().join(format!("config/{name}.env")),
        &path,
        &[],
        set,
    );
    path
}

/// Profile `from` written to `to` without the lines of keys starting with one of `drop`, and
/// with `set`'s keys replaced.
fn rewrite(from: &Path, to: &Path, drop: &[&str], set: &[(&str, &str)]) {
    let text = std::fs::read_to_string(from).unwrap();
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !drop.iter().any(|d| l.starts_with(d)))
        .filter(|l| !set.iter().any(|(k, _)| l.starts_with(&format!("{k}="))))
        .map(str::to_owned)
        .collect();
    out.extend(set.iter().map(|(k, v)| format!("{k}={v}")));
    std::fs::write(to, out.join("\n") + "\n").unwrap();
}

/// `status` says when each certificate the deployer made ends, and how to renew one near its end;
/// `renew` re-issues them from the same CA, under the same ACM ARNs, with new `.ovpn` files.
async fn renew_certificates(moto: &Moto, p: &str, state: &Path, status: &str) {
    use time::{Duration, OffsetDateTime};
    let s = state.to_str().unwrap();
    assert!(
        status.contains("certificates   made by the deployer"),
        "{status}"
    );
    assert!(status.contains("  CA: expires "), "{status}");
    assert!(
        status.contains("VPN client certificate developer1: expires "),
        "{status}"
    );
    assert!(
        !status.contains("renew with"),
        "nothing ends soon yet:\n{status}"
    );
    let read = |rel: &str| std::fs::read_to_string(state.join(rel)).unwrap();
    let arns = |text: String| {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        (
            v["gateway_certificate_arn"].clone(),
            v["vpn_certificate_arn"].clone(),
        )
    };
    let (arns_before, server_before, ovpn_before) = (
        arns(read("state.json")),
        read("pki/vpn-server.pem"),
        read("vpn/developer1.ovpn"),
    );

    let (code, out) = deployer(
        moto,
        &[
            "renew",
            "--profile",
            p,
            "--state-dir",
            s,
            "--within-days",
            "800",
        ],
    );
    assert_eq!(code, 0, "renew:\n{out}");
    assert!(
        out.contains("renewed the VPN server certificate vpn."),
        "{out}"
    );
    assert!(out.contains("re-imported as arn:aws:acm:"), "{out}");
    assert!(
        out.contains("renewed the VPN client certificate developer1"),
        "{out}"
    );
    assert!(
        !out.contains("renewed the CA"),
        "the CA has years left:\n{out}"
    );
    if state.join("pki/gateway.pem").exists() {
        assert!(out.contains("renewed the gateway certificate"), "{out}");
        assert!(
            out.contains("the gateway's new certificate fingerprint (SHA-256): "),
            "{out}"
        );
    }
    assert_eq!(arns(read("state.json")), arns_before, "same ACM ARNs");
    assert_ne!(read("pki/vpn-server.pem"), server_before);
    assert_ne!(read("vpn/developer1.ovpn"), ovpn_before);

    // A server certificate made 380 days ago: status warns and names the command; renew (30 days
    // by default) re-issues that one only.
    let ca = deployer::pki::Ca::load("claude-gateway", &read("pki/ca.pem"), &read("pki/ca.key"))
        .unwrap();
    let old = ca
        .server(
            "vpn.old.example.com",
            OffsetDateTime::now_utc() - Duration::days(380),
        )
        .unwrap();
    // Written where every operator reads it: the account's copy (a local edit alone is
    // replaced by the account's, as the status below shows for the CA).
    put_account_file(moto, "pki/vpn-server.pem", &old.cert_pem).await;
    std::fs::write(state.join("pki/ca.pem"), "edited on this machine").unwrap();
    let (code, out) = deployer(moto, &["status", "--profile", p, "--state-dir", s]);
    assert_eq!(code, 0, "a certificate near its end is a warning:\n{out}");
    assert!(
        out.contains("differs from the account's copy (secret claude-gateway-deployer-state) in pki/ca.pem, pki/vpn-server.pem; using the account's"),
        "{out}"
    );
    assert_eq!(
        read("pki/ca.pem"),
        ca.pem.cert_pem,
        "the account's CA is back"
    );
    assert_eq!(read("pki/vpn-server.pem"), old.cert_pem);
    assert!(out.contains(" day(s): renew it"), "{out}");
    assert!(
        out.contains(&format!(
            "renew with: deployer renew --profile {p} --state-dir {s}"
        )),
        "{out}"
    );
    let (code, out) = deployer(moto, &["renew", "--profile", p, "--state-dir", s]);
    assert_eq!(code, 0, "renew:\n{out}");
    assert!(
        out.contains("renewed 1 certificate(s) ending within 30 days"),
        "{out}"
    );
    let (_, out) = deployer(moto, &["status", "--profile", p, "--state-dir", s]);
    assert!(!out.contains("renew with"), "{out}");
}

/// `rotate-jwt` makes a new session secret and deploys the gateway with it signing and the old one
/// still verifying; a later `deploy-all` (here the second operator's, with the profile changed by
/// [`keeps_values_set_out_of_band`]) changes nothing and keeps both; `--finish` drops the old one.
async fn rotate_session_secret(
    moto: &Moto,
    p: &str,
    state: &Path,
    second: &Path,
    changed: &Path,
    stacks: &[&str],
) {
    let s = state.to_str().unwrap();
    let gw = "claude-gateway-gateway";
    let before = stack_params(moto, gw).await;
    assert_eq!(before["PreviousSessionSecretArn"], "", "{before:?}");
    let out = cfn_client(moto)
        .describe_stacks()
        .stack_name(gw)
        .send()
        .await
        .unwrap();
    let old = out.stacks()[0]
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some("SessionSecretArn"))
        .and_then(|o| o.output_value())
        .unwrap()
        .to_owned();
    // The stack's own generated secret (which moto does not make: it stands in a name for it).
    assert!(
        old.contains(":secret:claude-gateway-gateway-session-secret")
            || old == "JwtSecret-emulated",
        "{old}"
    );
    // Where the tasks read both secrets from: outside a rotation, both from the signing secret
    // (moto makes the gateway's task definition for the self-signed profile only, and loses it
    // when an update changes it, so only this first look is possible).
    let task = jwt_sources(moto).await.is_some();
    assert!(task || stacks.contains(&"identity"));
    assert_eq!(
        jwt_sources(moto).await,
        task.then(|| (old.clone(), old.clone()))
    );

    let (code, out) = deployer(moto, &["rotate-jwt", "--profile", p, "--state-dir", s]);
    assert_eq!(code, 0, "rotate-jwt:\n{out}");
    assert!(out.contains("gateway: updating"), "{out}");
    let during = stack_params(moto, gw).await;
    let new = during["SigningSessionSecretArn"].clone();
    assert!(
        new.contains(":secret:claude-gateway-rotated-session-secret-"),
        "{during:?}"
    );
    assert_eq!(during["PreviousSessionSecretArn"], old);
    let value = sm_client(moto)
        .get_secret_value()
        .secret_id(&new)
        .send()
        .await
        .unwrap();
    let value = value.secret_string().unwrap();
    assert_eq!(value.len(), 64);
    assert!(!out.contains(value), "the secret is never printed");
    assert!(out.contains("rotate-jwt --profile"), "{out}");

    // A second start while one is under way is refused.
    let (code, out) = deployer(moto, &["rotate-jwt", "--profile", p, "--state-dir", s]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("a rotation is under way"), "{out}");

    // Another deploy-all changes nothing and keeps every value set out of band.
    let c = changed.to_str().unwrap();
    let s2 = second.to_str().unwrap();
    let (code, out) = deployer(moto, &["deploy-all", "--profile", c, "--state-dir", s2]);
    assert_eq!(code, 0, "deploy-all during the rotation:\n{out}");
    for stack in stacks {
        assert!(
            out.contains(&format!("{stack}: no changes")),
            "{stack}:\n{out}"
        );
    }
    assert_eq!(stack_params(moto, gw).await, during);
    assert_eq!(
        stack_params(moto, "claude-gateway-observability").await["ErrorThreshold"],
        "77"
    );

    // Finished from the other checkout: the old secret no longer verifies; the new one still signs.
    let (code, out) = deployer(
        moto,
        &["rotate-jwt", "--profile", p, "--state-dir", s2, "--finish"],
    );
    assert_eq!(code, 0, "rotate-jwt --finish:\n{out}");
    let after = stack_params(moto, gw).await;
    assert_eq!(after["PreviousSessionSecretArn"], "");
    assert_eq!(after["SigningSessionSecretArn"], new);
    let (code, out) = deployer(
        moto,
        &["rotate-jwt", "--profile", p, "--state-dir", s2, "--finish"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to finish"), "{out}");
}

/// After `destroy`: no stack of the deployment, no state secret, no session secret the deployer
/// made, no imported certificate.
async fn leaves_nothing(moto: &Moto) {
    for slug in ["identity", "gateway", "collector", "observability", "vpn"] {
        let name = format!("claude-gateway-{slug}");
        assert!(!stack_exists(moto, &name).await, "{name} is left");
    }
    assert!(
        account_state(moto).await.is_none(),
        "the state secret is left"
    );
    let secrets = sm_client(moto).list_secrets().send().await.unwrap();
    let names: Vec<&str> = secrets
        .secret_list()
        .iter()
        .filter_map(|s| s.name())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("claude-gateway-deployer-state")
                && !n.starts_with("claude-gateway-rotated-session-secret")),
        "{names:?}"
    );
    let acm_conf = aws_sdk_acm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let certs = aws_sdk_acm::Client::from_conf(acm_conf)
        .list_certificates()
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = certs
        .certificate_summary_list()
        .iter()
        .filter_map(|c| c.certificate_arn())
        .collect();
    assert!(arns.is_empty(), "certificates left: {arns:?}");
}

async fn full_cycle(
    moto: &Moto,
    profile: &Path,
    state: &Path,
    stacks: &[&str],
    image_from_ecr: bool,
) -> String {
    let p = profile.to_str().unwrap();
    let s = state.to_str().unwrap();

    let (code, out) = deployer(moto, &["deploy-all", "--profile", p, "--state-dir", s]);
    assert_eq!(code, 0, "first deploy-all:\n{out}");
    let first = out.clone();
    for stack in stacks {
        assert!(
            out.contains(&format!("{stack}: CREATE_COMPLETE")),
            "{stack} not created:\n{out}"
        );
    }
    assert!(out.contains("preflight"), "{out}");
    // Quotas and service-linked roles, answered by moto's EC2 and IAM.
    assert!(
        out.contains("ok  Elastic IPs: ") && out.contains(" of 5 allocated"),
        "{out}"
    );
    assert!(out.contains("ok  VPCs: "), "{out}");
    assert!(
        out.contains("service-linked role AWSServiceRoleForECS does not exist yet")
            && out.contains(
                "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com"
            ),
        "{out}"
    );
    if !moto.env.is_empty() {
        let size = std::fs::metadata(repo_root().join("cfn/gateway.yaml"))
            .unwrap()
            .len();
        assert!(out.contains(&format!("gateway: gateway.yaml is {size} bytes, over the inline limit; uploading to s3://claude-gateway-cfn-123456789012-us-east-1/")), "{out}");
    }
    if image_from_ecr {
        assert!(out.contains("is already in ECR"), "{out}");
        assert!(
            !out.contains("$ docker"),
            "an image already in ECR is neither built nor pushed:\n{out}"
        );
    }
    assert!(
        out.contains("managed settings for every developer machine"),
        "{out}"
    );
    assert!(out.contains("\"forceLoginMethod\":\"gateway\""), "{out}");
    assert!(out.contains("dashboard    https://"), "{out}");
    check_wiring(moto, stacks).await;
    let ovpn = state.join("vpn/developer1.ovpn");
    assert!(ovpn.exists(), "{out}");
    {
        let text = std::fs::read_to_string(&ovpn).unwrap();
        assert!(
            text.contains("tun-mtu 1300") && text.contains("mssfix 1260") && text.contains("<key>")
        );
    }

    // The account holds the deployment's state, found by name.
    let shared = account_state(moto)
        .await
        .expect("the state is kept in the account");
    let read = |dir: &Path, rel: &str| std::fs::read_to_string(dir.join(rel)).unwrap();
    assert_eq!(shared["files"]["pki/ca.pem"], read(state, "pki/ca.pem"));
    let arns = |dir: &Path| {
        let v: serde_json::Value = serde_json::from_str(&read(dir, "state.json")).unwrap();
        (
            v["gateway_certificate_arn"].clone(),
            v["vpn_certificate_arn"].clone(),
        )
    };

    // A deployment made before its state moved to the account: only the first machine has it.
    // Another machine's run refuses to make a second CA; the first machine's next run moves its
    // state into the account.
    sm_client(moto)
        .delete_secret()
        .secret_id(STATE_SECRET)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let early = state.with_extension("early");
    let e = early.to_str().unwrap();
    let (code, out) = deployer(moto, &["deploy-all", "--profile", p, "--state-dir", e]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("signed by a CA this machine does not have and the account does not keep (secret claude-gateway-deployer-state)"),
        "{out}"
    );
    assert!(
        !out.contains("created a private CA") && !out.contains("imported"),
        "{out}"
    );
    let (code, out) = deployer(moto, &["deploy-all", "--profile", p, "--state-dir", s]);
    assert_eq!(code, 0, "the first machine's deploy-all:\n{out}");
    let shared = account_state(moto).await.unwrap();
    assert_eq!(shared["files"]["pki/ca.pem"], read(state, "pki/ca.pem"));
    assert_eq!(shared["files"]["pki/ca.key"], read(state, "pki/ca.key"));

    // A second operator, from a checkout with no local state: their deploy-all uses the
    // deployment's CA and imported certificates, and changes nothing.
    let second = state.with_extension("second");
    let s2 = second.to_str().unwrap();
    let (code, out) = deployer(moto, &["deploy-all", "--profile", p, "--state-dir", s2]);
    assert_eq!(code, 0, "the second operator's deploy-all:\n{out}");
    // The deployment's own VPC and addresses are usage now, not new needs.
    assert!(
        !out.contains("VPCs: ") && !out.contains("Elastic IPs: "),
        "{out}"
    );
    for stack in stacks {
        assert!(
            out.contains(&format!("{stack}: no changes")),
            "{stack} changed on a re-run:\n{out}"
        );
    }
    assert!(
        !out.contains("creating") && !out.contains("updating"),
        "{out}"
    );
    assert!(
        !out.contains("created a private CA") && !out.contains("imported"),
        "{out}"
    );
    assert_eq!(read(&second, "pki/ca.pem"), read(state, "pki/ca.pem"));
    assert_eq!(read(&second, "pki/ca.key"), read(state, "pki/ca.key"));
    // VPN client certificates stay with the machine that issued them; the second machine issues
    // its own from the same CA.
    let ovpn = read(&second, "vpn/developer1.ovpn");
    assert!(ovpn.contains(read(state, "pki/ca.pem").trim()), "{ovpn}");
    assert!(shared["files"].get("vpn/developer1.key").is_none());
    assert_eq!(arns(&second), arns(state), "the same ACM certificates");
    assert!(arns(state).1.is_string(), "{:?}", arns(state));

    let changed = keeps_values_set_out_of_band(moto, profile, state).await;
    rotate_session_secret(moto, p, state, &second, &changed, stacks).await;

    let (code, out) = deployer(moto, &["plan", "--live", "--profile", p, "--state-dir", s]);
    assert_eq!(code, 0, "plan --live:\n{out}");
    assert_eq!(out.matches("change set:").count(), stacks.len(), "{out}");

    let (code, out) = deployer(moto, &["status", "--profile", p, "--state-dir", s]);
    assert_eq!(code, 0, "status:\n{out}");
    assert!(out.contains("CREATE_COMPLETE"), "{out}");
    assert!(out.contains("config sha256"), "{out}");
    renew_certificates(moto, p, state, &out).await;

    let (code, out) = deployer(
        moto,
        &["outputs", "--profile", p, "--state-dir", s, "--json"],
    );
    assert_eq!(code, 0, "outputs:\n{out}");
    let json_start = out.find('{').unwrap();
    let doc: serde_json::Value = serde_json::from_str(&out[json_start..]).unwrap();
    assert!(doc["claude-gateway-gateway"]["GatewayUrl"]
        .as_str()
        .unwrap()
        .starts_with("https://"));

    // The VPN is turned off in the profile: plan shows the stack's removal, deploy-all keeps it
    // without a confirmation (no terminal here) and deletes it with --yes; destroy, from that
    // profile, deletes the rest.
    let no_vpn_path = state.with_extension("novpn.env");
    rewrite(profile, &no_vpn_path, &["VPN_"], &[("VPN", "false")]);
    let q = no_vpn_path.to_str().unwrap();
    let (code, out) = deployer(moto, &["plan", "--live", "--profile", q, "--state-dir", s]);
    assert_eq!(code, 0, "plan without the VPN:\n{out}");
    assert!(
        out.contains("vpn: stack claude-gateway-vpn is no longer in the profile: remove"),
        "{out}"
    );
    let (code, out) = deployer(moto, &["deploy-all", "--profile", q, "--state-dir", s]);
    assert_eq!(code, 0, "deploy-all without the VPN:\n{out}");
    assert!(
        out.contains("kept: claude-gateway-vpn is no longer in the profile but still runs (and bills); nothing was deleted without confirmation"),
        "{out}"
    );
    assert!(!out.contains("vpn: deleting"), "{out}");
    assert!(stack_exists(moto, "claude-gateway-vpn").await);
    let (code, out) = deployer(
        moto,
        &["deploy-all", "--profile", q, "--state-dir", s, "--yes"],
    );
    assert_eq!(code, 0, "deploy-all --yes without the VPN:\n{out}");
    assert!(out.contains("then deleting claude-gateway-vpn"), "{out}");
    assert!(out.contains("vpn: deleting claude-gateway-vpn"), "{out}");
    assert!(!stack_exists(moto, "claude-gateway-vpn").await);
    assert!(!out.contains("kept:"), "{out}");

    let (code, out) = deployer(
        moto,
        &["destroy", "--profile", q, "--state-dir", s, "--yes"],
    );
    assert_eq!(code, 0, "destroy:\n{out}");
    let order: Vec<usize> = stacks
        .iter()
        .filter(|st| **st != "vpn")
        .rev()
        .map(|st| out.find(&format!("{st}: deleting")).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "destroy must run in reverse order:\n{out}"
    );
    // The gateway's log group (the audit trail) is kept, and destroy says how to delete it.
    assert!(
        out.contains("Kept: log group /claude-gateway/claude-gateway-gateway/gateway-")
            && out.contains("aws logs delete-log-group"),
        "{out}"
    );
    assert!(
        out.contains("state: deleted Secrets Manager secret claude-gateway-deployer-state"),
        "{out}"
    );
    leaves_nothing(moto).await;

    let (code, out) = deployer(moto, &["status", "--profile", p, "--state-dir", s]);
    assert_eq!(code, 1, "status after destroy:\n{out}");
    assert!(out.contains("not deployed"), "{out}");
    first
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_all_twice_status_outputs_destroy_against_moto() {
    let mut moto = start_moto();
    // Moto reads path-style template URLs (templates over the inline limit go through S3) only on
    // a localhost endpoint.
    moto.url = moto.url.replace("127.0.0.1", "localhost");
    let (zone_id, secret_arn) = seed(&moto).await;
    let dir = tempfile::tempdir().unwrap();

    // The flagship profile: identity, gateway, collector, observability and VPN; image by content tag.
    let flagship = edited(
        dir.path(),
        "managed-newcognito-collector-vpn",
        &[
            ("HOSTED_ZONE_ID", &zone_id),
            ("BEDROCK_ACCESS_CHECK", "false"),
            ("DB_DELETION_PROTECTION", "false"),
        ],
    );
    full_cycle(
        &moto,
        &flagship,
        &dir.path().join("state-a"),
        &["identity", "gateway", "collector", "observability", "vpn"],
        true,
    )
    .await;

    // Self-signed with bring-your-own OIDC: a CA made and imported by the deployer, no zone, no identity stack.
    // With agent access to AWS, its webhook URL in the same kind of secret.
    let access = dir.path().join("aws-access.yaml");
    let example =
        std::fs::read_to_string(repo_root().join("config/aws-access.example.yaml")).unwrap();
    std::fs::write(
        &access,
        format!("{example}webhook_url: ${{AWS_ACCESS_WEBHOOK_URL}}\n"),
    )
    .unwrap();
    let selfsigned = edited(
        dir.path(),
        "selfsigned-fallback",
        &[
            ("AWS_ACCESS_CONFIG", access.to_str().unwrap()),
            ("AWS_ACCESS_WEBHOOK_SECRET_ARN", &secret_arn),
            ("OIDC_CLIENT_SECRET_ARN", &secret_arn),
            ("BEDROCK_ACCESS_CHECK", "false"),
            ("DB_DELETION_PROTECTION", "false"),
            ("GATEWAY_IMAGE", "111122223333.dkr.ecr.us-east-1.amazonaws.com/claude-gateway@sha256:0000000000000000000000000000000000000000000000000000000000000000"),
        ],
    );
    // Large templates through the deployer's S3 bucket: lower the inline limit below the gateway and
    // observability templates.
    moto.env
        .push(("DEPLOYER_INLINE_TEMPLATE_LIMIT", "20000".into()));
    let state = dir.path().join("state-b");
    let out = full_cycle(
        &moto,
        &selfsigned,
        &state,
        &["gateway", "observability", "vpn"],
        false,
    )
    .await;
    // Preflight says the OIDC secret's customer-managed key is one the execution role may use.
    assert!(
        out.contains("it is encrypted with customer-managed KMS key arn:aws:kms:"),
        "{out}"
    );
    assert!(state.join("pki/ca.pem").exists() && state.join("pki/gateway.pem").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_refuses_a_missing_zone_and_a_domain_outside_it() {
    let moto = start_moto();
    let (zone_id, _) = seed(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let p = edited(
        dir.path(),
        "managed-newcognito-notelemetry",
        &[
            ("HOSTED_ZONE_ID", "ZNOTTHERE"),
            ("BEDROCK_ACCESS_CHECK", "false"),
        ],
    );
    let (code, out) = deployer(&moto, &["deploy-all", "--profile", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ZNOTTHERE"), "{out}");

    let p = edited(
        dir.path(),
        "managed-newcognito-notelemetry",
        &[
            ("HOSTED_ZONE_ID", &zone_id),
            ("GATEWAY_HOSTNAME", "claude.badcorp.example.com"),
            ("BEDROCK_ACCESS_CHECK", "false"),
        ],
    );
    let (code, out) = deployer(&moto, &["deploy-all", "--profile", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("GATEWAY_HOSTNAME claude.badcorp.example.com is not inside hosted zone corp.example.com"), "{out}");
    assert!(
        !out.contains("creating"),
        "nothing is deployed after a failed preflight:\n{out}"
    );
}
