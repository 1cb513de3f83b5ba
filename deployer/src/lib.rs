//! `deployer`: turns an env profile from `config/` into the CloudFormation stacks in `cfn/` and
//! renders the gateway's configuration.
//!
//! The flow is always: arguments and profile → a validated [`plan::Plan`] (offline) → preflight
//! against the account → stacks in order, each fed by the outputs of the ones before.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod constraints;
pub mod error;
pub mod image;
pub mod netcalc;
pub mod ovpn;
pub mod params;
pub mod pki;
pub mod plan;
pub mod profile;
pub mod render;
pub mod stacks;
pub mod state;

/// The plan's stacks as `a → b → c`.
pub fn cfn_order(plan: &plan::Plan) -> String {
    plan.stacks
        .iter()
        .map(|k| plan.stack_name(*k))
        .collect::<Vec<_>>()
        .join(" → ")
}
