//! `claude-aws`: the developer's side of AWS access through claude-gateway. Sign in once with the
//! company IdP (through the gateway), then get short-lived, per-project AWS credentials for the
//! AWS CLI, SDKs and agents, without an AWS key on the machine.
//!
//! - [`cli`]: the command line and its help.
//! - [`login`]: device sign-in and logout; [`oauth`]: the gateway's OAuth endpoints.
//! - [`store`]: where the session is kept (keyring, or a 0600 file); [`session`]: the access
//!   token, cached or refreshed.
//! - [`client`]: bounded HTTP to the gateway; [`api`]: its `/v1/aws` routes.
//! - [`credentials`], [`configure`] (with [`aws_config`], the INI edit), [`exec`], [`request`]
//!   (with [`duration`]), [`status`]: one command each.
//! - [`error`]: the one error type and its exit codes; [`env`]: the environment, read once;
//!   [`out`]: stdout without a panic on a closed pipe.

mod api;
mod aws_config;
mod cli;
mod client;
mod configure;
mod credentials;
mod duration;
mod env;
mod error;
mod exec;
mod login;
mod oauth;
mod out;
mod request;
mod session;
mod status;
mod store;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use env::Env;
use error::{exit, Error};
use session::Signed;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("claude-aws: could not start: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(run(cli, Env::process())) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("claude-aws: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli, env: Env) -> Result<u8, Error> {
    // An empty CLAUDE_AWS_GATEWAY counts as unset.
    let gateway = cli.gateway.as_deref().filter(|g| !g.trim().is_empty());
    match cli.command {
        Command::Login { no_browser } => login::login(&env, gateway, !no_browser).await?,
        Command::Logout => login::logout(&env)?,
        Command::Credentials(t) => {
            let s = Signed::open(&env, gateway)?;
            let c = credentials::fetch(&s, &t).await?;
            out::line(&c.to_json()?)?;
        }
        Command::Configure {
            target,
            profile,
            region,
        } => {
            let o = configure::Options {
                target: &target,
                profile: profile.as_deref(),
                region: region.as_deref(),
            };
            configure::run(&env, gateway, o).await?;
        }
        Command::Exec { target, command } => {
            let s = Signed::open(&env, gateway)?;
            let c = credentials::fetch(&s, &target).await?;
            let Some((program, args)) = command.split_first() else {
                return Err(Error::Usage("give the command to run after --".into()));
            };
            let endpoint = client::proxy_endpoint(s.gateway.base());
            let route = if target.via_gateway {
                exec::Route::Gateway {
                    endpoint: &endpoint,
                    service_endpoints: env.service_endpoints(),
                }
            } else {
                exec::Route::Aws
            };
            return exec::run(program, args, &c, route).await;
        }
        Command::Request {
            project,
            for_,
            reason,
            wait,
        } => {
            let (seconds, reason) = request::checked(&for_, &reason)?;
            let s = Signed::open(&env, gateway)?;
            request::run(&s, &project, seconds, &reason, wait).await?;
        }
        Command::Status { json } => {
            let s = Signed::open(&env, gateway)?;
            let answer = api::status(&s).await?;
            if json {
                let text = serde_json::to_string_pretty(&answer)
                    .map_err(|e| Error::Failed(format!("could not encode: {e}")))?;
                out::line(&text)?;
            } else {
                out::line(status::render(&answer)?.trim_end())?;
            }
        }
    }
    Ok(exit::OK)
}
