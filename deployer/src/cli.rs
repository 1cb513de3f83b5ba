//! The command line: subcommands, flags, their help and examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Deploys claude-gateway to an AWS account from an env profile in config/.
#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    about,
    after_help = "Exit codes: 0 success; 1 a deployment, AWS call or live check failed; 2 the command line or the profile is wrong (nothing was changed).\n\nStart here (no AWS account needed):\n  deployer plan --profile config/managed-newcognito-collector-vpn.env"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The profile and where local state lives.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The env profile to use, e.g. config/byo-oidc-notelemetry.env.
    #[arg(long, short = 'p', value_name = "FILE")]
    pub profile: PathBuf,
    /// This machine's copy of the deployment's state (CA, certificates, VPN profiles, last
    /// outputs), whose reference copy is the Secrets Manager secret <DEPLOYMENT_NAME>-deployer-state
    /// in the account; default .deployer/<DEPLOYMENT_NAME>. Example: --state-dir ~/secure/claude-gateway
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the profile, render gateway.yaml and every stack's parameters, and show what would be deployed.
    /// Works offline; with AWS credentials (--live) it also shows CloudFormation change sets.
    ///
    /// Example: deployer plan --profile config/selfsigned-fallback.env
    Plan {
        #[command(flatten)]
        common: Common,
        /// Also ask CloudFormation what would change (needs credentials). Example: --live
        #[arg(long)]
        live: bool,
        /// Print the rendered gateway config (compact JSON) too. Example: --show-config
        #[arg(long)]
        show_config: bool,
    },
    /// Preflight, build or find the image, then deploy every stack of the profile in order. Stacks
    /// of the deployment the profile no longer has (a collector or VPN turned off) are deleted
    /// afterwards once confirmed: at a terminal by typing the deployment name, elsewhere with --yes
    /// (without it they are kept, and named).
    ///
    /// Example: deployer deploy-all --profile config/managed-newcognito-collector-vpn.env
    DeployAll {
        #[command(flatten)]
        common: Common,
        /// Delete the stacks the profile no longer has without asking. Example: --yes
        #[arg(long)]
        yes: bool,
    },
    /// Deploy one stack (identity, gateway, collector, observability or vpn), reading the outputs of
    /// the stacks it depends on.
    ///
    /// Example: deployer deploy gateway --profile config/byo-oidc-notelemetry.env
    Deploy {
        /// The stack: identity, gateway, collector, observability or vpn.
        stack: String,
        #[command(flatten)]
        common: Common,
    },
    /// Show each stack's state and the gateway's running tasks.
    ///
    /// Example: deployer status --profile config/byo-oidc-notelemetry.env
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// Re-issue the certificates the deployer made (CA, self-signed gateway certificate, VPN
    /// server and client certificates) that end within --within-days, from the same CA; server
    /// certificates are re-imported under the same ACM ARNs and new .ovpn files are written.
    ///
    /// Example: deployer renew --profile config/selfsigned-fallback.env
    Renew {
        #[command(flatten)]
        common: Common,
        /// Renew what ends within this many days (397 or more renews every server and client
        /// certificate). Example: --within-days 60
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(0..=3650))]
        within_days: i64,
    },
    /// Rotate the secret that signs sessions without signing anyone out: make a new secret and
    /// deploy the gateway with it signing and the old one still verifying; after SESSION_TTL_HOURS,
    /// run again with --finish to drop the old one.
    ///
    /// Example: deployer rotate-jwt --profile config/byo-oidc-notelemetry.env
    RotateJwt {
        #[command(flatten)]
        common: Common,
        /// Drop the previous secret once its sessions have expired. Example: --finish
        #[arg(long)]
        finish: bool,
    },
    /// Print every stack's outputs.
    ///
    /// Example: deployer outputs --profile config/byo-oidc-notelemetry.env --json
    Outputs {
        #[command(flatten)]
        common: Common,
        /// Print JSON instead of a table. Example: --json
        #[arg(long)]
        json: bool,
    },
    /// Check a deployed gateway from this machine: private-only DNS, /healthz, /readyz, the
    /// discovery document and the start of a device sign-in.
    ///
    /// Example: deployer verify --profile config/managed-newcognito-collector-vpn.env
    Verify {
        #[command(flatten)]
        common: Common,
    },
    /// Delete every stack of the profile in reverse order.
    ///
    /// Example: deployer destroy --profile config/byo-oidc-notelemetry.env --yes
    Destroy {
        #[command(flatten)]
        common: Common,
        /// Do not ask for confirmation. Example: --yes
        #[arg(long)]
        yes: bool,
    },
    /// List every profile key with its default and meaning.
    ///
    /// Example: deployer keys
    Keys,
}
