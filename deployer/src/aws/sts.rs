//! STS: who the credentials belong to.

use super::{err_text, Aws};
use crate::error::{Error, Result};

/// The account and principal of the credentials in use.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Account id.
    pub account: String,
    /// Caller ARN.
    pub arn: String,
}

/// Calls GetCallerIdentity; an expired SSO session or missing credentials become one clear error.
pub async fn identity(aws: &Aws) -> Result<Identity> {
    let out = aws.sts.get_caller_identity().send().await.map_err(|e| {
        let text = err_text(&e);
        let hint = if text.contains("expired") || text.to_ascii_lowercase().contains("sso") {
            "the SSO session has expired: run `aws sso login` (with your AWS_PROFILE) and try again"
        } else if text.contains("dns error") || text.contains("failed to lookup") {
            "STS is unreachable in this Region: check AWS_REGION in the profile and that the Region is enabled for the account"
        } else if text.contains("InvalidClientTokenId") || text.contains("SignatureDoesNotMatch") {
            "the access key was refused (wrong, deleted, or not valid in this Region)"
        } else if text.contains("credentials") {
            "no usable AWS credentials: set AWS_PROFILE, run `aws sso login`, or export keys"
        } else {
            "the credentials were refused"
        };
        Error::failed(format!("AWS credentials check failed: {hint}\n  ({text})"))
    })?;
    Ok(Identity {
        account: out.account().unwrap_or_default().to_owned(),
        arn: out.arn().unwrap_or_default().to_owned(),
    })
}
