//! `deployer rotate-jwt`: replaces the secret that signs sessions without signing anyone out.
//!
//! The first step makes a new secret and deploys the gateway with it signing and the old one
//! still verifying (the stack parameters `SigningSessionSecretArn` and `PreviousSessionSecretArn`;
//! the rendered config lists both). Once every session signed with the old one has expired
//! (`SESSION_TTL_HOURS`), `--finish` deploys without it and deletes it when the deployer made it.
//! Other deployments keep both parameters as they are, like every parameter the profile does not
//! set.

use super::context::Context;
use crate::aws::{cfn, session_secret};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::stacks::StackKind;

/// The stack parameter naming the secret that signs.
pub const SIGNING: &str = "SigningSessionSecretArn";
/// The stack parameter naming the secret that still verifies during a rotation.
pub const PREVIOUS: &str = "PreviousSessionSecretArn";

/// Starts a rotation, or finishes one (`finish`).
pub async fn run(plan: &Plan, finish: bool) -> Result<()> {
    let mut cx = Context::connect(plan).await?;
    cx.read_outputs().await?;
    let name = plan.stack_name(StackKind::Gateway);
    let gw = cfn::describe(&cx.aws, &name)
        .await?
        .filter(|s| s.status.ends_with("_COMPLETE") && !s.status.starts_with("DELETE"))
        .ok_or_else(|| {
            Error::usage(format!(
                "{name} is not deployed (or not in a completed state): deploy it first"
            ))
        })?;
    let previous = gw
        .parameters
        .get(PREVIOUS)
        .filter(|v| !v.is_empty())
        .cloned();
    let again = format!("deployer rotate-jwt --profile {}", plan.profile.source);
    if finish {
        let Some(old) = previous else {
            println!("no rotation of the session secret is under way; nothing to finish");
            return Ok(());
        };
        println!("rotate-jwt: deploying {name} without the previous session secret {old}");
        cx.deploy_with(StackKind::Gateway, &[(PREVIOUS, "")])
            .await?;
        if session_secret::made_by_deployer(&plan.profile.deployment, &old) {
            session_secret::delete(&cx.aws, &old, false).await?;
            println!("rotate-jwt: scheduled {old} for deletion in 7 days (aws secretsmanager restore-secret undoes it)");
        }
        println!("rotate-jwt: done; only the new session secret signs and verifies");
        return Ok(());
    }
    if let Some(old) = previous {
        return Err(Error::usage(format!(
            "a rotation is under way: sessions signed with {old} still verify; finish it first with: {again} --finish"
        )));
    }
    let current = gw.outputs.get("SessionSecretArn").cloned().ok_or_else(|| {
        Error::failed(format!(
            "{name} has no output SessionSecretArn; deploy the gateway stack first (deployer deploy gateway)"
        ))
    })?;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let new = session_secret::create(&cx.aws, &plan.profile.deployment, stamp).await?;
    println!("rotate-jwt: made the new session secret {new}; deploying {name} with it signing and {current} still verifying");
    if let Err(e) = cx
        .deploy_with(StackKind::Gateway, &[(SIGNING, &new), (PREVIOUS, &current)])
        .await
    {
        // The deploy can fail after CloudFormation took the new parameters (the wait ran out,
        // a read afterwards failed). A secret the stack names must stay: a task that starts
        // without it cannot start at all, and one pending deletion cannot be read.
        let settled = cfn::describe(&cx.aws, &name).await.ok().flatten();
        if unused(settled.as_ref(), &new) {
            let _ = session_secret::delete(&cx.aws, &new, true).await;
        } else {
            eprintln!(
                "rotate-jwt: kept the new session secret {new}: {name} names it or may still. Once the stack has settled, \
                 delete the secret only if its {SIGNING} parameter is another one"
            );
        }
        return Err(e);
    }
    println!(
        "rotate-jwt: new sessions are signed with the new secret; sessions signed before still work.\n\
         After {} hour(s) (SESSION_TTL_HOURS), when they have all expired, run: {again} --finish",
        plan.profile.session_ttl_hours
    );
    Ok(())
}

/// Whether a secret made for a rotation that failed is surely not in use: the stack has settled
/// (no update or rollback under way) and signs with another secret.
fn unused(stack: Option<&cfn::StackInfo>, secret: &str) -> bool {
    stack.is_some_and(|s| {
        !s.status.ends_with("_IN_PROGRESS")
            && s.parameters.get(SIGNING).map(String::as_str) != Some(secret)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(status: &str, signing: &str) -> cfn::StackInfo {
        cfn::StackInfo {
            status: status.into(),
            reason: None,
            outputs: Default::default(),
            parameters: [(SIGNING.to_owned(), signing.to_owned())].into(),
            tags: Default::default(),
        }
    }

    #[test]
    fn a_failed_rotation_deletes_its_secret_only_when_the_stack_surely_does_not_use_it() {
        let new = "arn:new";
        assert!(unused(
            Some(&stack("UPDATE_ROLLBACK_COMPLETE", "arn:old")),
            new
        ));
        assert!(unused(Some(&stack("UPDATE_COMPLETE", "arn:old")), new));
        assert!(!unused(Some(&stack("UPDATE_COMPLETE", new)), new));
        assert!(!unused(Some(&stack("UPDATE_IN_PROGRESS", "arn:old")), new));
        assert!(!unused(
            Some(&stack("UPDATE_ROLLBACK_IN_PROGRESS", new)),
            new
        ));
        assert!(
            !unused(None, new),
            "a stack that could not be read may use it"
        );
    }
}
