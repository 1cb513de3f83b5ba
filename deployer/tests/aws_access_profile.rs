//! `AWS_ACCESS_CONFIG`: a profile naming a file with the gateway's `aws_access` section renders a
//! gateway.yaml whose section the gateway accepts, derives the project roles the task role may
//! assume (or checks them against `AWS_ACCESS_ROLE_ARNS`), and refuses a bad file naming the key
//! and the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::{Path, PathBuf};

use deployer::params::{self, Inputs, Outputs};
use deployer::profile::{self, Profile};
use deployer::render::{self, IdentityFacts, CHANNEL_BYTES};
use deployer::stacks::StackKind;

const PAYMENTS: &str = "arn:aws:iam::444455556666:role/payments-agent-access-ProjectRole-AbC123";
const STAGING: &str =
    "arn:aws:iam::777788889999:role/payments-staging-agent-access-ProjectRole-DeF456";

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn example() -> String {
    std::fs::read_to_string(config_dir().join("aws-access.example.yaml")).unwrap()
}

fn facts(p: &Profile) -> IdentityFacts {
    IdentityFacts::from_profile(p).unwrap_or_else(|| IdentityFacts::cognito_placeholder(&p.region))
}

/// A shipped profile with `extra` lines appended, read as if it lived in `dir`.
fn profile_in(dir: &Path, extra: &str) -> deployer::error::Result<Profile> {
    let base =
        std::fs::read_to_string(config_dir().join("managed-newcognito-collector-vpn.env")).unwrap();
    let source = dir.join("profile.env");
    profile::from_text(&format!("{base}\n{extra}\n"), source.to_str().unwrap())
}

/// A profile naming `yaml`, written to a file of its own in a fresh folder.
fn with_file(yaml: &[u8], extra: &str) -> (tempfile::TempDir, deployer::error::Result<Profile>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("access.yaml"), yaml).unwrap();
    let p = profile_in(
        dir.path(),
        &format!("AWS_ACCESS_CONFIG=access.yaml\n{extra}"),
    );
    (dir, p)
}

fn refused(yaml: &[u8], extra: &str) -> String {
    let (dir, p) = with_file(yaml, extra);
    let err = p.map(|_| ()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    let file = dir.path().join("access.yaml");
    assert!(
        msg.contains(&format!(
            "AWS_ACCESS_CONFIG: cannot read {}",
            file.display()
        )) || msg.contains(&format!("AWS_ACCESS_CONFIG: {}", file.display())),
        "the message names the key and the file:\n{msg}"
    );
    msg
}

fn gateway_param(p: &Profile, r: &render::Rendered, name: &str) -> String {
    let outputs = Outputs::new();
    let inputs = Inputs {
        outputs: &outputs,
        planning: true,
        image_uri: "111122223333.dkr.ecr.us-east-1.amazonaws.com/claude-gateway:src-x".into(),
        config: r,
        gateway_certificate_arn: None,
        vpn_certificate_arn: None,
    };
    params::parameters(StackKind::Gateway, p, &inputs)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap()
}

#[test]
fn the_example_file_renders_a_section_the_gateway_accepts_and_derives_the_roles() {
    // Relative to the profile's folder, not the working directory.
    let (_dir, p) = with_file(example().as_bytes(), "");
    let p = p.unwrap();
    assert_eq!(p.aws_access_role_arns, [PAYMENTS, STAGING]);
    let r = render::render(&p, &facts(&p)).unwrap();
    render::check(&r.text).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&r.text).unwrap();
    let section = &cfg["aws_access"];
    assert_eq!(section["projects"][0]["name"], "payments");
    assert_eq!(section["projects"][0]["environment"], "prod");
    assert_eq!(section["projects"][1]["write_approval"], "auto");
    assert_eq!(section["members"].as_array().unwrap().len(), 3);
    assert_eq!(section["members"][0]["until"], "2027-06-30T00:00:00Z");
    assert!(section.get("webhook_url").is_none());
    assert_eq!(
        gateway_param(&p, &r, "AwsAccessRoleArns"),
        format!("{PAYMENTS},{STAGING}")
    );

    // An absolute path works from anywhere; without the key there is no section and no role.
    let abs = config_dir().join("aws-access.example.yaml");
    let elsewhere = tempfile::tempdir().unwrap();
    let p = profile_in(
        elsewhere.path(),
        &format!("AWS_ACCESS_CONFIG={}", abs.display()),
    )
    .unwrap();
    assert_eq!(p.aws_access_role_arns, [PAYMENTS, STAGING]);
    let p = profile_in(elsewhere.path(), "").unwrap();
    assert!(p.aws_access.is_none() && p.aws_access_role_arns.is_empty());
    let r = render::render(&p, &facts(&p)).unwrap();
    assert!(!r.text.contains("aws_access"));
}

