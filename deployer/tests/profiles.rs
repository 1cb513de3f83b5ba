//! Every shipped profile parses, renders a config the gateway's own validator accepts, and fits
//! the channel with room to spare; bad profiles are refused with the key named.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::{Path, PathBuf};

use deployer::params::{self, Inputs, Outputs};
use deployer::plan::Plan;
use deployer::profile::{self, Profile};
use deployer::render::{self, IdentityFacts, CHANNEL_BYTES, PART_BYTES};
use deployer::stacks::{self, StackKind};

const SHIPPED: [&str; 6] = [
    "managed-newcognito-collector-vpn",
    "managed-newcognito-notelemetry",
    "managed-existingcognito-byotelemetry",
    "byo-oidc-notelemetry",
    "byo-oidc-byotelemetry",
    "selfsigned-fallback",
];

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn shipped(name: &str) -> Profile {
    profile::load(&config_dir().join(format!("{name}.env"))).unwrap()
}

fn facts(p: &Profile) -> IdentityFacts {
    IdentityFacts::from_profile(p).unwrap_or_else(|| IdentityFacts::cognito_placeholder(&p.region))
}

#[test]
fn every_shipped_profile_is_listed_and_documented() {
    let mut on_disk: Vec<String> = std::fs::read_dir(config_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".env").map(str::to_owned))
        .collect();
    on_disk.sort();
    let mut want: Vec<String> = SHIPPED.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(on_disk, want);
    for name in SHIPPED {
        let text = std::fs::read_to_string(config_dir().join(format!("{name}.env"))).unwrap();
        assert!(
            text.starts_with(&format!("# Profile: {name}\n")),
            "{name} must open with its documentation"
        );
    }
}

#[test]
fn every_shipped_profile_renders_a_valid_config_within_budget() {
    for name in SHIPPED {
        let p = shipped(name);
        let r = render::render(&p, &facts(&p)).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Rendered text must be what the gateway itself accepts, byte for byte.
        render::check(&r.text).unwrap();
        assert_eq!(r.parts.concat(), r.text);
        assert!(r.parts.iter().all(|part| part.len() <= PART_BYTES));
        // Ample headroom: the largest shipped profile uses well under half the channel.
        assert!(r.bytes() * 2 < CHANNEL_BYTES, "{name}: {}", r.budget_line());
        assert!(!r.text.contains('\n'), "compact JSON has no newlines");
        for secret in [
            "${GATEWAY_JWT_SECRET}",
            "${GATEWAY_JWT_SECRET_PREVIOUS}",
            "${OIDC_CLIENT_SECRET}",
        ] {
            assert!(r.text.contains(secret), "{name}: secrets stay references");
        }
        assert!(!r.text.contains("postgres_url"));
        println!("{name}: {}", r.budget_line());
    }
}

#[test]
fn rendered_config_carries_the_profile() {
    let p = shipped("managed-newcognito-collector-vpn");
    let cfg = render::build(&p, &facts(&p)).unwrap();
    assert_eq!(
        cfg.listen.public_url.as_deref(),
        Some("https://claude.corp.example.com")
    );
    // Only the load balancer's own subnets (the fifth and sixth /20): the Client VPN attaches to
    // the private subnets (10.20.32.0/20, 10.20.48.0/20), whose addresses must not be able to
    // set a client address through X-Forwarded-For.
    assert_eq!(
        cfg.listen.trusted_proxies,
        vec!["10.20.64.0/20", "10.20.80.0/20"]
    );
    assert!(p.vpn.is_some());
    let oidc = cfg.oidc.as_ref().unwrap();
    assert_eq!(oidc.groups_claim, "cognito:groups");
    assert!(
        !oidc.scopes.iter().any(|s| s == "offline_access"),
        "Cognito refuses offline_access"
    );
    assert_eq!(
        oidc.allowed_email_domains.as_deref(),
        Some(&["corp.example.com".to_owned()][..])
    );
    let t = cfg.telemetry.as_ref().unwrap();
    assert_eq!(t.forward_to[0].url, "https://otel.claude.corp.example.com");
    assert!(t.forward_to[0].logs);
    let admin = cfg.admin.as_ref().unwrap();
    assert_eq!(
        admin.write_keys[0].key.expose(),
        "${GATEWAY_ADMIN_WRITE_KEY}"
    );
    assert_eq!(admin.admin_groups, vec!["gateway-admins"]);
    let managed = cfg.managed.as_ref().unwrap();
    assert_eq!(managed.policies.len(), 3);
    let contractors = &managed.policies[1];
    assert_eq!(
        contractors.matcher.groups.as_deref(),
        Some(&["contractors".to_owned()][..])
    );
    let cli = contractors.cli.as_ref().unwrap();
    assert_eq!(cli["availableModels"], serde_json::json!(["haiku"]));
    assert_eq!(
        cli["model"], "haiku",
        "a list without Opus names the starting model"
    );
    assert_eq!(
        cli["permissions"]["deny"],
        serde_json::json!(["WebFetch", "WebSearch"])
    );
    assert!(managed.enforce_tool_denials);
    assert!(
        managed.policies[2].matcher.groups.is_none(),
        "the base policy matches everyone, last"
    );
    assert_eq!(cfg.upstreams[0].region.as_deref(), Some("us-east-1"));
}

