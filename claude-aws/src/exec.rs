//! `claude-aws exec`: runs a command with a project's credentials in its environment (and every
//! other AWS credential setting removed, so none can win over them), and exits as it did.

use std::process::{Command, ExitStatus};

use crate::credentials::ProcessCredentials;
use crate::error::Error;

/// AWS settings that could make the child use other credentials than the ones given.
pub const REMOVED: [&str; 11] = [
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_SHARED_CREDENTIALS_FILE",
];

/// The command with the credentials in its environment.
pub fn command(program: &str, args: &[String], c: &ProcessCredentials) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for k in REMOVED {
        cmd.env_remove(k);
    }
    cmd.env("AWS_ACCESS_KEY_ID", &c.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &c.secret_access_key)
        .env("AWS_SESSION_TOKEN", &c.session_token)
        .env("AWS_CREDENTIAL_EXPIRATION", &c.expiration);
    cmd
}

/// The exit code to pass on: the child's, or 128 + the signal that ended it.
pub fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return u8::try_from((128 + sig) & 0xff).unwrap_or(1);
        }
    }
    1
}

/// Runs the command and waits for it. Ctrl-C reaches the child (same process group); this
/// process stays to pass on how it ended.
pub async fn run(program: &str, args: &[String], c: &ProcessCredentials) -> Result<u8, Error> {
    #[cfg(unix)]
    let _keep = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let mut child = command(program, args, c).spawn().map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            "not found"
        } else {
            "could not start"
        };
        Error::Usage(format!("{program}: {code}: {e}"))
    })?;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .map_err(|e| Error::Failed(format!("waiting for {program} failed: {e}")))?
        .map_err(|e| Error::Failed(format!("waiting for {program} failed: {e}")))?;
    Ok(exit_code(status))
}
