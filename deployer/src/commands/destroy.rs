//! `deployer destroy`: deletes every stack of the deployment in reverse order (those of the
//! profile, and any a profile change left behind), then the certificates the deployer imported,
//! the session secrets it made, and last the deployment's state in the account. Asks for the
//! deployment name unless `--yes`.

use std::io::BufRead;

use super::context::Context;
use crate::aws::{acm, cfn, session_secret};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::stacks::{StackKind, ORDER};

/// The stacks of the deployment that exist, in reverse deployment order: the profile's, and any
/// a profile change left behind (a collector or VPN turned off since).
async fn existing(cx: &Context<'_>, plan: &Plan) -> Result<Vec<StackKind>> {
    let mut out = Vec::new();
    for kind in ORDER.iter().rev() {
        let exists = cfn::describe(&cx.aws, &plan.stack_name(*kind))
            .await?
            .is_some_and(|s| s.status != "DELETE_COMPLETE");
        if exists || plan.stacks.contains(kind) {
            out.push(*kind);
        }
    }
    Ok(out)
}

/// Runs the teardown.
pub async fn run(plan: &Plan, yes: bool) -> Result<()> {
    let mut cx = Context::connect(plan).await?;
    let kinds = existing(&cx, plan).await?;
    let names: Vec<String> = kinds.iter().map(|k| plan.stack_name(*k)).collect();
    let gateway = cfn::describe(&cx.aws, &plan.stack_name(StackKind::Gateway)).await?;
    let audit = gateway.as_ref().and_then(|gw| {
        Some(KeptLogGroup {
            name: gw.outputs.get("GatewayLogGroupName")?.clone(),
            retention_days: gw.parameters.get("LogRetentionDays").cloned(),
        })
    });
    let mut session_secrets = Vec::new();
    if let Some(gw) = &gateway {
        session_secrets = [super::rotate::SIGNING, super::rotate::PREVIOUS]
            .iter()
            .filter_map(|k| gw.parameters.get(*k))
            .filter(|arn| session_secret::made_by_deployer(&plan.profile.deployment, arn))
            .cloned()
            .collect();
        if gw
            .parameters
            .get("DBDeletionProtection")
            .map(String::as_str)
            == Some("true")
        {
            return Err(Error::usage(format!(
                "the database of {} has deletion protection on: set DB_DELETION_PROTECTION=false in {}, run `deployer deploy gateway`, then destroy again",
                plan.stack_name(StackKind::Gateway),
                plan.profile.source
            )));
        }
    }
    if !yes {
        println!(
            "This deletes {} (the database leaves a final snapshot; a Cognito pool and the gateway's audit log group are retained), the certificates the deployer imported, and the deployment's state in the account ({}).",
            names.join(", "),
            crate::aws::statestore::name(&plan.profile.deployment)
        );
        println!(
            "Type the deployment name ({}) to continue:",
            plan.profile.deployment
        );
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::usage(format!("cannot read the confirmation: {e}")))?;
        if line.trim() != plan.profile.deployment {
            return Err(Error::usage("not confirmed; nothing was deleted"));
        }
    }
    for kind in &kinds {
        cfn::delete(&cx.aws, kind.slug(), &plan.stack_name(*kind)).await?;
        cx.state.outputs.remove(&plan.stack_name(*kind));
    }
    for arn in [
        cx.state.vpn_certificate_arn.take(),
        cx.state.gateway_certificate_arn.take(),
    ]
    .into_iter()
    .flatten()
    {
        match acm::delete(&cx.aws, &arn).await {
            Ok(()) => println!("  pki: deleted imported certificate {arn}"),
            Err(e) => println!("  pki: {e} (delete it later in the ACM console)"),
        }
    }
    for arn in &session_secrets {
        session_secret::delete(&cx.aws, arn, true).await?;
        println!("  session: deleted the session secret {arn}");
    }
    plan.state.save(&cx.state)?;
    // Last: the state is what finds everything above when a run is interrupted and repeated.
    let secret = crate::aws::statestore::name(&plan.profile.deployment);
    if crate::aws::statestore::delete(&cx.aws, &plan.profile.deployment).await? {
        println!("  state: deleted Secrets Manager secret {secret} (no recovery window: the name can be used again at once)");
    }
    println!("destroyed {}. Kept: a copy of the private CA and VPN files on this machine in {}, any Cognito user pool, database snapshots.", plan.profile.deployment, plan.state.root().display());
    if let Some(kept) = &audit {
        println!("{}", kept.describe(&cx.aws.region));
    }
    Ok(())
}

/// The gateway's log group, which the stack keeps on delete (DeletionPolicy Retain): the audit
/// trail and the per-request cost in it outlive the deployment.
struct KeptLogGroup {
    name: String,
    retention_days: Option<String>,
}

impl KeptLogGroup {
    /// What destroy left behind and how to delete it.
    fn describe(&self, region: &str) -> String {
        let expiry = match &self.retention_days {
            Some(days) => format!("its events expire {days} days after they were written"),
            None => "its events expire after the stack's LogRetentionDays".to_owned(),
        };
        format!(
            "Kept: log group {name} (the gateway's audit events and their cost_usd; {expiry}; storage is billed until then). \
             Export what finance needs, then delete it with:\n  aws logs delete-log-group --region {region} --log-group-name {name}",
            name = self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kept_log_group_and_how_to_delete_it() {
        let kept = KeptLogGroup {
            name: "/claude-gateway/gw-gateway/gateway-1a2b3c4d".into(),
            retention_days: Some("365".into()),
        };
        let text = kept.describe("eu-west-1");
        assert!(text.contains("Kept: log group /claude-gateway/gw-gateway/gateway-1a2b3c4d"));
        assert!(text.contains("expire 365 days after"));
        assert!(text.contains(
            "aws logs delete-log-group --region eu-west-1 --log-group-name /claude-gateway/gw-gateway/gateway-1a2b3c4d"
        ));
    }
}
