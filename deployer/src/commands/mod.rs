//! One module per subcommand, and the dispatcher.

mod context;
mod deploy;
mod destroy;
mod keys;
mod limits;
#[cfg(unix)]
mod local;
mod orphans;
mod outputs;
mod plan;
mod preflight;
mod renew;
mod rotate;
mod shared_state;
mod status;
mod summary;
mod verify;

use crate::cli::Command;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::stacks::StackKind;

/// Runs a subcommand.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Plan {
            common,
            live,
            show_config,
            parameters_json,
        } => {
            let plan = Plan::load(&common)?;
            if parameters_json {
                plan::parameters_json(&plan)
            } else {
                plan::run(&plan, live, show_config).await
            }
        }
        Command::DeployAll { common, yes } => deploy::all(&Plan::load(&common)?, yes).await,
        Command::Deploy { stack, common } => {
            let kind = StackKind::from_slug(&stack).ok_or_else(|| {
                Error::usage(format!("unknown stack {stack:?}: use identity, gateway, collector, observability or vpn"))
            })?;
            deploy::one(&Plan::load(&common)?, kind).await
        }
        Command::Status { common } => status::run(&Plan::load(&common)?).await,
        Command::Renew {
            common,
            within_days,
        } => renew::run(&Plan::load(&common)?, within_days).await,
        Command::RotateJwt { common, finish } => rotate::run(&Plan::load(&common)?, finish).await,
        Command::Outputs { common, json } => outputs::run(&Plan::load(&common)?, json).await,
        Command::Verify { common } => verify::run(&Plan::load(&common)?).await,
        Command::Destroy { common, yes } => destroy::run(&Plan::load(&common)?, yes).await,
        #[cfg(unix)]
        Command::Local(args) => local::run(&args).await,
        #[cfg(not(unix))]
        Command::Local(_) => Err(Error::usage(
            "deployer local runs on Linux and macOS (on Windows, run it in WSL)",
        )),
        Command::Keys => {
            keys::run();
            Ok(())
        }
    }
}
