//! The session signing secrets `deployer rotate-jwt` makes: one Secrets Manager secret per
//! rotation, named after the deployment, holding 64 random letters and digits (what the gateway
//! stack generates for its own).

use aws_sdk_secretsmanager::types::Tag;

use super::{err_text, sdk_err, Aws};
use crate::error::{Error, Result};

/// Length of a session secret, as the stack's own.
const LENGTH: usize = 64;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The start of the name of every session secret the deployer makes for `deployment`.
pub fn prefix(deployment: &str) -> String {
    format!("{deployment}-rotated-session-secret-")
}

/// Whether `arn` names a session secret the deployer made for `deployment` (and not the gateway
/// stack's own, which the stack deletes).
pub fn made_by_deployer(deployment: &str, arn: &str) -> bool {
    arn.contains(&format!(":secret:{}", prefix(deployment)))
}

/// 64 random letters and digits.
fn value() -> Result<String> {
    let mut out = String::with_capacity(LENGTH);
    let mut bytes = [0u8; 128];
    while out.len() < LENGTH {
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| Error::failed("cannot draw a random session secret"))?;
        // 62 * 4 = 248: bytes from 248 up would favour some characters, so they are dropped.
        for b in bytes.iter().filter(|b| **b < 248) {
            if out.len() == LENGTH {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// Makes a new session secret named after `deployment` and the time `stamp`; returns its ARN.
pub async fn create(aws: &Aws, deployment: &str, stamp: i64) -> Result<String> {
    let name = format!("{}{stamp}", prefix(deployment));
    let tags = [
        ("claude-gateway:deployment", deployment),
        ("claude-gateway:stack", "gateway"),
    ];
    let out = aws
        .secrets
        .create_secret()
        .name(&name)
        .description(format!(
            "claude-gateway session signing secret of {deployment} (deployer rotate-jwt)"
        ))
        .secret_string(value()?)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot create secret {name}"), e))?;
    out.arn()
        .map(str::to_owned)
        .ok_or_else(|| Error::failed(format!("Secrets Manager returned no ARN for {name}")))
}

/// Deletes a session secret: at once when `now`, else after Secrets Manager's shortest recovery
/// window (7 days). A secret already gone is fine.
pub async fn delete(aws: &Aws, arn: &str, now: bool) -> Result<()> {
    let req = aws.secrets.delete_secret().secret_id(arn);
    let req = if now {
        req.force_delete_without_recovery(true)
    } else {
        req.recovery_window_in_days(7)
    };
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e) if err_text(&e).contains("ResourceNotFoundException") => Ok(()),
        Err(e) => Err(sdk_err(&format!("cannot delete secret {arn}"), e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_session_secret_is_64_letters_and_digits_and_new_each_time() {
        let (a, b) = (value().unwrap(), value().unwrap());
        assert_eq!(a.len(), LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn only_the_deployers_own_secrets_are_its_to_delete() {
        let own = "arn:aws:secretsmanager:us-east-1:123456789012:secret:acme-rotated-session-secret-1767225600-AbCdEf";
        let stack = "arn:aws:secretsmanager:us-east-1:123456789012:secret:acme-gateway-session-secret-AbCdEf";
        assert!(made_by_deployer("acme", own));
        assert!(!made_by_deployer("acme", stack));
        assert!(!made_by_deployer("acm", own));
    }
}
