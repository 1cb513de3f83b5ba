//! Every config the reference gateway accepts boots ours (or is refused only for a provider we do
//! not serve); every config it refuses, ours refuses naming the same location.

use std::process::Command;

use crate::support::data;

const SECRET: &str = "0123456789abcdef0123456789abcdef-secret";

fn check(file: &std::path::Path, extra_env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(crate::support::gateway_bin());
    cmd.arg("check-config").arg(file);
    for (k, v) in [
        ("GATEWAY_JWT_SECRET", SECRET),
        ("FAKE_UPSTREAM_KEY", "fake-upstream-key"),
        ("OIDC_CLIENT_SECRET", "oidc-secret"),
        ("GATEWAY_POSTGRES_URL", "postgres://gw@db.internal/gateway"),
        ("ANTHROPIC_API_KEY", "sk-ant-test"),
        ("ADMIN_READ_KEY", "read-key-0123456789abcdef0123456789"),
        ("ADMIN_WRITE_KEY", "write-key-0123456789abcdef0123456789"),
        ("OTEL_TOKEN", "otel-token"),
        ("CLAUDE_GATEWAY_ALLOW_LOOPBACK", "1"),
    ] {
        cmd.env(k, v);
    }
    cmd.env_remove("NOPE_UNDEFINED_VAR")
        .env_remove("GATEWAY_PG_HOST");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run check-config");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_good_config_is_accepted() {
    let dir = data("configs/good");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let (ok, stdout, stderr) = check(&path, &[]);
        assert!(ok, "{} was refused:\n{stderr}", path.display());
        assert!(
            stdout.contains(": ok") && stdout.contains("sha256: "),
            "{stdout}"
        );
        assert!(!stdout.contains(SECRET), "the summary printed a secret");
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn every_bad_config_is_refused_at_its_location() {
    let expected = [
        ("bad-provider.yaml", "upstreams[0].provider:"),
        ("duplicate-upstream-names.yaml", "upstreams:"),
        ("empty-upstreams.yaml", "upstreams:"),
        ("missing-postgres-url.yaml", "store.postgres_url:"),
        ("public-host-without-public-url.yaml", "listen.public_url:"),
        ("relative-file-ref.yaml", "${file:run/keyfile}:"),
        (
            "relay-budget-below-payload.yaml",
            "limits.telemetry_in_flight_bytes:",
        ),
        ("removed-dev-key.yaml", "dev:"),
        ("scopes-without-openid.yaml", "oidc.scopes:"),
        ("short-jwt-secret.yaml", "session.jwt_secret:"),
        ("undefined-env-var.yaml", "NOPE_UNDEFINED_VAR"),
        ("unknown-listen-key.yaml", "listen.bogus:"),
        ("unknown-top-key.yaml", "bogus_top:"),
    ];
    let files = std::fs::read_dir(data("configs/bad")).unwrap().count();
    assert_eq!(files, expected.len(), "every bad config has an expectation");
    for (file, location) in expected {
        let (ok, _, stderr) = check(&data("configs/bad").join(file), &[]);
        assert!(!ok, "{file} was accepted");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(location) || l.contains(location)),
            "{file}: expected the location {location:?} in:\n{stderr}"
        );
        assert!(
            !stderr.contains(SECRET),
            "{file}: an error printed the secret"
        );
    }
}

#[test]
fn unsupported_providers_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vertex.yaml");
    let text = std::fs::read_to_string(data("configs/good/minimal.yaml"))
        .unwrap()
        .replace(
            "provider: anthropic",
            "provider: vertex\n    region: us-east5\n    project_id: p",
        )
        .replace(
            "    auth:\n      api_key: ${FAKE_UPSTREAM_KEY}\n",
            "    auth: {}\n",
        );
    std::fs::write(&path, text).unwrap();
    let (ok, _, stderr) = check(&path, &[]);
    assert!(!ok);
    assert!(
        stderr.contains("upstreams[0].provider: provider vertex is not supported by this gateway"),
        "{stderr}"
    );
}

#[test]
fn loopback_urls_need_the_switch() {
    let (ok, _, stderr) = check(
        &data("configs/good/minimal.yaml"),
        &[("CLAUDE_GATEWAY_ALLOW_LOOPBACK", "0")],
    );
    assert!(!ok);
    assert!(
        stderr.contains("upstreams[0].base_url:") && stderr.contains("oidc.issuer:"),
        "{stderr}"
    );
}