#[test]
fn bring_your_own_telemetry_reaches_the_config() {
    for name in [
        "managed-existingcognito-byotelemetry",
        "byo-oidc-byotelemetry",
    ] {
        let p = shipped(name);
        let cfg = render::build(&p, &facts(&p)).unwrap();
        let t = cfg.telemetry.expect("telemetry is on");
        assert_eq!(
            t.forward_to[0].url, "https://otel.observability.corp.example.com",
            "{name}"
        );
        assert_eq!(t.export.as_ref().unwrap().endpoint, t.forward_to[0].url);
        assert!(!Plan::from_profile(p, None)
            .stacks
            .contains(&StackKind::Collector));
    }
    let p = shipped("byo-oidc-notelemetry");
    assert!(render::build(&p, &facts(&p)).unwrap().telemetry.is_none());
}

#[test]
fn every_shipped_profile_has_parameters_for_each_of_its_stacks() {
    for name in SHIPPED {
        let p = shipped(name);
        let plan = Plan::from_profile(p.clone(), None);
        let r = render::render(&p, &facts(&p)).unwrap();
        let outputs = Outputs::new();
        let inputs = Inputs {
            outputs: &outputs,
            planning: true,
            image_uri: "111122223333.dkr.ecr.us-east-1.amazonaws.com/claude-gateway:src-x".into(),
            config: &r,
            gateway_certificate_arn: None,
            vpn_certificate_arn: None,
        };
        assert!(
            plan.stacks.contains(&StackKind::Gateway)
                && plan.stacks.contains(&StackKind::Observability)
        );
        for kind in &plan.stacks {
            let values = params::parameters(*kind, &p, &inputs).unwrap();
            assert!(
                values.iter().all(|(_, v)| v.len() <= PART_BYTES),
                "{name} {kind}"
            );
            let t = stacks::template(*kind, &p).unwrap();
            for (k, _) in &values {
                assert!(
                    t.body.contains(&format!("\n  {k}:")),
                    "{name}: {} has no parameter {k}",
                    t.file
                );
            }
        }
    }
}

#[test]
fn a_large_profile_still_fits() {
    let mut text = std::fs::read_to_string(config_dir().join("byo-oidc-byotelemetry.env")).unwrap();
    let groups: Vec<String> = (0..20)
        .map(|i| format!("team-{i:02}-platform-engineering=opus,sonnet,haiku,claude-sonnet-4-5"))
        .collect();
    let denials: Vec<String> = (0..20)
        .map(|i| format!("team-{i:02}-platform-engineering=WebFetch,WebSearch,Bash"))
        .collect();
    text = text
        .lines()
        .filter(|l| !l.starts_with("GROUP_MODELS=") && !l.starts_with("GROUP_DENY_TOOLS="))
        .collect::<Vec<_>>()
        .join("\n");
    text.push_str(&format!(
        "\nGROUP_MODELS=\"{}\"\nGROUP_DENY_TOOLS=\"{}\"\n",
        groups.join(";"),
        denials.join(";")
    ));
    let p = profile::from_text(&text, "large").unwrap();
    let r = render::render(&p, &facts(&p)).unwrap();
    assert!(r.bytes() < CHANNEL_BYTES, "{}", r.budget_line());
    assert!(
        !r.parts[1].is_empty(),
        "a config this large spans parameters"
    );
    println!("20 group policies: {}", r.budget_line());
}

