//! A profile the deployer accepts is one CloudFormation accepts: every parameter value it gives a
//! stack satisfies the constraints the template declares (allowed values, patterns, ranges,
//! lengths). The values tried are derived from the templates themselves, around each limit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use deployer::constraints::{self, Constraint};
use deployer::params::{self, Inputs, Outputs};
use deployer::profile::{self, Profile};
use deployer::render::{self, IdentityFacts};
use deployer::stacks::{self, StackKind};

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

/// The shipped profiles, plus one with its own certificate in an existing VPC.
fn bases() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [
        "managed-newcognito-collector-vpn",
        "managed-newcognito-notelemetry",
        "managed-existingcognito-byotelemetry",
        "byo-oidc-notelemetry",
        "byo-oidc-byotelemetry",
        "selfsigned-fallback",
    ]
    .iter()
    .map(|n| {
        let text = std::fs::read_to_string(config_dir().join(format!("{n}.env"))).unwrap();
        (n.to_string(), text)
    })
    .collect();
    let byo = with(
        &out[3].1,
        &[
            ("CERTIFICATE_MODE", "byo"),
            (
                "CERTIFICATE_ARN",
                "arn:aws:acm:us-east-1:111122223333:certificate/0f1e2d3c-aaaa-bbbb-cccc-0123456789ab",
            ),
            ("EXISTING_VPC_ID", "vpc-0a1b2c3d4e5f60718"),
            (
                "EXISTING_PRIVATE_SUBNET_IDS",
                "subnet-0a1b2c3d4e5f60718,subnet-0a1b2c3d4e5f60719",
            ),
            ("EXISTING_PRIVATE_SUBNET_CIDRS", "10.20.0.0/24,10.20.1.0/24"),
        ],
    );
    profile::from_text(&byo, "byo-existing-vpc").unwrap();
    out.push(("byo-existing-vpc".into(), byo));
    out
}

/// `base` with `set` replacing (or adding) keys; values are single-quoted, taken literally.
fn with(base: &str, set: &[(&str, &str)]) -> String {
    let mut text: String = base
        .lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or_default().trim();
            !set.iter().any(|(k, _)| *k == key)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    for (k, v) in set {
        assert!(!v.contains('\''));
        text.push_str(&format!("{k}='{v}'\n"));
    }
    text
}

/// Every parameter of every stack of `p`, as a plan computes them (outputs of stacks not deployed
/// yet are `<stack.Output>` placeholders, which are skipped).
fn all_parameters(p: &Profile) -> Vec<(StackKind, String, String)> {
    let facts = IdentityFacts::from_profile(p)
        .unwrap_or_else(|| IdentityFacts::cognito_placeholder(&p.region));
    let rendered = render::render(p, &facts).unwrap();
    let outputs = Outputs::new();
    let image_uri = match &p.image {
        profile::Image::Uri(u) => u.clone(),
        profile::Image::Build { repository } => {
            format!("111122223333.dkr.ecr.us-east-1.amazonaws.com/{repository}:src-0123")
        }
    };
    let inputs = Inputs {
        outputs: &outputs,
        planning: true,
        image_uri,
        config: &rendered,
        gateway_certificate_arn: None,
        vpn_certificate_arn: None,
    };
    let mut out = Vec::new();
    for kind in stacks::stacks_of(p) {
        for (k, v) in params::parameters(kind, p, &inputs).unwrap() {
            out.push((kind, k, v));
        }
    }
    out
}

fn constraint(kind: StackKind, p: &Profile, param: &str) -> &'static Constraint {
    let t = stacks::template(kind, p).unwrap();
    constraints::of(t.file, param).unwrap()
}

/// Values around the template's limits for a key whose planned value is `base`.
fn candidates(c: &Constraint, base: &str) -> BTreeSet<String> {
    let mut v: BTreeSet<String> = BTreeSet::new();
    v.extend(c.allowed_values.iter().cloned());
    for edge in [c.min_value, c.max_value].into_iter().flatten() {
        let n = edge as i64;
        v.extend([n - 1, n, n + 1].iter().map(ToString::to_string));
    }
    for n in [c.min_length, c.max_length].into_iter().flatten() {
        for len in [n.saturating_sub(1), n, n + 1] {
            v.insert("a".repeat(len));
        }
    }
    v.extend(
        [
            "0", "1", "3", "13", "99", "1.5", "x", "abc def", "db.t4g", "Z12", "z12",
        ]
        .map(str::to_owned),
    );
    if !base.is_empty() && !base.starts_with('<') {
        v.extend([
            base.to_owned(),
            base.to_uppercase(),
            format!("{base}-"),
            format!("-{base}"),
            format!("{base} x"),
            format!("{base}.123"),
            format!("{base}_x"),
            format!("{}.{base}", "a".repeat(64)),
            base.repeat(300 / base.len() + 1),
        ]);
    }
    v.remove("");
    v.into_iter().filter(|s| !s.contains('\'')).collect()
}