#[test]
fn config_can_come_from_an_environment_variable() {
    // An invalid config through --config-env fails the same way a file does, naming the source.
    let out = Command::new(crate::support::gateway_bin())
        .args(["--config-env", "GATEWAY_CONFIG"])
        .env(
            "GATEWAY_CONFIG",
            "listen: {host: 127.0.0.1}\nbogus_top: 1\n",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("$GATEWAY_CONFIG") && stderr.contains("bogus_top: unknown key"),
        "{stderr}"
    );

    let out = Command::new(crate::support::gateway_bin())
        .args(["--config-env", "NOT_SET_ANYWHERE"])
        .env_remove("NOT_SET_ANYWHERE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Runs `aws-policies FILE` with the secrets `check` gives check-config.
fn aws_policies(file: &std::path::Path) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(crate::support::gateway_bin());
    cmd.arg("aws-policies").arg(file);
    for (k, v) in [
        ("GATEWAY_JWT_SECRET", SECRET),
        ("FAKE_UPSTREAM_KEY", "fake-upstream-key"),
        ("OIDC_CLIENT_SECRET", "oidc-secret"),
        ("GATEWAY_POSTGRES_URL", "postgres://gw@db.internal/gateway"),
        ("CLAUDE_GATEWAY_ALLOW_LOOPBACK", "1"),
    ] {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run aws-policies");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn aws_policies_prints_the_session_policy_of_every_project_level() {
    use claude_gateway::aws_access::policy::session_policy;
    use claude_gateway::config::MapEnv;

    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.example.yaml");
    let (code, stdout, stderr) = aws_policies(&example);
    assert_eq!(code, Some(0), "{stderr}");
    let printed: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // What the library generates for the same config, level by level.
    let env = MapEnv::new()
        .with_var("OIDC_CLIENT_SECRET", "oidc-secret")
        .with_var("GATEWAY_JWT_SECRET", SECRET)
        .with_var("GATEWAY_POSTGRES_URL", "postgres://gw@db.internal/gateway");
    let text = std::fs::read_to_string(&example).unwrap();
    let access = claude_gateway::config::load(&text, &env)
        .unwrap()
        .config
        .aws_access
        .expect("the example has an aws_access section");
    let mut want = Vec::new();
    for p in &access.projects {
        for level in p.levels() {
            let policy = session_policy(&p.actions(level), &p.deny).unwrap();
            want.push(serde_json::json!({
                "project": p.name,
                "level": level,
                "policy": serde_json::from_str::<serde_json::Value>(&policy).unwrap(),
            }));
        }
    }
    assert_eq!(printed, want);
    // A prod and a nonprod project, each with read and write.
    let pairs: Vec<(&str, &str)> = printed
        .iter()
        .map(|v| (v["project"].as_str().unwrap(), v["level"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("payments", "read"),
            ("payments", "write"),
            ("payments-staging", "read"),
            ("payments-staging", "write"),
        ]
    );
    assert_eq!(printed[1]["policy"]["Statement"][1]["Effect"], "Deny");

    // No aws_access section: nothing to print. An invalid config: exit 1 with its location.
    let (code, stdout, _) = aws_policies(&data("configs/good/minimal.yaml"));
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    let (code, _, stderr) = aws_policies(&data("configs/bad/unknown-top-key.yaml"));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("bogus_top:"), "{stderr}");
}

/// `config/good/minimal.yaml` with `extra` appended, in a temporary file.
fn minimal_with(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    let text = std::fs::read_to_string(data("configs/good/minimal.yaml")).unwrap();
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    (dir, path)
}

#[test]
fn check_config_refuses_managed_mcp_servers_the_client_would_drop() {
    let (_dir, path) = minimal_with(
        "managed:
  policies:
    - match: {groups: [desktop]}
      cli:
        managedMcpServers: [{name: aws, transport: http, url: 'https://gw.example.com/mcp'}]
    - match: {groups: [eng]}
      cli:
        managedMcpServers:
          aws: {type: http, url: 'http://gw.example.com/mcp', headersHelper: /bin/get-token}
          vendor: {type: http, url: 'https://mcp.vendor.example', headers: {Authorization: 'Bearer ${VENDOR_TOKEN:-none}'}}
          local: {type: stdio, command: aws-mcp}
",
    );
    let (ok, _, stderr) = check(&path, &[]);
    assert!(!ok, "accepted");
    for location in [
        "managed.policies[0].cli.managedMcpServers: must be an object keyed by server name",
        "managed.policies[1].cli.managedMcpServers.aws.url: must be an https:// URL",
        "managed.policies[1].cli.managedMcpServers.aws.headersHelper: is not allowed",
        "managed.policies[1].cli.managedMcpServers.vendor.headers.Authorization: holds a ${NAME}",
        "managed.policies[1].cli.managedMcpServers.local.command: is not allowed",
        "managed.policies[1].cli.managedMcpServers.local.type: must be http",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(location)),
            "expected {location:?} in:\n{stderr}"
        );
    }
}

#[test]
fn check_config_warns_about_static_headers_and_an_unservable_own_mcp() {
    // The gateway expands `${VENDOR_TOKEN}` itself, so the client receives the literal value.
    let (_dir, path) = minimal_with(
        "managed:
  policies:
    - match: {}
      cli:
        permissions: {allow: [mcp__aws]}
        managedMcpServers:
          aws: {type: http, url: 'https://127.0.0.1:8787/mcp'}
          vendor: {type: http, url: 'https://mcp.vendor.example', headers: {Authorization: 'Bearer ${VENDOR_TOKEN}'}}
",
    );
    let (ok, stdout, stderr) = check(&path, &[("VENDOR_TOKEN", "vendor-token-value")]);
    assert!(ok, "refused:\n{stderr}");
    let at = "warning: managed.policies[0].cli.managedMcpServers";
    for warning in [
        format!("{at}.vendor.headers: every member of this policy receives"),
        format!("{at}.aws.url: points at this gateway's /mcp, but aws_access.mcp is not set"),
        format!("{at}.aws.url: points at this gateway's /mcp, but listen.public_url (http://127.0.0.1:8787) is not https"),
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&warning)),
            "expected {warning:?} in:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("vendor-token-value"),
        "a warning repeated a header value"
    );
}
