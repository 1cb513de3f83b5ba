//! Secrets Manager: preflight of the secrets a profile names (a bring-your-own OIDC client
//! secret, the agent-access webhook URL): each exists and holds a bare plain string.

use super::{err_text, Aws};
use crate::error::{Error, Result};

/// Checks that the OIDC client secret exists and holds a non-empty plain string.
pub async fn check_client_secret(aws: &Aws, arn: &str) -> Result<()> {
    check_plain(aws, "OIDC_CLIENT_SECRET_ARN", arn, "the bare client secret").await
}

/// The customer-managed KMS key secret `arn` is encrypted with, if any (none: Secrets Manager's
/// own key, or the secret cannot be described, which [`check_plain`] reports).
pub async fn customer_key(aws: &Aws, arn: &str) -> Option<String> {
    let described = aws
        .secrets
        .describe_secret()
        .secret_id(arn)
        .send()
        .await
        .ok()?;
    described
        .kms_key_id()
        .filter(|k| !k.is_empty() && *k != "alias/aws/secretsmanager")
        .map(str::to_owned)
}

/// Checks that the secret `key` names exists and holds a non-empty plain string (`what`), never
/// printing its value.
pub async fn check_plain(aws: &Aws, key: &str, arn: &str, what: &str) -> Result<()> {
    match aws.secrets.get_secret_value().secret_id(arn).send().await {
        Ok(v) => {
            let value = v.secret_string().unwrap_or_default().trim();
            if value.is_empty() {
                return Err(Error::failed(format!(
                    "{key}: the secret {arn} is empty; store {what} in it (a plain string)"
                )));
            }
            if value.starts_with('{') {
                return Err(Error::failed(format!(
                    "{key}: the secret {arn} holds JSON; it must hold {what}"
                )));
            }
            Ok(())
        }
        Err(e) => {
            let text = err_text(&e);
            if text.contains("AccessDenied") {
                eprintln!("  ! cannot read {arn} to check it (access denied); the gateway's execution role will");
                Ok(())
            } else {
                Err(Error::failed(format!(
                    "{key}: {arn} cannot be read: {text}"
                )))
            }
        }
    }
}
