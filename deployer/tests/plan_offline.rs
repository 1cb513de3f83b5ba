//! `deployer plan` runs for every shipped profile with no AWS account and no network, and exit
//! codes follow the documented contract.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::Path;
use std::process::Command;

fn deployer(args: &[&str]) -> (i32, String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .current_dir(&root)
        // No credentials and an endpoint nobody listens on: any AWS call would fail loudly.
        .env("AWS_ACCESS_KEY_ID", "")
        .env("AWS_SECRET_ACCESS_KEY", "")
        .env("AWS_PROFILE", "nonexistent-offline-test")
        .env("DEPLOYER_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plan_runs_offline_for_every_shipped_profile() {
    for name in [
        "managed-newcognito-collector-vpn",
        "managed-newcognito-notelemetry",
        "managed-existingcognito-byotelemetry",
        "byo-oidc-notelemetry",
        "byo-oidc-byotelemetry",
        "selfsigned-fallback",
    ] {
        let (code, out, err) = deployer(&["plan", "--profile", &format!("config/{name}.env")]);
        assert_eq!(code, 0, "{name}: {err}\n{out}");
        assert!(out.contains("gateway.yaml: valid;"), "{name}: {out}");
        assert!(out.contains("/ 16384 bytes"), "{name}: {out}");
        assert!(
            out.contains("gateway: stack claude-gateway-gateway"),
            "{name}: {out}"
        );
        assert!(
            out.contains("observability: stack claude-gateway-observability"),
            "{name}: {out}"
        );
        assert!(out.contains("offline plan"), "{name}: {out}");
    }
}

#[test]
fn plan_shows_outputs_it_will_wire_and_the_config() {
    let (code, out, _) = deployer(&[
        "plan",
        "--profile",
        "config/managed-newcognito-collector-vpn.env",
        "--show-config",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("<gateway.VpcId>"),
        "collector and VPN read the gateway's outputs: {out}"
    );
    assert!(out.contains("<identity.ClientSecretArn>"));
    assert!(out.contains("\"public_url\":\"https://claude.corp.example.com\""));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.env");
    std::fs::write(
        &bad,
        "AWS_REGION=us-east-1\nGATEWAY_HOST=claude.example.com\n",
    )
    .unwrap();
    let (code, _, err) = deployer(&["plan", "--profile", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("GATEWAY_HOST: unknown key"), "{err}");
    let (code, _, _) = deployer(&["plan", "--profile", "config/does-not-exist.env"]);
    assert_eq!(code, 2);
    let (code, _, err) = deployer(&[
        "deploy",
        "nonsense",
        "--profile",
        "config/byo-oidc-notelemetry.env",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = deployer(&["frobnicate"]);
    assert_eq!(code, 2);
}

#[test]
fn keys_lists_every_key() {
    let (code, out, _) = deployer(&["keys"]);
    assert_eq!(code, 0);
    for k in deployer::profile::keys::KEYS {
        assert!(out.contains(k.name));
    }
}

#[test]
fn plan_shows_agent_access_and_the_roles_it_derives() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let base = std::fs::read_to_string(root.join("managed-newcognito-collector-vpn.env")).unwrap();
    // The shipped profile's commented line, switched on, next to a copy of the example.
    let text = base.replace(
        "# AWS_ACCESS_CONFIG=aws-access.example.yaml",
        "AWS_ACCESS_CONFIG=aws-access.example.yaml",
    );
    assert_ne!(text, base, "the shipped profile refers to the example");
    std::fs::write(dir.path().join("p.env"), text).unwrap();
    std::fs::copy(
        root.join("aws-access.example.yaml"),
        dir.path().join("aws-access.example.yaml"),
    )
    .unwrap();
    let profile = dir.path().join("p.env");
    let (code, out, err) = deployer(&["plan", "--profile", profile.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("agent access to AWS from ") && out.contains("(payments, payments-staging)"),
        "{out}"
    );
    for arn in [
        "arn:aws:iam::444455556666:role/payments-agent-access-ProjectRole-AbC123",
        "arn:aws:iam::777788889999:role/payments-staging-agent-access-ProjectRole-DeF456",
    ] {
        assert!(out.contains(&format!("    {arn}\n")), "{out}");
    }
    let (_, out, _) = deployer(&["plan", "--profile", "config/byo-oidc-notelemetry.env"]);
    assert!(
        out.contains("agent access to AWS off") && out.contains("may assume no project role"),
        "{out}"
    );
}

/// `plan --parameters-json` prints, offline and alone on stdout, every stack's parameters in the
/// `[{"ParameterKey","ParameterValue"}]` form, with the rendered gateway config and no
/// placeholder left for another stack's outputs; scripts/lint-infra runs cfn-lint on each.
#[test]
fn parameters_json_gives_every_stack_its_parameters_for_every_shipped_profile() {
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")).unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("env") {
            continue;
        }
        let profile = format!("config/{}", path.file_name().unwrap().to_str().unwrap());
        let (code, out, err) = deployer(&["plan", "--profile", &profile, "--parameters-json"]);
        assert_eq!(code, 0, "{profile}: {err}\n{out}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let stacks = doc.as_object().unwrap();
        assert!(stacks.contains_key("gateway.yaml"), "{profile}: {out}");
        assert!(
            stacks.contains_key("observability.yaml"),
            "{profile}: {out}"
        );
        for (template, params) in stacks {
            let body = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../cfn/{template}")),
            )
            .unwrap();
            for p in params.as_array().unwrap() {
                let key = p["ParameterKey"].as_str().unwrap();
                let value = p["ParameterValue"].as_str().unwrap();
                assert!(
                    body.contains(&format!("\n  {key}:\n")),
                    "{profile}: {template} declares no parameter {key}"
                );
                assert!(
                    !(value.starts_with('<') && value.ends_with('>')),
                    "{profile}: {template} {key} is a placeholder: {value}"
                );
            }
        }
        let gateway = stacks["gateway.yaml"].as_array().unwrap();
        let config = gateway
            .iter()
            .find(|p| p["ParameterKey"] == "GatewayConfigPart1")
            .unwrap();
        assert!(
            config["ParameterValue"]
                .as_str()
                .unwrap()
                .contains("public_url"),
            "{profile}: the gateway config is the rendered one: {config}"
        );
    }
    let (code, _, err) = deployer(&[
        "plan",
        "--profile",
        "config/selfsigned-fallback.env",
        "--parameters-json",
        "--live",
    ]);
    assert_eq!(code, 2, "--parameters-json is offline only: {err}");
}
