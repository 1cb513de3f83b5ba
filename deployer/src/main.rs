//! `deployer`: turns an env profile from `config/` into CloudFormation stacks from `cfn/`.
//!
//! The subcommands arrive with the deployer issue; this binary exists so the workspace has its final shape.

use clap::Parser;

/// Deploy claude-gateway to an AWS account from an env profile.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!("deployer: no subcommands yet");
    std::process::exit(2);
}
