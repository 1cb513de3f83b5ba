//! Stacks of the deployment that its profile no longer has (a collector or VPN turned off): they
//! keep running and billing until deleted. `plan --live` names them; `deploy-all` deletes them
//! once the operator confirms, and otherwise keeps them and says so.

use std::io::{BufRead, IsTerminal};

use super::context::Context;
use crate::aws::cfn;
use crate::error::{Error, Result};
use crate::stacks::{StackKind, ORDER};

/// The deployment's stacks that exist but are not in the profile, in deletion (reverse) order.
pub(super) async fn find(cx: &Context<'_>) -> Result<Vec<StackKind>> {
    let mut out = Vec::new();
    for kind in ORDER.iter().rev() {
        if cx.plan.stacks.contains(kind) {
            continue;
        }
        let live = cfn::describe(&cx.aws, &cx.plan.stack_name(*kind))
            .await?
            .is_some_and(|s| s.status != "DELETE_COMPLETE");
        if live {
            out.push(*kind);
        }
    }
    Ok(out)
}

/// Whether the operator agrees to delete `names`: `--yes`, or the deployment's name typed at a
/// terminal. Without a terminal and without `--yes`, nothing is asked and the answer is no.
pub(super) fn confirmed(cx: &Context<'_>, names: &[String], yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(false);
    }
    let dep = &cx.plan.profile.deployment;
    println!(
        "{} no longer in the profile but still running (and billing). Type the deployment name ({dep}) to delete them after this deployment, anything else to keep them:",
        names.join(", ")
    );
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::usage(format!("cannot read the confirmation: {e}")))?;
    Ok(line.trim() == dep)
}

/// Deletes the confirmed stacks, or says which ones are kept and how to delete them.
pub(super) async fn settle(
    cx: &mut Context<'_>,
    kinds: &[StackKind],
    confirmed: bool,
) -> Result<()> {
    for kind in kinds {
        let name = cx.plan.stack_name(*kind);
        if confirmed {
            cfn::delete(&cx.aws, kind.slug(), &name).await?;
            cx.state.outputs.remove(&name);
            cx.outputs.remove(kind);
        } else {
            println!(
                "\nkept: {name} is no longer in the profile but still runs (and bills); nothing was deleted without confirmation. Delete it with: deployer deploy-all --profile {} --yes",
                cx.plan.profile.source
            );
        }
    }
    if confirmed && !kinds.is_empty() {
        cx.save().await?;
    }
    Ok(())
}
