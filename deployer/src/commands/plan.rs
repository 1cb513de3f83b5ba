//! `deployer plan`: validates the profile, renders the gateway config and every stack's
//! parameters, and prints what would be deployed. Offline unless `--live`, which also asks
//! CloudFormation for change sets.

use super::context::Context;
use crate::aws::{cfn, changeset};
use crate::error::{Error, Result};
use crate::image;
use crate::params::{self, Inputs, Outputs};
use crate::plan::Plan;
use crate::profile::{self, CertMode, Image, Profile, Telemetry};
use crate::stacks::INLINE_TEMPLATE_LIMIT;

/// Runs the plan.
pub async fn run(plan: &Plan, live: bool, show_config: bool) -> Result<()> {
    let p = &plan.profile;
    println!("profile {} is valid", p.source);
    println!(
        "deployment {} in {}: {}",
        p.deployment,
        p.region,
        crate::cfn_order(plan)
    );
    println!(
        "gateway {} ({})",
        p.gateway_url(),
        match &p.cert {
            CertMode::Managed =>
                "public ACM certificate, DNS-validated in the hosted zone".to_owned(),
            CertMode::Byo { arn } => format!("your certificate {arn}"),
            CertMode::SelfSigned =>
                "self-signed: the deployer makes a private CA and imports the certificate"
                    .to_owned(),
        }
    );
    match &p.telemetry {
        Telemetry::Off => println!("telemetry off"),
        Telemetry::Collector { hostname, .. } => println!(
            "telemetry to the bundled collector https://{hostname} (logs: {})",
            p.telemetry_logs
        ),
        Telemetry::External { endpoint } => {
            println!("telemetry to {endpoint} (logs: {})", p.telemetry_logs)
        }
    }
    print_aws_access(p);

    let mut outputs = Outputs::new();
    let mut cx = None;
    if live {
        let mut c = Context::connect(plan).await?;
        c.read_outputs().await?;
        outputs = c.outputs.clone();
        cx = Some(c);
    }
    let facts = match cx.as_ref().map(|c| c.identity()) {
        Some(Ok(f)) => f,
        _ => plan.planned_identity(),
    };
    let rendered = plan.render(&facts)?;
    println!(
        "gateway.yaml: valid; {}; sha256 {}",
        rendered.budget_line(),
        &rendered.sha256[..12]
    );
    if show_config {
        println!("{}", rendered.text);
    }
    let image_uri = planned_image(plan, cx.as_ref().map(|c| c.account.as_str()));
    let note = if matches!(p.image, Image::Build { .. }) {
        " (built from this checkout and pushed unless ECR already has the tag)"
    } else {
        ""
    };
    println!("image {image_uri}{note}");

    for kind in &plan.stacks {
        let t = plan.template(*kind)?;
        let name = plan.stack_name(*kind);
        let how = if t.body.len() <= INLINE_TEMPLATE_LIMIT {
            "inline"
        } else {
            "via S3"
        };
        println!(
            "\n{kind}: stack {name}, template {} ({} bytes, {how})",
            t.file,
            t.body.len()
        );
        let inputs = Inputs {
            outputs: &outputs,
            planning: true,
            image_uri: image_uri.clone(),
            config: &rendered,
            gateway_certificate_arn: cx
                .as_ref()
                .and_then(|c| c.state.gateway_certificate_arn.clone()),
            vpn_certificate_arn: cx
                .as_ref()
                .and_then(|c| c.state.vpn_certificate_arn.clone()),
        };
        let values = params::parameters(*kind, p, &inputs)?;
        print_params(&values);
        if let Some(c) = &cx {
            let unresolved = values
                .iter()
                .any(|(_, v)| v.starts_with('<') && v.ends_with('>'));
            if unresolved {
                println!("    change set: after the stacks before it exist");
                continue;
            }
            if let Some(deployed) = cfn::describe(&c.aws, &name).await? {
                print_param_diff(&deployed.parameters, &values);
            }
            let source = cfn::TemplateSource::Body(t.body.to_owned());
            match changeset::preview(
                &c.aws,
                &name,
                &source,
                &values,
                &crate::stacks::tags(&c.plan.profile.deployment, *kind),
                kind.needs_iam(),
            )
            .await?
            {
                None => println!("    change set: new stack, every resource is created"),
                Some(changes) if changes.is_empty() => println!("    change set: no changes"),
                Some(changes) => {
                    println!("    change set: {} change(s)", changes.len());
                    changeset::print_changes(&changes);
                }
            }
        }
    }
    if let Some(c) = &cx {
        for kind in super::orphans::find(c).await? {
            println!(
                "\n{kind}: stack {} is no longer in the profile: remove (deploy-all deletes it after confirmation)",
                plan.stack_name(kind)
            );
        }
    }
    if !live {
        println!("\n(offline plan; run with --live and AWS credentials to see CloudFormation change sets and the stacks a profile change removes)");
    }
    Ok(())
}

