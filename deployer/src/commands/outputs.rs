//! `deployer outputs`: every stack's outputs.

use std::collections::BTreeMap;

use super::context::Context;
use crate::error::{Error, Result};
use crate::plan::Plan;

/// Prints the outputs as a table or JSON.
pub async fn run(plan: &Plan, json: bool) -> Result<()> {
    let mut cx = Context::connect(plan).await?;
    cx.read_outputs().await?;
    if json {
        let by_name: BTreeMap<String, &BTreeMap<String, String>> = cx
            .outputs
            .iter()
            .map(|(k, v)| (plan.stack_name(*k), v))
            .collect();
        let text =
            serde_json::to_string_pretty(&by_name).map_err(|e| Error::failed(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    if cx.outputs.is_empty() {
        println!("no stack of {} is deployed", plan.profile.deployment);
    }
    for (kind, outs) in &cx.outputs {
        println!("{} ({kind})", plan.stack_name(*kind));
        for (k, v) in outs {
            println!("  {k:<28} {v}");
        }
    }
    Ok(())
}
