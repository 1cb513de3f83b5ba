//! `deployer status`: each stack's state, the gateway's tasks, and when the certificates the
//! deployment made expire (with how to renew them when that is near).

use super::context::Context;
use crate::aws::{cfn, ecs};
use crate::error::{Error, Result};
use crate::pki::expiry;
use crate::plan::Plan;
use crate::stacks::StackKind;

/// Prints the status; fails (exit 1) when a stack is missing or not in a completed state.
pub async fn run(plan: &Plan) -> Result<()> {
    let cx = Context::connect(plan).await?;
    let mut problems = 0;
    for kind in &plan.stacks {
        let name = plan.stack_name(*kind);
        match cfn::describe(&cx.aws, &name).await? {
            None => {
                problems += 1;
                println!("{kind:<14} {name:<36} not deployed");
            }
            Some(s) => {
                let healthy = s.status == "CREATE_COMPLETE" || s.status == "UPDATE_COMPLETE";
                if !healthy {
                    problems += 1;
                }
                let reason = s
                    .reason
                    .as_deref()
                    .map(|r| format!("  ({r})"))
                    .unwrap_or_default();
                println!("{kind:<14} {name:<36} {}{reason}", s.status);
                if let Some(help) = cfn::guidance(&cx.aws, &name, &s.status).await {
                    for line in help.lines() {
                        println!("{:<14} {line}", "");
                    }
                }
                if matches!(kind, StackKind::Gateway | StackKind::Collector) {
                    if let (Some(c), Some(svc)) =
                        (s.outputs.get("ClusterName"), s.outputs.get("ServiceName"))
                    {
                        match ecs::service(&cx.aws, c, svc).await {
                            Ok(Some(st)) => println!(
                                "{:<14} tasks {}/{} running, {} deployment(s), {}",
                                "",
                                st.running,
                                st.desired,
                                st.deployments,
                                st.task_definition.rsplit('/').next().unwrap_or_default()
                            ),
                            Ok(None) => println!("{:<14} ECS service not found", ""),
                            Err(e) => println!("{:<14} ECS service unreadable: {e}", ""),
                        }
                    }
                }
            }
        }
    }
    let secret = crate::aws::statestore::name(&plan.profile.deployment);
    if cx.state_in_account() {
        println!(
            "state          in the account: Secrets Manager secret {secret} (this machine's copy: {})",
            plan.state.root().display()
        );
    } else if plan.state.snapshot()?.is_empty() {
        println!("state          none yet (the first deploy keeps it in Secrets Manager secret {secret})");
    } else {
        println!(
            "state          only on this machine, in {}: the next deploy moves it into Secrets Manager secret {secret}",
            plan.state.root().display()
        );
    }
    if let Some(img) = &cx.state.image_uri {
        println!("image          {img}");
    }
    if let Some(sha) = &cx.state.config_sha256 {
        println!("config sha256  {sha}");
    }
    match super::renew::expiries(plan, time::OffsetDateTime::now_utc()) {
        Ok(list) if !list.is_empty() => {
            println!(
                "certificates   made by the deployer, copied to {}",
                plan.state.root().display()
            );
            let (lines, expired) = expiry::report(&list, &super::renew::command(plan));
            for l in lines {
                println!("  {l}");
            }
            if expired {
                problems += 1;
            }
        }
        Ok(_) => {}
        Err(e) => println!("certificates   {e}"),
    }
    if problems > 0 {
        return Err(Error::failed(format!(
            "{problems} problem(s): a stack not deployed or not healthy, or an expired certificate"
        )));
    }
    Ok(())
}
