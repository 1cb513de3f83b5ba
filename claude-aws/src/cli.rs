//! The command line: subcommands, flags, their help and examples.

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0    success (exec: the command's own exit code; 128+N if a signal N ended it)
  1    failed: a local file could not be written, or the gateway answered something unexpected
  2    usage: bad arguments, no or insecure gateway address, a request the gateway found malformed
  3    not signed in, or the sign-in expired or was revoked: run `claude-aws login`
  4    refused by the gateway: not a member, window not open or over, write not approved, MFA
       needed; or a write request that was denied
  5    the gateway is unreachable or unavailable for a moment: try again
  130  interrupted (Ctrl-C)

Environment:
  CLAUDE_AWS_GATEWAY     the gateway's address (instead of --gateway)
  CLAUDE_AWS_CONFIG_DIR  keep the session in a 0600 file in this directory (never the keyring)
  AWS_CONFIG_FILE        the AWS config file `configure` edits (default ~/.aws/config)";

/// Short-lived AWS credentials for your projects, from claude-gateway: sign in once, never keep
/// an AWS key on this machine.
#[derive(Debug, Parser)]
#[command(name = "claude-aws", version, after_long_help = EXIT_CODES)]
#[command(
    after_help = "Start with: claude-aws login --gateway https://claude.example.com\n\
Run `claude-aws help <command>` for examples, `--help` for exit codes."
)]
pub struct Cli {
    /// The gateway's address (https; http only on loopback). Defaults to the signed-in one.
    #[arg(long, global = true, env = "CLAUDE_AWS_GATEWAY", value_name = "URL")]
    pub gateway: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in to the gateway in your browser (device sign-in); the session is kept for next time.
    #[command(
        after_help = "Examples:\n  claude-aws login --gateway https://claude.example.com\n  \
claude-aws login --no-browser    # print the link only\n\n\
stderr carries one line `Open <URL> and confirm the code <CODE>`."
    )]
    Login {
        /// Do not open a browser; only print the link and the code.
        #[arg(long)]
        no_browser: bool,
    },

    /// Print a project's AWS credentials as `credential_process` JSON (for the AWS CLI and SDKs).
    #[command(
        after_help = "Examples:\n  claude-aws credentials --project payments\n  \
claude-aws credentials --project payments --write\n  \
claude-aws credentials --project payments --via-gateway\n\n\
Usually run by the AWS CLI through a profile: see `claude-aws configure`."
    )]
    Credentials(ProjectLevel),

    /// Add or replace a profile in ~/.aws/config whose credentials come from this command.
    #[command(
        after_help = "Examples:\n  claude-aws configure --project payments\n      \
# [profile claude-payments], region from the project\n  \
claude-aws configure --project payments --write --profile pay-admin --region eu-west-1\n  \
claude-aws configure --project payments --via-gateway\n      \
# calls go through the gateway: endpoint_url <gateway>/aws/, path-style S3\n  \
aws s3 ls --profile claude-payments"
    )]
    Configure {
        #[command(flatten)]
        target: ProjectLevel,
        /// The profile's name (default claude-<project>, or claude-<project>-write).
        #[arg(long, value_name = "NAME", value_parser = profile_name)]
        profile: Option<String>,
        /// The profile's region (default: the project's first region, when the gateway says).
        #[arg(long, value_name = "REGION", value_parser = region)]
        region: Option<String>,
    },

    /// Run a command with a project's credentials in its environment.
    #[command(
        after_help = "Examples:\n  claude-aws exec --project payments -- aws s3 ls\n  \
claude-aws exec --project payments --write -- terraform apply\n  \
claude-aws exec --project payments --via-gateway -- aws logs describe-log-groups\n\n\
Sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION,\n\
removes AWS_PROFILE and the other settings that could override them, and exits with the\n\
command's exit code. With --via-gateway it also sets AWS_ENDPOINT_URL=<gateway>/aws/ (and\n\
removes AWS_ENDPOINT_URL_<SERVICE> and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS); S3 clients also\n\
need path-style addressing, which no environment variable sets: use `configure` for S3."
    )]
    Exec {
        #[command(flatten)]
        target: ProjectLevel,
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },

    /// Ask for write access to a project for a while; an approver decides.
    #[command(after_help = "Examples:\n  \
claude-aws request --project payments --for 1h --reason \"rotate the API key\"\n  \
claude-aws request --project payments --for 30m --reason \"hotfix INC-42\" --wait\n\n\
Prints `id: …`, `status: …` and `approval_url: …` on stdout. With --wait, exits 0 once\n\
approved, 4 if denied, 130 on Ctrl-C (the request stays).")]
    Request {
        /// The project.
        #[arg(long, value_name = "NAME", value_parser = project_name)]
        project: String,
        /// How long: 15m, 1h, 90m, 3600s, 1h30m.
        #[arg(long = "for", value_name = "DURATION")]
        for_: String,
        /// Why, for the approver.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Wait (checking every 3 s) until the request is approved or denied.
        #[arg(long)]
        wait: bool,
    },

    /// Your projects: environment, level, window and recent write requests.
    #[command(after_help = "Examples:\n  claude-aws status\n  claude-aws status --json | jq .")]
    Status {
        /// Print the gateway's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Forget the stored session.
    #[command(after_help = "Example:\n  claude-aws logout")]
    Logout,
}

/// A project and a level.
#[derive(Debug, Args)]
pub struct ProjectLevel {
    /// The project, as the gateway names it.
    #[arg(long, value_name = "NAME", value_parser = project_name)]
    pub project: String,
    /// Write access (needs an approved request unless the project approves automatically).
    #[arg(long)]
    pub write: bool,
    /// Gateway-only credentials: every AWS call goes through the gateway (`<gateway>/aws/`),
    /// which checks it, holds risky ones for approval and records it.
    #[arg(long)]
    pub via_gateway: bool,
}

/// Project names: letters, digits, `.`, `_`, `-`; safe in a URL and a config line.
pub fn project_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then(|| s.to_owned())
        .ok_or_else(|| "use 1 to 64 letters, digits, '.', '_' or '-'".into())
}

fn profile_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+'));
    ok.then(|| s.to_owned())
        .ok_or_else(|| "use letters, digits, '.', '_', '-', '@' or '+'".into())
}

fn region(s: &str) -> Result<String, String> {
    crate::configure::valid_region(s)
        .then(|| s.to_owned())
        .ok_or_else(|| "not a region name (like eu-west-1)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn names_that_could_inject_are_refused() {
        assert!(project_name("payments-eu.1").is_ok());
        for bad in ["", "a b", "a&level=write", "a\n", "../x", &"x".repeat(65)] {
            assert!(project_name(bad).is_err(), "{bad:?}");
        }
        assert!(profile_name("pay]\n[default").is_err());
        assert!(region("eu-west-1").is_ok());
        assert!(region("eu-west-1\nx=y").is_err());
    }

    #[test]
    fn exec_takes_everything_after_the_double_dash() {
        let cli = Cli::try_parse_from([
            "claude-aws",
            "exec",
            "--project",
            "p",
            "--",
            "aws",
            "--profile",
            "x",
        ])
        .unwrap();
        match cli.command {
            Command::Exec { target, command } => {
                assert_eq!(target.project, "p");
                assert_eq!(command, ["aws", "--profile", "x"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
