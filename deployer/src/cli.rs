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
        /// Print only every stack's parameters, as JSON keyed by template file, in the form
        /// `cfn-lint --parameter-files` and `aws cloudformation` read; values the earlier stacks
        /// would give stand in with the right form. Offline. Example: --parameters-json
        #[arg(long, conflicts_with_all = ["live", "show_config"])]
        parameters_json: bool,
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
    /// Run the whole product on this machine until Ctrl-C: a throwaway PostgreSQL, a demo
    /// sign-in with demo users (or your IdP), the gateway with a sample policy and spend cap, and
    /// Bedrock through your AWS credentials (or, with --offline, the bundled Bedrock double).
    /// Prints the two lines that point Claude Code at it. Ctrl-C stops everything and removes
    /// what it made. Needs the PostgreSQL server binaries and, for the demo sign-in, Node.js with
    /// `npm ci --prefix gateway/tests/idp` done.
    ///
    /// Example: deployer local --offline
    Local(LocalArgs),
    /// List every profile key with its default and meaning.
    ///
    /// Example: deployer keys
    Keys,
}

/// `deployer local`'s flags.
#[derive(Debug, Clone, Args)]
pub struct LocalArgs {
    /// Answer from the bundled Bedrock double instead of Amazon Bedrock: no AWS account needed.
    /// Example: --offline
    #[arg(long)]
    pub offline: bool,
    /// The gateway's loopback port (default: a free one). Example: --port 8080
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The Bedrock Region (default: AWS_REGION, else us-east-1). Example: --region eu-west-1
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Your own IdP instead of the demo sign-in: its issuer URL. Its client must allow the
    /// redirect URI http://127.0.0.1:<port>/oauth/callback, so --port is needed too.
    /// Example: --issuer https://login.example.com --client-id claude-local --port 8080
    #[arg(long, value_name = "URL", requires_all = ["client_id", "port"])]
    pub issuer: Option<String>,
    /// Your IdP's client id. Example: --client-id claude-gateway-local
    #[arg(long, value_name = "ID", requires = "issuer")]
    pub client_id: Option<String>,
    /// Your IdP's client secret (or the LOCAL_OIDC_CLIENT_SECRET variable, which other users
    /// of the machine cannot see in the process list).
    #[arg(long, value_name = "SECRET", requires = "issuer")]
    pub client_secret: Option<String>,
}
