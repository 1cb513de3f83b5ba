//! The deployment's state in the account: one Secrets Manager secret, named after the
//! deployment and tagged like its stacks, holding the CA and certificates the deployer made and
//! the ARNs it imported them under. Every operator and machine finds the same copy by name, so a
//! second checkout reuses the CA and the imported certificates instead of making new ones.

use aws_sdk_secretsmanager::types::Tag;

use super::{err_text, sdk_err, Aws};
use crate::error::{Error, Result};
use crate::state::Shared;

/// Secrets Manager's limit on a secret's value, in bytes.
const MAX_BYTES: usize = 65_536;

/// The secret's name for `deployment`.
pub fn name(deployment: &str) -> String {
    format!("{deployment}-deployer-state")
}

/// The account's copy, or `None` when the deployment has none yet.
pub async fn read(aws: &Aws, deployment: &str) -> Result<Option<Shared>> {
    let id = name(deployment);
    match aws.secrets.get_secret_value().secret_id(&id).send().await {
        Ok(v) => {
            let text = v.secret_string().unwrap_or_default();
            let shared: Shared = serde_json::from_str(text).map_err(|e| {
                Error::failed(format!(
                    "the deployment's state in Secrets Manager secret {id} is damaged: {e}"
                ))
            })?;
            if shared.version > Shared::VERSION {
                return Err(Error::failed(format!(
                    "the deployment's state in {id} was written by a newer deployer (layout {}); upgrade the deployer",
                    shared.version
                )));
            }
            Ok(Some(shared))
        }
        Err(e) => {
            let text = err_text(&e);
            if text.contains("ResourceNotFoundException") {
                Ok(None)
            } else if text.contains("marked for deletion") {
                Err(Error::failed(format!(
                    "the deployment's state secret {id} is scheduled for deletion: restore it (aws secretsmanager restore-secret --secret-id {id}) or delete it for good (aws secretsmanager delete-secret --secret-id {id} --force-delete-without-recovery), then run again"
                )))
            } else {
                Err(Error::failed(format!(
                    "cannot read the deployment's state from Secrets Manager secret {id}: {text}"
                )))
            }
        }
    }
}

fn text(deployment: &str, shared: &Shared) -> Result<String> {
    let text = serde_json::to_string(shared)
        .map_err(|e| Error::failed(format!("cannot write the state: {e}")))?;
    if text.len() > MAX_BYTES {
        return Err(Error::failed(format!(
            "the state of {deployment} is {} bytes, over Secrets Manager's {MAX_BYTES}",
            text.len()
        )));
    }
    Ok(text)
}

/// Creates the account's copy. `Ok(false)` when the deployment already has one (another
/// operator made it first): read it and use it instead.
pub async fn create(aws: &Aws, deployment: &str, shared: &Shared) -> Result<bool> {
    let id = name(deployment);
    let tags = [
        ("claude-gateway:deployment", deployment),
        ("claude-gateway:stack", "deployer-state"),
    ];
    let sent = aws
        .secrets
        .create_secret()
        .name(&id)
        .description(format!(
            "claude-gateway deployer state of {deployment}: private CA, certificates, imported ARNs"
        ))
        .secret_string(text(deployment, shared)?)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .send()
        .await;
    match sent {
        Ok(_) => Ok(true),
        Err(e) if err_text(&e).contains("ResourceExistsException") => Ok(false),
        Err(e) => Err(sdk_err(&format!("cannot create secret {id}"), e)),
    }
}

/// Replaces the account's copy.
pub async fn write(aws: &Aws, deployment: &str, shared: &Shared) -> Result<()> {
    let id = name(deployment);
    aws.secrets
        .put_secret_value()
        .secret_id(&id)
        .secret_string(text(deployment, shared)?)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot write secret {id}"), e))?;
    Ok(())
}

/// Deletes the account's copy at once, with no recovery window (so the deployment's name can be
/// used again right away). `Ok(false)` when there was none.
pub async fn delete(aws: &Aws, deployment: &str) -> Result<bool> {
    let id = name(deployment);
    match aws
        .secrets
        .delete_secret()
        .secret_id(&id)
        .force_delete_without_recovery(true)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if err_text(&e).contains("ResourceNotFoundException") => Ok(false),
        Err(e) => Err(sdk_err(&format!("cannot delete secret {id}"), e)),
    }
}
