//! The last check of a profile: every parameter it gives any of its stacks, computed as a
//! deployment computes it, must be one the stack's template accepts. Whatever comes from stacks
//! not deployed yet (VPC and subnet ids, secret and certificate ARNs) is stood in for by a value of
//! the right form, so only what the profile decides is judged; the template's `Rules` are
//! evaluated over the same values. A problem names the profile key the value comes from, so a profile the deployer accepts never fails CloudFormation's own
//! parameter validation half-way through a deployment.

use crate::constraints;
use crate::params::{self, Inputs, Outputs};
use crate::profile::model::{Image, Profile};
use crate::profile::reader::Reader;
use crate::render::Rendered;
use crate::stacks::{self, StackKind};

const ACCOUNT: &str = "123456789012";

/// Records, in `r`, each parameter value of `p` its template refuses; keys already reported are
/// left alone.
pub fn check(p: &Profile, r: &mut Reader) {
    let config = Rendered {
        text: "{}".to_owned(),
        sha256: String::new(),
        parts: ["{}".to_owned(), String::new(), String::new(), String::new()],
    };
    for (kind, template, values) in stand_in_parameters(p, &config) {
        let values = match values {
            Ok(v) => v,
            Err(e) => {
                r.err(&format!("{kind} stack"), e);
                continue;
            }
        };
        for (name, value) in &values {
            let problem = constraints::of(template.file, name).and_then(|c| c.check(value));
            if let Err(problem) = problem {
                report(r, p, kind, name, problem);
            }
        }
        match constraints::broken_rules(template.file, &values) {
            Ok(broken) => {
                for a in broken {
                    let reads = a.parameters();
                    let name = reads
                        .iter()
                        .find(|n| params::profile_key(kind, n, p).is_some())
                        .or(reads.first())
                        .cloned()
                        .unwrap_or_default();
                    let problem = format!("{} ({} rule {})", a.description, template.file, a.rule);
                    report(r, p, kind, &name, problem);
                }
            }
            Err(e) => r.err(&format!("{kind} stack"), e),
        }
    }
}

/// A stack, its template, and its parameters (or why they cannot be computed).
pub type StackParameters = (
    StackKind,
    stacks::Template,
    Result<Vec<(String, String)>, String>,
);

/// Every stack of `p` with its template and the parameters a deployment gives it (or why they
/// cannot be computed), with `config` as the rendered gateway config and values of the right form
/// standing in for what earlier stacks, the registry and ACM would give. What the linters check
/// each profile with (`deployer plan --parameters-json`).
pub fn stand_in_parameters(p: &Profile, config: &Rendered) -> Vec<StackParameters> {
    let outputs = stand_in_outputs(p);
    let image_uri = match &p.image {
        Image::Uri(u) => u.clone(),
        Image::Build { repository } => format!(
            "{ACCOUNT}.dkr.ecr.{}.amazonaws.com/{repository}:src-0123456789ab",
            p.region
        ),
    };
    let certificate = format!(
        "arn:aws:acm:{}:{ACCOUNT}:certificate/00000000-0000-4000-8000-000000000000",
        p.region
    );
    let inputs = Inputs {
        outputs: &outputs,
        planning: false,
        image_uri,
        config,
        gateway_certificate_arn: Some(certificate.clone()),
        vpn_certificate_arn: Some(certificate),
    };
    stacks::stacks_of(p)
        .into_iter()
        .filter_map(|kind| {
            let template = stacks::template(kind, p)?;
            let values = params::parameters(kind, p, &inputs).map_err(|e| e.to_string());
            Some((kind, template, values))
        })
        .collect()
}

/// Records `problem` with the profile key parameter `name` comes from, unless that key already
/// has one.
fn report(r: &mut Reader, p: &Profile, kind: StackKind, name: &str, problem: String) {
    match params::profile_key(kind, name, p) {
        Some(key) if r.has_issue(key) => {}
        Some(key) => r.err(key, problem),
        None => r.err(&format!("{kind} stack parameter {name}"), problem),
    }
}

/// Outputs of the right form for every stack a later stack reads.
fn stand_in_outputs(p: &Profile) -> Outputs {
    let region = &p.region;
    let set = |pairs: &[(&str, String)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    let mut out = Outputs::new();
    out.insert(
        StackKind::Identity,
        set(&[(
            "ClientSecretArn",
            format!("arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:oidc-client-AbCdEf"),
        )]),
    );
    out.insert(
        StackKind::Gateway,
        set(&[
            ("VpcId", "vpc-0123456789abcdef0".to_owned()),
            (
                "PrivateSubnetIds",
                "subnet-0123456789abcdef0,subnet-0123456789abcdef1".to_owned(),
            ),
            ("VpcCidr", p.network.cidr().to_string()),
            ("GatewayLogGroupName", format!("/{}/gateway", p.deployment)),
            (
                "LoadBalancerFullName",
                "app/gateway/0123456789abcdef".to_owned(),
            ),
            (
                "TargetGroupFullName",
                "targetgroup/gateway/0123456789abcdef".to_owned(),
            ),
            ("DatabaseInstanceId", "gw-database-abc123".to_owned()),
            ("TaskSecurityGroupId", "sg-0123456789abcdef0".to_owned()),
        ]),
    );
    out.insert(
        StackKind::Collector,
        set(&[
            (
                "MetricsNamespace",
                format!("ClaudeGateway/{}", p.deployment),
            ),
            ("EventsLogGroupName", format!("/{}/events", p.deployment)),
        ]),
    );
    out
}
