//! `deployer status`: each stack's state and the gateway's tasks.

use super::context::Context;
use crate::aws::{cfn, ecs};
use crate::error::{Error, Result};
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
    if let Some(img) = &cx.state.image_uri {
        println!("image          {img}");
    }
    if let Some(sha) = &cx.state.config_sha256 {
        println!("config sha256  {sha}");
    }
    if problems > 0 {
        return Err(Error::failed(format!(
            "{problems} stack(s) not deployed or not healthy"
        )));
    }
    Ok(())
}