#[test]
fn every_profile_the_deployer_accepts_satisfies_every_template_constraint() {
    let (mut tried, mut accepted, mut refused) = (0, 0, 0);
    let mut keys_walked = BTreeSet::new();
    for (name, text) in bases() {
        let base = profile::from_text(&text, &name).unwrap();
        for (kind, param, value) in all_parameters(&base) {
            let Some(key) = params::profile_key(kind, &param, &base) else {
                continue;
            };
            keys_walked.insert(key);
            let c = constraint(kind, &base, &param);
            for candidate in candidates(c, &value) {
                tried += 1;
                let edited = with(&text, &[(key, &candidate)]);
                let Ok(p) = profile::from_text(&edited, "edited") else {
                    refused += 1;
                    continue;
                };
                accepted += 1;
                let planned = all_parameters(&p);
                for kind in stacks::stacks_of(&p) {
                    let file = stacks::template(kind, &p).unwrap().file;
                    let values: Vec<(String, String)> = planned
                        .iter()
                        .filter(|(k, _, _)| *k == kind)
                        .map(|(_, n, v)| (n.clone(), v.clone()))
                        .collect();
                    let broken = constraints::broken_rules(file, &values).unwrap();
                    assert!(
                        broken.is_empty(),
                        "{name} with {key}={candidate:?} is accepted, but {file} rule {} fails: {}",
                        broken[0].rule,
                        broken[0].description
                    );
                }
                for (k2, p2, v2) in planned {
                    if v2.starts_with('<') && v2.ends_with('>') {
                        continue;
                    }
                    let c2 = constraint(k2, &p, &p2);
                    assert!(
                        c2.accepts(&v2),
                        "{name} with {key}={candidate:?} is accepted, but {} {p2} refuses {v2:?}: must be {}",
                        c2.file,
                        c2.expectation()
                    );
                }
            }
        }
    }
    println!(
        "{tried} values of {} keys: {accepted} accepted, {refused} refused",
        keys_walked.len()
    );
    // The walk reaches the keys that feed templates, and both sides of their limits.
    for key in [
        "TASK_CPU",
        "TASK_MEMORY",
        "MIN_TASKS",
        "MAX_TASKS",
        "SUBNET_CIDR_BITS",
        "NAT_GATEWAYS",
        "DB_INSTANCE_CLASS",
        "LOG_RETENTION_DAYS",
        "GATEWAY_HOSTNAME",
        "HOSTED_ZONE_ID",
        "COGNITO_DOMAIN_PREFIX",
        "COGNITO_USER_POOL_ID",
        "OIDC_CLIENT_SECRET_ARN",
        "CERTIFICATE_ARN",
        "VPN_CLIENT_CIDR",
        "ALARM_EMAIL",
    ] {
        assert!(
            keys_walked.contains(key),
            "{key} not walked: {keys_walked:?}"
        );
    }
    assert!(accepted > 200 && refused > 200, "{accepted} / {refused}");
}

