//! Secrets Manager: preflight of a bring-your-own OIDC client secret.

use super::{err_text, Aws};
use crate::error::{Error, Result};

/// Checks that the secret exists and holds a non-empty plain string.
pub async fn check_client_secret(aws: &Aws, arn: &str) -> Result<()> {
    match aws.secrets.get_secret_value().secret_id(arn).send().await {
        Ok(v) => {
            let value = v.secret_string().unwrap_or_default().trim();
            if value.is_empty() {
                return Err(Error::failed(format!("OIDC_CLIENT_SECRET_ARN: the secret {arn} is empty; store the client secret in it (a plain string)")));
            }
            if value.starts_with('{') {
                return Err(Error::failed(format!("OIDC_CLIENT_SECRET_ARN: the secret {arn} holds JSON; it must hold the bare client secret")));
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
                    "OIDC_CLIENT_SECRET_ARN: {arn} cannot be read: {text}"
                )))
            }
        }
    }
}