#[test]
fn listed_roles_must_hold_every_project_role() {
    let (_d, p) = with_file(
        example().as_bytes(),
        &format!("AWS_ACCESS_ROLE_ARNS={STAGING},{PAYMENTS}"),
    );
    // The listed order is kept: the list is the operator's.
    assert_eq!(p.unwrap().aws_access_role_arns, [STAGING, PAYMENTS]);
    let msg = refused(
        example().as_bytes(),
        &format!("AWS_ACCESS_ROLE_ARNS={PAYMENTS}"),
    );
    assert!(
        msg.contains(&format!(
            "project payments-staging's role_arn {STAGING:?} is not in AWS_ACCESS_ROLE_ARNS"
        )),
        "{msg}"
    );
    assert!(!msg.contains("project payments's"), "{msg}");
}

#[test]
fn bad_files_are_refused_naming_the_key_and_the_file() {
    let ex = example();
    let indented: String = ex.lines().map(|l| format!("  {l}\n")).collect::<String>();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![b'#'; 64 * 1024 + 1], "larger than 65536 bytes"),
        (vec![0xff, 0xfe, b'a'], "not UTF-8"),
        (
            b"projects: [unclosed\n".to_vec(),
            "is not a valid aws_access section",
        ),
        (
            format!("aws_access:\n{indented}").into_bytes(),
            "without an `aws_access:` line above them",
        ),
        (
            ex.replace("mfa_max_age_seconds: 900", "mfa_max_age: 900")
                .into_bytes(),
            "unknown field `mfa_max_age`",
        ),
        (
            ex.replace("environment: nonprod", "environment: prod")
                .into_bytes(),
            "aws_access.projects[1].write_approval: auto is for nonprod projects only",
        ),
        (
            ex.replace("project: payments-staging,", "project: billing,")
                .into_bytes(),
            "aws_access.members[2].project: \"billing\" is no project",
        ),
        (
            ex.replace("role/payments-agent", "user/payments-agent")
                .into_bytes(),
            "aws_access.projects[0].role_arn: must be an IAM role ARN",
        ),
        (
            format!("{ex}webhook_url: https://hooks.slack.com/services/T0/B0/s3cr3t\n")
                .into_bytes(),
            "webhook_url must be the reference ${AWS_ACCESS_WEBHOOK_URL}, never the URL itself",
        ),
        (
            format!(
                "{ex}webhook_url: https://hooks.slack.com/s3cr3t/${{AWS_ACCESS_WEBHOOK_URL}}\n"
            )
            .into_bytes(),
            "webhook_url must be the reference",
        ),
        (
            format!("{ex}webhook_url: ${{AWS_ACCESS_WEBHOOK_URL}}\n").into_bytes(),
            "but AWS_ACCESS_WEBHOOK_SECRET_ARN names no secret to fill it from",
        ),
    ];
    for (yaml, want) in cases {
        let msg = refused(&yaml, "");
        assert!(msg.contains(want), "expected {want:?} in:\n{msg}");
        assert!(
            !msg.contains("s3cr3t"),
            "a webhook URL is never repeated: {msg}"
        );
    }
    // A missing file, and a folder or a device in its place.
    let dir = tempfile::tempdir().unwrap();
    for (value, want) in [
        (dir.path().to_str().unwrap(), "it is not a regular file"),
        ("/dev/zero", "it is not a regular file"),
    ] {
        let msg = profile_in(dir.path(), &format!("AWS_ACCESS_CONFIG={value}"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("AWS_ACCESS_CONFIG: cannot read {value}: {want}")),
            "{msg}"
        );
    }
    let msg = profile_in(dir.path(), "AWS_ACCESS_CONFIG=nowhere.yaml")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    let missing = dir.path().join("nowhere.yaml");
    assert!(
        msg.contains(&format!(
            "AWS_ACCESS_CONFIG: cannot read {}",
            missing.display()
        )),
        "{msg}"
    );
}

#[test]
fn the_gateway_validator_s_findings_in_the_section_name_the_file() {
    let (dir, p) = with_file(example().as_bytes(), "");
    let mut p = p.unwrap();
    // Past the profile's own check (as a gateway rule newer than it would be): the whole-config
    // validation still refuses it and says where the section came from.
    p.aws_access.as_mut().unwrap().section.projects[0].name = "Payments".into();
    let err = render::render(&p, &facts(&p)).unwrap_err();
    assert!(err.contains("aws_access.projects[0].name"), "{err}");
    assert!(
        err.contains(&format!(
            "the aws_access section comes from AWS_ACCESS_CONFIG {}",
            dir.path().join("access.yaml").display()
        )),
        "{err}"
    );
}