/// `plan --parameters-json`: every stack's parameters as `{"<template file>": [{"ParameterKey",
/// "ParameterValue"}, ...]}`, computed offline with stand-ins for other stacks' outputs.
pub fn parameters_json(plan: &Plan) -> Result<()> {
    let rendered = plan.render(&plan.planned_identity())?;
    let mut doc = serde_json::Map::new();
    for (kind, template, values) in profile::stand_in_parameters(&plan.profile, &rendered) {
        let values = values.map_err(|e| Error::usage(format!("{kind} stack: {e}")))?;
        let list: Vec<serde_json::Value> = values
            .into_iter()
            .map(|(k, v)| serde_json::json!({"ParameterKey": k, "ParameterValue": v}))
            .collect();
        doc.insert(template.file.to_owned(), list.into());
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(doc))
        .map_err(|e| Error::failed(format!("cannot print the parameters: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Parameters whose deployed value differs from the planned one (the config parts as one).
fn print_param_diff(
    deployed: &std::collections::BTreeMap<String, String>,
    planned: &[(String, String)],
) {
    let config = |get: &dyn Fn(&str) -> String| {
        (1..=4)
            .map(|i| get(&format!("GatewayConfigPart{i}")))
            .collect::<String>()
    };
    let old_cfg = config(&|k| deployed.get(k).cloned().unwrap_or_default());
    let new_cfg = config(&|k| {
        planned
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    });
    if planned.iter().any(|(k, _)| k == "GatewayConfigPart1") && old_cfg != new_cfg {
        println!(
            "    parameter  gateway.yaml changes ({} -> {} bytes): the tasks roll",
            old_cfg.len(),
            new_cfg.len()
        );
    }
    for (k, v) in planned {
        if k.starts_with("GatewayConfigPart") {
            continue;
        }
        match deployed.get(k) {
            Some(old) if old == v => {}
            Some(old) => println!("    parameter  {k}: {old:?} -> {v:?}"),
            None => println!("    parameter  {k}: (template default) -> {v:?}"),
        }
    }
}

fn print_params(values: &[(String, String)]) {
    for (k, v) in values {
        if k.starts_with("GatewayConfigPart") {
            if !v.is_empty() {
                println!("    {k:<28} {} bytes of gateway.yaml", v.len());
            }
            continue;
        }
        println!("    {k:<28} {}", if v.is_empty() { "(empty)" } else { v });
    }
}

fn planned_image(plan: &Plan, account: Option<&str>) -> String {
    let p = &plan.profile;
    match &p.image {
        Image::Uri(u) => u.clone(),
        Image::Build { repository } => {
            let platform = image::platform(&p.cpu_architecture);
            // Offline, the tag is known only when the Dockerfile pins every base image by
            // digest; otherwise the digests are resolved when the image is built.
            let tag = std::env::current_dir()
                .ok()
                .and_then(|d| image::find_source_dir(&d))
                .and_then(|root| {
                    let bases = image::written_pins(&root)?;
                    image::content_tag(&root, platform, &bases).ok()
                })
                .unwrap_or_else(|| {
                    "<content tag of the build inputs and the base images' digests>".into()
                });
            format!(
                "{}.dkr.ecr.{}.amazonaws.com/{repository}:{tag}",
                account.unwrap_or("<account>"),
                p.region
            )
        }
    }
}

/// Agent access to AWS: the projects of the section and the roles the task role may assume.
fn print_aws_access(p: &Profile) {
    match &p.aws_access {
        Some(f) => {
            let names: Vec<&str> = f.section.projects.iter().map(|p| p.name.as_str()).collect();
            println!(
                "agent access to AWS from {}: projects {} ({}); member entries in the file: {}",
                f.path.display(),
                names.len(),
                names.join(", "),
                f.section.members.len()
            );
            if let Some(arn) = &f.webhook_secret_arn {
                println!("  write requests announced through the webhook URL in {arn}");
            }
        }
        None => println!("agent access to AWS off (no AWS_ACCESS_CONFIG)"),
    }
    if p.aws_access_role_arns.is_empty() {
        println!("  the task role may assume no project role");
    } else {
        println!("  the task role may assume:");
        for arn in &p.aws_access_role_arns {
            println!("    {arn}");
        }
    }
}