fn refused(base: &str, set: &[(&str, &str)]) -> String {
    let text = bases().into_iter().find(|(n, _)| n == base).unwrap().1;
    match profile::from_text(&with(&text, set), "edited") {
        Ok(_) => panic!("accepted: {set:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
    }
}

/// A base profile, the keys changed, and what the refusal must say.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn values_the_templates_refuse_are_refused_naming_the_key() {
    let flagship = "managed-newcognito-collector-vpn";
    let cases: &[Case] = &[
        (flagship, &[("TASK_CPU", "384")], "TASK_CPU: \"384\" is not one of 256, 512, 1024, 2048, 4096 (gateway.yaml TaskCpu)"),
        (flagship, &[("TASK_CPU", "8192"), ("TASK_MEMORY", "16384")], "TASK_CPU: \"8192\" is not one of"),
        (flagship, &[("TASK_MEMORY", "5120")], "TASK_MEMORY: \"5120\" is not one of 512, 1024, 2048, 3072, 4096, 8192"),
        (flagship, &[("MIN_TASKS", "51"), ("MAX_TASKS", "60")], "MIN_TASKS: \"51\" is not a whole number from 2 to 50 (gateway.yaml MinTasks)"),
        (flagship, &[("MAX_TASKS", "201")], "MAX_TASKS: \"201\" is not a whole number from 2 to 200"),
        (flagship, &[("STREAM_DRAIN_SECONDS", "25")], "STREAM_DRAIN_SECONDS: \"25\" is not a whole number from 30 to 3600 (gateway.yaml StreamDrainSeconds)"),
        (flagship, &[("SUBNET_CIDR_BITS", "13")], "SUBNET_CIDR_BITS: \"13\" is not a whole number from 5 to 12"),
        (flagship, &[("LOG_RETENTION_DAYS", "10")], "LOG_RETENTION_DAYS: \"10\" is not one of 7, 14, 30"),
        (flagship, &[("DB_INSTANCE_CLASS", "db.t4g")], "DB_INSTANCE_CLASS: \"db.t4g\" is not a value matching"),
        (flagship, &[("DB_INSTANCE_CLASS", "db.T4G.micro")], "DB_INSTANCE_CLASS:"),
        (flagship, &[("GATEWAY_HOSTNAME", "claude.corp.example.c0m")], "GATEWAY_HOSTNAME: \"claude.corp.example.c0m\" is not a lower-case DNS name"),
        (flagship, &[("HOSTED_ZONE_ID", "z0123abc")], "HOSTED_ZONE_ID: \"z0123abc\" is not"),
        (flagship, &[("ADMIN_GROUP", "gateway admins")], "ADMIN_GROUP: \"gateway admins\" is not"),
        (flagship, &[("COGNITO_ADMIN_EMAIL", "admin@localhost")], "COGNITO_ADMIN_EMAIL:"),
        (flagship, &[("ALARM_EMAIL", "ops@localhost")], "ALARM_EMAIL: \"ops@localhost\" is not"),
        (flagship, &[("COLLECTOR_HOSTNAME", "otel.corp.example.123")], "COLLECTOR_HOSTNAME:"),
        ("managed-existingcognito-byotelemetry", &[("COGNITO_USER_POOL_ID", "us-east-1_Ab.Cd")], "COGNITO_USER_POOL_ID:"),
        ("byo-oidc-notelemetry", &[("OIDC_CLIENT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1111:secret:x")], "OIDC_CLIENT_SECRET_ARN: \"arn:aws:secretsmanager:us-east-1:1111:secret:x\" is not a full Secrets Manager secret ARN"),
        ("byo-existing-vpc", &[("CERTIFICATE_ARN", "arn:aws:acm:us-east-1:111122223333:cert/abc")], "CERTIFICATE_ARN:"),
        ("byo-oidc-notelemetry", &[("GATEWAY_IMAGE", "Registry.example.com/claude-gateway:1")], "GATEWAY_IMAGE: \"Registry.example.com/claude-gateway:1\" is not an image reference"),
    ];
    for (base, set, want) in cases {
        let msg = refused(base, set);
        assert!(msg.contains(want), "{set:?}: expected {want:?} in:\n{msg}");
    }
}

#[test]
fn task_cpu_and_memory_must_be_a_pair_fargate_runs() {
    // Fargate's Linux sizes among the values the gateway template offers.
    let fargate: BTreeSet<(u32, u32)> = [
        (256, 512),
        (256, 1024),
        (256, 2048),
        (512, 1024),
        (512, 2048),
        (512, 3072),
        (512, 4096),
        (1024, 2048),
        (1024, 3072),
        (1024, 4096),
        (1024, 8192),
        (2048, 4096),
        (2048, 8192),
        (4096, 8192),
    ]
    .into();
    let text = bases().remove(0).1;
    let cpus = &constraints::of("gateway.yaml", "TaskCpu")
        .unwrap()
        .allowed_values;
    let mems = &constraints::of("gateway.yaml", "TaskMemory")
        .unwrap()
        .allowed_values;
    let mut accepted = BTreeSet::new();
    for cpu in cpus {
        for mem in mems {
            match profile::from_text(
                &with(&text, &[("TASK_CPU", cpu), ("TASK_MEMORY", mem)]),
                "t",
            ) {
                Ok(p) => {
                    accepted.insert((p.task_cpu, p.task_memory));
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        e.contains(&format!("TASK_MEMORY: {mem} MiB is not a Fargate size for TASK_CPU={cpu}; with {cpu} CPU units use one of")),
                        "{e}"
                    );
                }
            }
        }
    }
    assert_eq!(accepted, fargate);
    // The gateway template's own rule says the same.
    let mut by_rule = BTreeSet::new();
    for cpu in cpus {
        for mem in mems {
            let values = [
                ("TaskCpu".to_owned(), cpu.clone()),
                ("TaskMemory".to_owned(), mem.clone()),
            ];
            let broken = constraints::broken_rules("gateway.yaml", &values).unwrap();
            if !broken.iter().any(|a| a.rule == "TaskSizeIsAFargateSize") {
                by_rule.insert((cpu.parse().unwrap(), mem.parse().unwrap()));
            }
        }
    }
    assert_eq!(by_rule, fargate);
    let msg = refused(
        "managed-newcognito-collector-vpn",
        &[("TASK_CPU", "1024"), ("TASK_MEMORY", "1024")],
    );
    assert!(
        msg.contains("with 1024 CPU units use one of 2048, 3072, 4096, 8192"),
        "{msg}"
    );
}
