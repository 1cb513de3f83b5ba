//! `deploy-all` and `deploy STACK`.
//!
//! `deploy-all` computes the final state first: the gateway config (telemetry included, since the
//! collector's URL is known from its hostname) is rendered once, so the gateway rolls at most once
//! per run and never without telemetry in between.

use super::context::Context;
use super::{orphans, preflight, summary};
use crate::cfn_order;
use crate::error::Result;
use crate::plan::Plan;
use crate::stacks::StackKind;

/// Deploys every stack of the profile in order, then deletes the deployment's stacks the profile
/// no longer has once the operator confirms (`yes`, or at a terminal).
pub async fn all(plan: &Plan, yes: bool) -> Result<()> {
    let mut cx = Context::connect(plan).await?;
    preflight::run(&cx).await?;
    cx.read_outputs().await?;
    let orphans = orphans::find(&cx).await?;
    let names: Vec<String> = orphans.iter().map(|k| plan.stack_name(*k)).collect();
    let delete = !orphans.is_empty() && orphans::confirmed(&cx, &names, yes)?;
    println!(
        "deploying {} stack(s): {}",
        plan.stacks.len(),
        cfn_order(plan)
    );
    if delete {
        println!("then deleting {}", names.join(", "));
    }
    for kind in plan.stacks.clone() {
        cx.deploy(kind).await?;
    }
    let ovpn = cx.write_vpn_profiles()?;
    cx.save().await?;
    summary::print(&cx, &ovpn);
    orphans::settle(&mut cx, &orphans, delete).await
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
        cx.save().await?;
    }
    Ok(())
}
