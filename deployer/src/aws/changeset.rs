//! CloudFormation change sets: create one, read it as a readable list of changes, or preview
//! a deployment without executing anything.

use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, Tag};

use super::cfn::{describe, TemplateSource};
use super::{sdk_err, Aws};
use crate::error::{Error, Result};

fn cfn_params(params: &[(String, String)], keep: &[String]) -> Vec<Parameter> {
    let given = params.iter().map(|(k, v)| {
        Parameter::builder()
            .parameter_key(k)
            .parameter_value(v)
            .build()
    });
    let kept = keep.iter().map(|k| {
        Parameter::builder()
            .parameter_key(k)
            .use_previous_value(true)
            .build()
    });
    given.chain(kept).collect()
}

/// The parameters stack `existing` has that `given` does not set and the new template still
/// declares (name and default), with a value other than that default: they keep the values the
/// stack has (set out of band, such as a PostgreSQL major version or an extra Bedrock ARN, or by
/// an earlier deployment) instead of falling back to the template's defaults on every run.
pub fn kept(
    existing: &std::collections::BTreeMap<String, String>,
    given: &[(String, String)],
    declared: &[(String, Option<String>)],
) -> Vec<String> {
    existing
        .iter()
        .filter(|(k, _)| !given.iter().any(|(g, _)| g == *k))
        .filter(|(k, v)| {
            declared
                .iter()
                .any(|(d, default)| d == *k && default.as_deref() != Some(v.as_str()))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The parameters `template` declares and their defaults, as CloudFormation reads it.
async fn declared(aws: &Aws, template: &TemplateSource) -> Result<Vec<(String, Option<String>)>> {
    let req = aws.cfn.get_template_summary();
    let req = match template {
        TemplateSource::Body(b) => req.template_body(b),
        TemplateSource::Url(u) => req.template_url(u),
    };
    let out = req
        .send()
        .await
        .map_err(|e| sdk_err("cannot read the template's parameters", e))?;
    Ok(out
        .parameters()
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_owned(),
                p.default_value().map(str::to_owned),
            ))
        })
        .collect())
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
    // Unique per run: in a container every run may have the same process id, and a change set
    // left by an interrupted run would make the name taken.
    let cs_name = format!(
        "deployer-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let keep = if create {
        Vec::new()
    } else {
        match describe(aws, name).await? {
            Some(s) => kept(&s.parameters, params, &declared(aws, template).await?),
            None => Vec::new(),
        }
    };
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
        .set_parameters(Some(cfn_params(params, &keep)))
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
    let deadline = std::time::Instant::now() + aws.follow_timeout;
    let discard = || async {
        let _ = aws
            .cfn
            .delete_change_set()
            .change_set_name(&id)
            .stack_name(name)
            .send()
            .await;
    };
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
                discard().await;
                return Err(Error::failed(format!(
                    "CloudFormation refused the change set for {name}: {reason}"
                )));
            }
            Some(
                ChangeSetStatus::DeleteComplete
                | ChangeSetStatus::DeleteFailed
                | ChangeSetStatus::DeleteInProgress
                | ChangeSetStatus::DeletePending,
            ) => {
                return Err(Error::failed(format!(
                    "the change set for {name} was deleted before it was ready (by another deployer run?); run again"
                )));
            }
            _ if std::time::Instant::now() > deadline => {
                discard().await;
                return Err(Error::failed(format!(
                    "the change set for {name} was not ready within {} minutes; run again (DEPLOYER_FOLLOW_TIMEOUT_MINUTES sets the wait)",
                    aws.follow_timeout.as_secs() / 60
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_the_profile_does_not_set_keep_the_stacks_values() {
        let existing: std::collections::BTreeMap<String, String> = [
            ("TaskCpu", "512"),
            ("DBEngineMajorVersion", "17"),
            ("AlbIdleTimeoutSeconds", "900"),
            ("Removed", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let given = [("TaskCpu".to_owned(), "1024".to_owned())];
        let declared: Vec<(String, Option<String>)> = [
            ("TaskCpu", Some("512")),
            ("DBEngineMajorVersion", Some("16")),
            ("AlbIdleTimeoutSeconds", Some("3600")),
            ("New", None),
        ]
        .into_iter()
        .map(|(k, d)| (k.to_owned(), d.map(str::to_owned)))
        .collect();
        // Given ones are set; a parameter the new template dropped, or one the stack never had,
        // is not asked for.
        assert_eq!(
            kept(&existing, &given, &declared),
            ["AlbIdleTimeoutSeconds", "DBEngineMajorVersion"]
        );
        // A value that is the template's default needs no keeping.
        let mut at_default = existing.clone();
        at_default.insert("AlbIdleTimeoutSeconds".into(), "3600".into());
        assert_eq!(
            kept(&at_default, &given, &declared),
            ["DBEngineMajorVersion"]
        );
    }
}