fn refused(edit: &str) -> String {
    let base =
        std::fs::read_to_string(config_dir().join("managed-newcognito-collector-vpn.env")).unwrap();
    let mut text = String::new();
    let overrides: Vec<(&str, &str)> = edit.lines().filter_map(|l| l.split_once('=')).collect();
    for line in base.lines() {
        let key = line.split('=').next().unwrap_or_default();
        if !overrides.iter().any(|(k, _)| *k == key) {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(edit);
    text.push('\n');
    match profile::from_text(&text, "edited") {
        Ok(_) => panic!("accepted: {edit}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
    }
}

#[test]
fn bad_profiles_name_the_key() {
    let cases = [
        (
            "GATEWAY_HOSTNAM=x.example.com",
            "GATEWAY_HOSTNAM: unknown key",
        ),
        (
            "GATEWAY_HOSTNAM=x.example.com",
            "did you mean GATEWAY_HOSTNAME?",
        ),
        (
            "OIDC_ISSUER=https://idp.example.com",
            "OIDC_ISSUER: set on line",
        ),
        ("IDP_MODE=okta", "IDP_MODE: is \"okta\"; must be one of"),
        (
            "VPN_CLIENT_CIDR=10.20.4.0/22",
            "VPN_CLIENT_CIDR: 10.20.4.0/22 overlaps VPC_CIDR 10.20.0.0/16",
        ),
        (
            "VPN_CLIENT_CIDR=10.30.0.0/24",
            "VPN_CLIENT_CIDR: 10.30.0.0/24 must be between /12 and /22",
        ),
        (
            "EXISTING_VPC_ID=vpc-0123\nEXISTING_PRIVATE_SUBNET_IDS=subnet-a1,subnet-b1\nEXISTING_PRIVATE_SUBNET_CIDRS=10.20.0.0/24,10.20.1.0/24",
            "VPN: the bundled Client VPN attaches to EXISTING_PRIVATE_SUBNET_IDS",
        ),
        (
            "SUBNET_CIDR_BITS=4",
            "SUBNET_CIDR_BITS: \"4\" is not a whole number from 5",
        ),
        (
            "VPC_CIDR=10.20.0.0/24\nSUBNET_CIDR_BITS=6",
            "SUBNET_CIDR_BITS: six subnets",
        ),
        (
            "VPC_CIDR=10.20.0.1/16",
            "VPC_CIDR: \"10.20.0.1/16\" has host bits set",
        ),
        (
            "HOSTED_ZONE_ID=",
            "HOSTED_ZONE_ID: required with CERTIFICATE_MODE=managed",
        ),
        (
            "CERTIFICATE_MODE=self-signed",
            "TELEMETRY: collector needs a certificate",
        ),
        (
            "DEFAULT_MODELS=gpt-4",
            "DEFAULT_MODELS: \"gpt-4\" is not a known model",
        ),
        (
            "GROUP_MODELS=contractors",
            "GROUP_MODELS: \"contractors\" must be group=item,item",
        ),
        (
            "MIN_TASKS=1",
            "MIN_TASKS: \"1\" is not a whole number from 2",
        ),
        (
            "MAX_TASKS=2\nMIN_TASKS=3",
            "MAX_TASKS: 2 is below MIN_TASKS (3)",
        ),
        (
            "TELEMETRY=external",
            "TELEMETRY_ENDPOINT: required with TELEMETRY=external",
        ),
        (
            "EXISTING_VPC_ID=vpc-123",
            "EXISTING_PRIVATE_SUBNET_IDS: required with EXISTING_VPC_ID",
        ),
        (
            "COGNITO_DOMAIN_PREFIX=my-cognito",
            "COGNITO_DOMAIN_PREFIX: \"my-cognito\" must be",
        ),
        (
            "RATE_LIMIT_DEVICE_VERIFY=ten",
            "RATE_LIMIT_DEVICE_VERIFY: \"ten\" must be max/window-seconds",
        ),
        (
            "DEPLOYMENT_NAME=Claude_GW",
            "DEPLOYMENT_NAME: \"Claude_GW\" must be",
        ),
        ("ALLOWED_EMAIL_DOMAINS=", "ALLOWED_EMAIL_DOMAINS: required"),
        ("ADMIN_API=false", "SPEND_BLOCKED_MESSAGE: set on line"),
        ("VPN=false", "VPN_CLIENT_CIDR: set on line"),
        (
            "CLIENT_CIDRS=10.30.0.0/16",
            "VPN_CLIENT_CIDR: 10.30.0.0/22 overlaps CLIENT_CIDRS entry 10.30.0.0/16",
        ),
        (
            "AWS_ACCESS_ROLE_ARNS=arn:aws:iam::1234:role/payments",
            "AWS_ACCESS_ROLE_ARNS: \"arn:aws:iam::1234:role/payments\" is not an IAM role ARN",
        ),
        (
            "AWS_ACCESS_ROLE_ARNS=arn:aws:iam::444455556666:user/payments",
            "is not an IAM role ARN",
        ),
        (
            "AWS_ACCESS_ROLE_ARNS=arn:aws:iam::444455556666:role/a,arn:aws:iam::444455556666:role/a",
            "AWS_ACCESS_ROLE_ARNS: \"arn:aws:iam::444455556666:role/a\" is listed twice",
        ),
    ];
    for (edit, want) in cases {
        let msg = refused(edit);
        assert!(msg.contains(want), "{edit}: expected {want:?} in:\n{msg}");
    }
}

#[test]
fn project_roles_reach_the_gateway_stack_and_none_by_default() {
    let base = std::fs::read_to_string(config_dir().join("byo-oidc-notelemetry.env")).unwrap();
    let roles = "arn:aws:iam::444455556666:role/payments-ProjectRole-AbC123,arn:aws-us-gov:iam::777788889999:role/team/staging";
    let gateway_param = |text: &str| {
        let p = profile::from_text(text, "t").unwrap();
        let r = render::render(&p, &facts(&p)).unwrap();
        let outputs = Outputs::new();
        let inputs = Inputs {
            outputs: &outputs,
            planning: true,
            image_uri: "111122223333.dkr.ecr.us-east-1.amazonaws.com/claude-gateway:src-x".into(),
            config: &r,
            gateway_certificate_arn: None,
            vpn_certificate_arn: None,
        };
        params::parameters(StackKind::Gateway, &p, &inputs)
            .unwrap()
            .into_iter()
            .find(|(k, _)| k == "AwsAccessRoleArns")
            .map(|(_, v)| v)
    };
    assert_eq!(gateway_param(&base).as_deref(), Some(""));
    assert_eq!(
        gateway_param(&format!("{base}\nAWS_ACCESS_ROLE_ARNS={roles}\n")).as_deref(),
        Some("arn:aws:iam::444455556666:role/payments-ProjectRole-AbC123,arn:aws-us-gov:iam::777788889999:role/team/staging")
    );
    let many: Vec<String> = (0..70)
        .map(|i| format!("arn:aws:iam::444455556666:role/project-{i:02}-ProjectRole-AbCdEf123456"))
        .collect();
    let err = profile::from_text(
        &format!("{base}\nAWS_ACCESS_ROLE_ARNS={}\n", many.join(",")),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("AWS_ACCESS_ROLE_ARNS:") && err.contains("at most 4096"),
        "{err}"
    );
}

#[test]
fn external_telemetry_must_be_a_bare_https_origin() {
    let base = std::fs::read_to_string(config_dir().join("byo-oidc-byotelemetry.env")).unwrap();
    for (bad, want) in [
        (
            "https://otel.example.com/v1/metrics",
            "must be a bare origin",
        ),
        ("http://otel.example.com", "must be an https:// origin"),
    ] {
        let text = base.replace("https://otel.observability.corp.example.com", bad);
        let err = profile::from_text(&text, "t").unwrap_err().to_string();
        assert!(
            err.contains("TELEMETRY_ENDPOINT") && err.contains(want),
            "{err}"
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let err = profile::from_text("AWS_REGION=nowhere\nIDP_MODE=oidc\nBOGUS=1\n", "t")
        .unwrap_err()
        .to_string();
    for key in [
        "AWS_REGION",
        "GATEWAY_HOSTNAME",
        "ALLOWED_EMAIL_DOMAINS",
        "BOGUS",
        "OIDC_ISSUER",
        "HOSTED_ZONE_ID",
    ] {
        assert!(err.contains(&format!("{key}:")), "{key} missing in:\n{err}");
    }
}