#[test]
fn a_section_over_the_channel_budget_is_refused_naming_the_file() {
    // Forty projects sharing one role: a file the gateway accepts, well under the file's bound,
    // but over what the stack parameters carry.
    let projects: String = (0..40)
        .map(|i| {
            format!(
                "  - name: project-{i:02}\n    role_arn: {PAYMENTS}\n    regions: [eu-west-1, eu-central-1]\n    tag: {{key: project, value: project-{i:02}}}\n    environment: nonprod\n    read: [logs:FilterLogEvents, logs:GetLogEvents, logs:DescribeLogGroups, s3:GetObject, s3:ListBucket, cloudwatch:GetMetricData]\n    write: [s3:PutObject, ecs:UpdateService]\n    write_approval: auto\n"
            )
        })
        .collect();
    let yaml = format!("projects:\n{projects}");
    assert!(yaml.len() > CHANNEL_BYTES && yaml.len() < 64 * 1024);
    let (dir, p) = with_file(yaml.as_bytes(), "");
    let p = p.unwrap();
    assert_eq!(p.aws_access_role_arns, [PAYMENTS], "one role, listed once");
    let err = render::render(&p, &facts(&p)).unwrap_err();
    assert!(
        err.contains(&format!("over the {CHANNEL_BYTES}-byte budget")),
        "{err}"
    );
    assert!(
        err.contains(&dir.path().join("access.yaml").display().to_string()),
        "{err}"
    );
}

const WEBHOOK_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:111122223333:secret:claude-gateway-aws-access-webhook-AbCdEf";

#[test]
fn a_webhook_url_reaches_the_tasks_as_a_secret_never_in_the_parameters() {
    let yaml = format!("{}webhook_url: ${{AWS_ACCESS_WEBHOOK_URL}}\n", example());
    let (_d, p) = with_file(
        yaml.as_bytes(),
        &format!("AWS_ACCESS_WEBHOOK_SECRET_ARN={WEBHOOK_SECRET}"),
    );
    let p = p.unwrap();
    let r = render::render(&p, &facts(&p)).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(
        cfg["aws_access"]["webhook_url"],
        "${AWS_ACCESS_WEBHOOK_URL}"
    );
    assert_eq!(
        gateway_param(&p, &r, "AwsAccessWebhookSecretArn"),
        WEBHOOK_SECRET
    );
    // The gateway stack hands the secret to the tasks under the name the reference uses.
    let template = std::fs::read_to_string(config_dir().join("../cfn/gateway.yaml")).unwrap();
    assert!(
        template.contains(
            "- Name: AWS_ACCESS_WEBHOOK_URL\n                ValueFrom: !Ref AwsAccessWebhookSecretArn"
        ),
        "cfn/gateway.yaml passes the secret as AWS_ACCESS_WEBHOOK_URL"
    );

    // Without a webhook, the parameter is empty.
    let (_d, p) = with_file(example().as_bytes(), "");
    let p = p.unwrap();
    let r = render::render(&p, &facts(&p)).unwrap();
    assert_eq!(gateway_param(&p, &r, "AwsAccessWebhookSecretArn"), "");

    // The secret without a file, or with a file that does not use it, or not a secret ARN.
    let dir = tempfile::tempdir().unwrap();
    let msg = profile_in(
        dir.path(),
        &format!("AWS_ACCESS_WEBHOOK_SECRET_ARN={WEBHOOK_SECRET}"),
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("AWS_ACCESS_WEBHOOK_SECRET_ARN: set, but AWS_ACCESS_CONFIG is not"),
        "{msg}"
    );
    let (_d, p) = with_file(
        example().as_bytes(),
        &format!("AWS_ACCESS_WEBHOOK_SECRET_ARN={WEBHOOK_SECRET}"),
    );
    let msg = p.map(|_| ()).unwrap_err().to_string();
    assert!(
        msg.contains("AWS_ACCESS_WEBHOOK_SECRET_ARN: set, but")
            && msg.contains("has no `webhook_url: ${AWS_ACCESS_WEBHOOK_URL}`"),
        "{msg}"
    );
    let (_d, p) = with_file(
        yaml.as_bytes(),
        "AWS_ACCESS_WEBHOOK_SECRET_ARN=https://hooks.slack.com/services/T0",
    );
    let msg = p.map(|_| ()).unwrap_err().to_string();
    assert!(
        msg.contains("AWS_ACCESS_WEBHOOK_SECRET_ARN:")
            && msg.contains("is not a Secrets Manager secret ARN"),
        "{msg}"
    );
}
