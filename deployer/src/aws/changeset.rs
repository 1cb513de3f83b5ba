//! CloudFormation change sets: create one, read it as a readable list of changes, or preview
//! a deployment without executing anything.

use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, Tag};

use super::cfn::{describe, TemplateSource};
use super::{sdk_err, Aws};
use crate::error::{Error, Result};

fn cfn_params(params: &[(String, String)]) -> Vec<Parameter> {
    params
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect()
}

fn is_no_change(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// One line of a change set, readable.
#[derive(Debug, Clone)]
pub struct ChangeLine {
    /// Add, Modify, Remove, ...
    pub action: String,
    /// Logical id.
    pub logical_id: String,
    /// Resource type.
    pub resource_type: String,
    /// Replacement: True, False, Conditional.
    pub replacement: String,
}

/// A created change set.
pub struct ChangeSet {
    /// Its id.
    pub id: String,
    /// What it would change.
    pub changes: Vec<ChangeLine>,
    /// CloudFormation found nothing to change.
    pub empty: bool,
}

/// Creates a change set and waits until CloudFormation has computed it.
pub async fn create(
    aws: &Aws,
    name: &str,
    template: &TemplateSource,
    params: &[(String, String)],
    tags: &[(String, String)],
    iam: bool,
    create: bool,
) -> Result<ChangeSet> {
    let cs_name = format!("deployer-{}", std::process::id());
    let mut req = aws
        .cfn
        .create_change_set()
        .stack_name(name)
        .change_set_name(&cs_name)
        .change_set_type(if create {
            ChangeSetType::Create
        } else {
            ChangeSetType::Update
        })
        .set_parameters(Some(cfn_params(params)))
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ));
    req = match template {
        TemplateSource::Body(b) => req.template_body(b),
        TemplateSource::Url(u) => req.template_url(u),
    };
    if iam {
        req = req.capabilities(Capability::CapabilityIam);
    }
    let out = req
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot create a change set for {name}"), e))?;
    let id = out.id().unwrap_or(&cs_name).to_owned();
    loop {
        let d = aws
            .cfn
            .describe_change_set()
            .change_set_name(&id)
            .stack_name(name)
            .send()
            .await
            .map_err(|e| sdk_err(&format!("cannot read the change set of {name}"), e))?;
        let status = d.status().cloned();
        let reason = d.status_reason().unwrap_or_default().to_owned();
        match status {
            Some(ChangeSetStatus::CreateComplete) => {
                let changes = d
                    .changes()
                    .iter()
                    .filter_map(|c| c.resource_change())
                    .map(|r| ChangeLine {
                        action: r
                            .action()
                            .map(|a| a.as_str().to_owned())
                            .unwrap_or_default(),
                        logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
                        resource_type: r.resource_type().unwrap_or_default().to_owned(),
                        replacement: r
                            .replacement()
                            .map(|a| a.as_str().to_owned())
                            .unwrap_or_default(),
                    })
                    .collect();
                return Ok(ChangeSet {
                    id,
                    changes,
                    empty: false,
                });
            }
            Some(ChangeSetStatus::Failed) if is_no_change(&reason) => {
                return Ok(ChangeSet {
                    id,
                    changes: Vec::new(),
                    empty: true,
                });
            }
            Some(ChangeSetStatus::Failed) => {
                let _ = aws
                    .cfn
                    .delete_change_set()
                    .change_set_name(&id)
                    .stack_name(name)
                    .send()
                    .await;
                return Err(Error::failed(format!(
                    "CloudFormation refused the change set for {name}: {reason}"
                )));
            }
            _ => tokio::time::sleep(aws.poll.min(std::time::Duration::from_secs(2))).await,
        }
    }
}

/// Prints a change set's lines.
pub fn print_changes(changes: &[ChangeLine]) {
    for c in changes {
        let replace = match c.replacement.as_str() {
            "True" => "  (replacement)",
            "Conditional" => "  (may be replaced)",
            _ => "",
        };
        println!(
            "      {:<8} {:<40} {}{replace}",
            c.action, c.resource_type, c.logical_id
        );
    }
}

/// Asks CloudFormation what deploying would change, without changing anything. `None` when the
/// stack does not exist yet (everything would be created).
pub async fn preview(
    aws: &Aws,
    name: &str,
    template: &TemplateSource,
    params: &[(String, String)],
    tags: &[(String, String)],
    iam: bool,
) -> Result<Option<Vec<ChangeLine>>> {
    let exists = describe(aws, name)
        .await?
        .filter(|s| s.status != "REVIEW_IN_PROGRESS");
    if exists.is_none() {
        return Ok(None);
    }
    let cs = create(aws, name, template, params, tags, iam, false).await?;
    let _ = aws
        .cfn
        .delete_change_set()
        .change_set_name(&cs.id)
        .stack_name(name)
        .send()
        .await;
    Ok(Some(cs.changes))
}
