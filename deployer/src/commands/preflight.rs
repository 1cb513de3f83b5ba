//! Preflight: every check that is quick and catches a deployment that would fail slowly.
//! (Credentials were checked when the context connected; profile values were checked offline.)

use super::context::Context;
use super::limits;
use crate::aws::{self, cfn};
use crate::error::{Error, Result};
use crate::profile::{host_in_zone, CertMode, Idp, Telemetry};
use crate::stacks::{self, StackKind};

/// Runs the checks, printing each; fails on the first that cannot pass.
pub async fn run(cx: &Context<'_>) -> Result<()> {
    let p = &cx.plan.profile;
    println!("preflight");
    if let Some(zone_id) = &p.hosted_zone_id {
        let zone = aws::route53::zone(&cx.aws, zone_id).await?;
        if p.cert == CertMode::Managed && zone.private {
            return Err(Error::failed(format!(
                "HOSTED_ZONE_ID {zone_id} ({}) is a private zone: ACM cannot validate a certificate there and the stack would wait for hours; give the public zone",
                zone.name
            )));
        }
        let mut names = vec![("GATEWAY_HOSTNAME", p.hostname.clone())];
        if let Telemetry::Collector { hostname, .. } = &p.telemetry {
            names.push(("COLLECTOR_HOSTNAME", hostname.clone()));
        }
        for (key, name) in names {
            if !host_in_zone(&name, &zone.name) {
                return Err(Error::failed(format!(
                    "{key} {name} is not inside hosted zone {} ({zone_id}); the record and certificate validation would fail",
                    zone.name
                )));
            }
        }
        println!(
            "  ok  hosted zone {} ({}) holds {}",
            zone.name,
            if zone.private { "private" } else { "public" },
            p.hostname
        );
    }
    if let Idp::Oidc(o) = &p.idp {
        aws::secrets::check_client_secret(&cx.aws, &o.secret_arn).await?;
        println!("  ok  OIDC client secret {} is set", o.secret_arn);
        if let Some(key) = aws::secrets::customer_key(&cx.aws, &o.secret_arn).await {
            println!(
                "  ok  it is encrypted with customer-managed KMS key {key}: the task's execution \
                 role may decrypt it through Secrets Manager; the key's policy must let this \
                 account's IAM policies grant kms:Decrypt (the default key policy does)"
            );
        }
    }
    if let Some(arn) = p
        .aws_access
        .as_ref()
        .and_then(|a| a.webhook_secret_arn.as_ref())
    {
        aws::secrets::check_plain(
            &cx.aws,
            "AWS_ACCESS_WEBHOOK_SECRET_ARN",
            arn,
            "the bare webhook URL",
        )
        .await?;
        println!("  ok  agent-access webhook secret {arn} is set");
    }
    for kind in &cx.plan.stacks {
        if let Some(t) = stacks::template(*kind, p) {
            let how = if t.body.len() <= cx.aws.inline_limit {
                "inline"
            } else {
                "through the deployer's S3 bucket"
            };
            println!("  ok  {} {} bytes, passed {how}", t.file, t.body.len());
        }
    }
    if let Some(vpn) = &p.vpn {
        println!(
            "  ok  VPN pool {} does not overlap VPC {}",
            vpn.client_cidr,
            p.network.cidr()
        );
    }
    let exists = |kind| async move {
        cfn::describe(&cx.aws, &cx.plan.stack_name(kind))
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.status != "DELETE_COMPLETE")
    };
    let needs = limits::needs(
        p,
        exists(StackKind::Gateway).await,
        exists(StackKind::Vpn).await,
    );
    let found = limits::facts(&cx.aws, &needs).await;
    let checked = limits::lines(&needs, &found, &cx.aws.region);
    for line in &checked {
        println!("{}", line.render());
    }
    if checked.iter().any(|l| l.level == limits::Level::Fail) {
        return Err(Error::failed(
            "an account quota is too low for this deployment (see FAIL above); nothing was deployed",
        ));
    }
    if p.bedrock_access_check {
        let mut models = p.all_models();
        if models.is_empty() {
            models.push("sonnet".into());
        }
        aws::bedrock::check_access(&cx.aws, &models, &p.bedrock_region).await?;
    } else {
        println!("  --  Bedrock model access not checked (BEDROCK_ACCESS_CHECK=false)");
    }
    Ok(())
}
