//! `deploy-all` and `deploy STACK`.
//!
//! `deploy-all` computes the final state first: the gateway config (telemetry included, since the
//! collector's URL is known from its hostname) is rendered once, so the gateway rolls at most once
//! per run and never without telemetry in between.

use super::context::Context;
use super::{preflight, summary};
use crate::cfn_order;
use crate::error::Result;
use crate::plan::Plan;
use crate::stacks::StackKind;

/// Deploys every stack of the profile in order.
pub async fn all(plan: &Plan) -> Result<()> {
    let mut cx = Context::connect(plan).await?;
    preflight::run(&cx).await?;
    cx.read_outputs().await?;
    println!(
        "deploying {} stack(s): {}",
        plan.stacks.len(),
        cfn_order(plan)
    );
    for kind in plan.stacks.clone() {
        cx.deploy(kind).await?;
    }
    let ovpn = cx.write_vpn_profiles()?;
    summary::print(&cx, &ovpn);
    left_behind(&cx, plan).await
}

/// Names the deployment's stacks the profile no longer has (a collector or VPN turned off): they
/// keep running and billing until deleted, and `destroy` deletes them with the rest.
async fn left_behind(cx: &Context<'_>, plan: &Plan) -> Result<()> {
    for kind in crate::stacks::ORDER {
        if plan.stacks.contains(&kind) {
            continue;
        }
        let name = plan.stack_name(kind);
        let live = crate::aws::cfn::describe(&cx.aws, &name)
            .await?
            .is_some_and(|s| s.status != "DELETE_COMPLETE");
        if live {
            println!(
                "\nleft behind: {name} is no longer in the profile but still runs (and bills); \
                 delete it with: aws cloudformation delete-stack --stack-name {name} --region {}",
                cx.aws.region
            );
        }
    }
    Ok(())
}

/// Deploys one stack, reading the outputs of the others.
pub async fn one(plan: &Plan, kind: StackKind) -> Result<()> {
    plan.template(kind)?;
    let mut cx = Context::connect(plan).await?;
    preflight::run(&cx).await?;
    cx.read_outputs().await?;
    cx.deploy(kind).await?;
    if kind == StackKind::Vpn {
        for p in cx.write_vpn_profiles()? {
            println!("VPN profile {}", p.display());
        }
    }
    Ok(())
}
