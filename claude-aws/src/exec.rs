//! `claude-aws exec`: runs a command with a project's credentials in its environment (and every
//! other AWS credential setting removed, so none can win over them), and exits as it did. With
//! gateway-only credentials, the AWS endpoint is the gateway's too, and no other endpoint setting
//! stays to send a call around it.

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

/// Settings that would send calls elsewhere than `AWS_ENDPOINT_URL` (besides the per-service
/// `AWS_ENDPOINT_URL_<SERVICE>` variables, removed by name).
pub const REMOVED_WITH_ENDPOINT: [&str; 1] = ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"];

/// Where the command's AWS calls go.
#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// AWS itself (STS credentials), however the command is configured.
    Aws,
    /// The gateway's AWS endpoint, and the per-service endpoint variables set now, to remove.
    Gateway {
        /// `<gateway>/aws/`.
        endpoint: &'a str,
        /// The `AWS_ENDPOINT_URL_<SERVICE>` variables in this environment.
        service_endpoints: &'a [String],
    },
}

/// The command with the credentials in its environment.
pub fn command(
    program: &str,
    args: &[String],
    c: &ProcessCredentials,
    route: Route<'_>,
) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for k in REMOVED {
        cmd.env_remove(k);
    }
    if let Route::Gateway {
        endpoint,
        service_endpoints,
    } = route
    {
        for k in REMOVED_WITH_ENDPOINT
            .iter()
            .copied()
            .chain(service_endpoints.iter().map(String::as_str))
        {
            cmd.env_remove(k);
        }
        cmd.env("AWS_ENDPOINT_URL", endpoint);
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
pub async fn run(
    program: &str,
    args: &[String],
    c: &ProcessCredentials,
    route: Route<'_>,
) -> Result<u8, Error> {
    #[cfg(unix)]
    let _keep = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let mut child = command(program, args, c, route).spawn().map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsStr;

    fn creds() -> ProcessCredentials {
        ProcessCredentials {
            version: 1,
            access_key_id: "AGWKEY".into(),
            secret_access_key: "s".into(),
            session_token: "t".into(),
            expiration: "2030-01-01T00:00:00Z".into(),
        }
    }

    /// What the command sets (`Some`) and removes (`None`).
    fn envs(cmd: &Command) -> HashMap<String, Option<String>> {
        cmd.get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn through_the_gateway_the_endpoint_is_the_gateways_and_no_other_stays() {
        let services = vec!["AWS_ENDPOINT_URL_S3".to_owned()];
        let route = Route::Gateway {
            endpoint: "https://gw/aws/",
            service_endpoints: &services,
        };
        let cmd = command("aws", &[], &creds(), route);
        let e = envs(&cmd);
        assert_eq!(e["AWS_ENDPOINT_URL"].as_deref(), Some("https://gw/aws/"));
        assert_eq!(e["AWS_ACCESS_KEY_ID"].as_deref(), Some("AGWKEY"));
        assert_eq!(e["AWS_ENDPOINT_URL_S3"], None);
        assert_eq!(e["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"], None);
        assert_eq!(e["AWS_PROFILE"], None);
        assert_eq!(cmd.get_program(), OsStr::new("aws"));
    }

    #[test]
    fn to_aws_no_endpoint_setting_is_touched() {
        let e = envs(&command("aws", &[], &creds(), Route::Aws));
        assert!(!e.contains_key("AWS_ENDPOINT_URL"));
        assert!(!e.contains_key("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"));
        assert_eq!(e["AWS_SESSION_TOKEN"].as_deref(), Some("t"));
    }
}
