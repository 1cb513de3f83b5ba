//! CloudFormation stacks: read them, deploy them through change sets, follow progress, delete.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::TemplateStage;

use super::changeset::{self, print_changes};
use super::progress::{elapsed, Tail};
use super::recovery;
use super::{err_text, sdk_err, Aws};
use crate::error::{Error, Result};

/// What the deployer needs to know about a stack.
#[derive(Debug, Clone)]
pub struct StackInfo {
    /// Status, e.g. `UPDATE_COMPLETE`.
    pub status: String,
    /// Why it is in that status, when CloudFormation says.
    pub reason: Option<String>,
    /// Outputs.
    pub outputs: BTreeMap<String, String>,
    /// Parameters as deployed.
    pub parameters: BTreeMap<String, String>,
    /// Stack tags (CloudFormation passes them on to every resource that takes tags).
    pub tags: BTreeMap<String, String>,
}

impl StackInfo {
    /// Whether CloudFormation is still working on it.
    pub fn busy(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS") && self.status != "REVIEW_IN_PROGRESS"
    }
}

/// Where a template comes from.
#[derive(Debug, Clone)]
pub enum TemplateSource {
    /// Inline body.
    Body(String),
    /// An S3 URL (templates over the inline limit).
    Url(String),
}

/// The outcome of [`deploy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployed {
    /// Nothing differed.
    NoChanges,
    /// Created.
    Created,
    /// Updated.
    Updated,
}

/// Describes a stack; `None` when it does not exist (or was deleted).
pub async fn describe(aws: &Aws, name: &str) -> Result<Option<StackInfo>> {
    match aws.cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out.stacks().first().map(|s| StackInfo {
            status: s
                .stack_status()
                .map(|x| x.as_str().to_owned())
                .unwrap_or_default(),
            reason: s.stack_status_reason().map(str::to_owned),
            outputs: s
                .outputs()
                .iter()
                .filter_map(|o| {
                    Some((
                        o.output_key()?.to_owned(),
                        o.output_value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            parameters: s
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.parameter_key()?.to_owned(),
                        p.parameter_value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            tags: s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
        })),
        Err(e) if err_text(&e).contains("does not exist") => Ok(None),
        Err(e) => Err(sdk_err(&format!("cannot describe stack {name}"), e)),
    }
}

async fn current_template(aws: &Aws, name: &str) -> Option<String> {
    aws.cfn
        .get_template()
        .stack_name(name)
        .template_stage(TemplateStage::Original)
        .send()
        .await
        .ok()
        .and_then(|t| t.template_body().map(str::to_owned))
}

/// Creates or updates stack `name` through a change set, following its events live. An update
/// that changes nothing is a success. A failure reports the first failed resource and the state
/// the stack was left in.
pub async fn deploy(
    aws: &Aws,
    label: &str,
    name: &str,
    template: &TemplateSource,
    params: &[(String, String)],
    tags: &[(String, String)],
    iam: bool,
) -> Result<Deployed> {
    let mut existing = describe(aws, name).await?;
    if let Some(s) = &existing {
        if s.busy() {
            return Err(Error::failed(format!(
                "{name} is {}: wait for CloudFormation to finish, then run again",
                s.status
            )));
        }
        if s.status == "UPDATE_ROLLBACK_FAILED" || s.status == "DELETE_FAILED" {
            return Err(stuck(aws, name, &s.status).await);
        }
        if s.status == "ROLLBACK_COMPLETE" || s.status == "ROLLBACK_FAILED" {
            println!("  {label}: {name} is {} after a failed creation; deleting it before creating it again", s.status);
            delete(aws, label, name).await?;
            existing = None;
        }
    }
    let create = existing
        .as_ref()
        .is_none_or(|s| s.status == "REVIEW_IN_PROGRESS");
    if let (false, Some(s), TemplateSource::Body(body)) = (create, &existing, template) {
        let same_params = params.iter().all(|(k, v)| s.parameters.get(k) == Some(v));
        let same_tags = tags.iter().all(|(k, v)| s.tags.get(k) == Some(v));
        if same_params
            && same_tags
            && current_template(aws, name).await.as_deref() == Some(body.as_str())
        {
            println!("  {label}: no changes");
            return Ok(Deployed::NoChanges);
        }
    }
    let cs = changeset::create(aws, name, template, params, tags, iam, create).await?;
    if cs.empty {
        let _ = aws
            .cfn
            .delete_change_set()
            .change_set_name(&cs.id)
            .stack_name(name)
            .send()
            .await;
        println!("  {label}: no changes");
        return Ok(Deployed::NoChanges);
    }
    println!(
        "  {label}: {} {name} ({} resource change(s))",
        if create { "creating" } else { "updating" },
        cs.changes.len()
    );
    print_changes(&cs.changes);
    let mut tail = Tail::default();
    if !create {
        tail.skip(&events(aws, name).await?);
    }
    let start = Instant::now();
    aws.cfn
        .execute_change_set()
        .change_set_name(&cs.id)
        .stack_name(name)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot execute the change set of {name}"), e))?;
    let final_status = follow(aws, label, name, start, &mut tail).await?;
    if final_status == "CREATE_COMPLETE" || final_status == "UPDATE_COMPLETE" {
        println!("  {label}: {final_status} in {}", elapsed(start).trim());
        return Ok(if create {
            Deployed::Created
        } else {
            Deployed::Updated
        });
    }
    Err(failure(aws, name, &final_status, &tail).await)
}

/// The resources of `name` in a failed state (what `--resources-to-skip` and
/// `--retain-resources` take); empty when they cannot be read.
pub async fn failed_resources(aws: &Aws, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    // A stack holds at most 500 resources: a few pages at most.
    for _ in 0..10 {
        let Ok(page) = aws
            .cfn
            .list_stack_resources()
            .stack_name(name)
            .set_next_token(token.take())
            .send()
            .await
        else {
            break;
        };
        for r in page.stack_resource_summaries() {
            if r.resource_status()
                .is_some_and(|st| st.as_str().ends_with("_FAILED"))
            {
                out.push(r.logical_resource_id().unwrap_or_default().to_owned());
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    out
}

/// The guidance for a stack stuck in `status`, with the resources that failed, or `None`.
pub async fn guidance(aws: &Aws, name: &str, status: &str) -> Option<String> {
    recovery::guidance(name, &aws.region, status, &[])?;
    let failed = failed_resources(aws, name).await;
    recovery::guidance(name, &aws.region, status, &failed)
}

async fn stuck(aws: &Aws, name: &str, status: &str) -> Error {
    let help = guidance(aws, name, status).await.unwrap_or_default();
    Error::failed(format!("stack {name} is {status}\n{help}"))
}

async fn failure(aws: &Aws, name: &str, status: &str, tail: &Tail) -> Error {
    let first = match &tail.first_failure {
        Some((id, kind, reason)) => format!("first failure: {id} ({kind}): {reason}"),
        None => "no resource reported a reason".to_owned(),
    };
    let state = match status {
        "ROLLBACK_COMPLETE" => "rolled back; the next run deletes and re-creates it",
        "UPDATE_ROLLBACK_COMPLETE" => "rolled back to the previous working version",
        s if s.ends_with("_FAILED") => {
            "left in a failed state; see the CloudFormation console before retrying"
        }
        _ => "not in a completed state",
    };
    let help = guidance(aws, name, status)
        .await
        .map(|g| format!("\n{g}"))
        .unwrap_or_default();
    Error::failed(format!(
        "stack {name} ended {status}: {state}\n  {first}{help}"
    ))
}

async fn events(aws: &Aws, name: &str) -> Result<Vec<aws_sdk_cloudformation::types::StackEvent>> {
    match aws
        .cfn
        .describe_stack_events()
        .stack_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.stack_events().to_vec()),
        Err(e) if err_text(&e).contains("does not exist") => Ok(Vec::new()),
        Err(e) => Err(sdk_err(&format!("cannot read the events of {name}"), e)),
    }
}

/// Polls until the stack leaves its in-progress state, printing events; returns the final status
/// (`DELETE_COMPLETE` when the stack is gone), or an error once `aws.follow_timeout` has passed.
async fn follow(
    aws: &Aws,
    label: &str,
    name: &str,
    start: Instant,
    tail: &mut Tail,
) -> Result<String> {
    let observe = || async {
        let status = describe(aws, name).await?.map(|s| s.status);
        Ok((status, events(aws, name).await?))
    };
    let limits = (aws.poll, aws.follow_timeout);
    follow_until(label, name, &aws.region, start, limits, tail, observe).await
}

/// What one look at a stack returns: its status (`None` once it is gone), then its events.
type Observed = (
    Option<String>,
    Vec<aws_sdk_cloudformation::types::StackEvent>,
);

/// The loop of [`follow`], with the look at the stack passed in: every `poll` until the status
/// leaves `_IN_PROGRESS`, giving up once `timeout` has passed since `start`.
async fn follow_until<F, Fut>(
    label: &str,
    name: &str,
    region: &str,
    start: Instant,
    (poll, timeout): (Duration, Duration),
    tail: &mut Tail,
    mut observe: F,
) -> Result<String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Observed>>,
{
    loop {
        // Status first: the events read after it include every event up to that status.
        let (status, events) = observe().await?;
        tail.show(label, start, &events);
        let Some(status) = status else {
            return Ok("DELETE_COMPLETE".into());
        };
        if !status.ends_with("_IN_PROGRESS") {
            return Ok(status);
        }
        if start.elapsed() >= timeout {
            return Err(Error::failed(recovery::still_working(
                name, region, &status, timeout,
            )));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Deletes a stack and waits until it is gone.
pub async fn delete(aws: &Aws, label: &str, name: &str) -> Result<()> {
    let Some(s) = describe(aws, name).await? else {
        println!("  {label}: {name} does not exist");
        return Ok(());
    };
    if s.status == "DELETE_COMPLETE" {
        return Ok(());
    }
    let mut tail = Tail::default();
    tail.skip(&events(aws, name).await?);
    let start = Instant::now();
    println!("  {label}: deleting {name}");
    aws.cfn
        .delete_stack()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot delete {name}"), e))?;
    let status = follow(aws, label, name, start, &mut tail).await?;
    if status == "DELETE_COMPLETE" {
        println!("  {label}: deleted in {}", elapsed(start).trim());
        Ok(())
    } else {
        Err(failure(aws, name, &status, &tail).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn observed(status: &str) -> Result<Observed> {
        Ok((Some(status.to_owned()), Vec::new()))
    }

    #[tokio::test]
    async fn following_ends_at_the_final_status() {
        let looks = Cell::new(0);
        let observe = || {
            looks.set(looks.get() + 1);
            let status = if looks.get() < 3 {
                "UPDATE_IN_PROGRESS"
            } else {
                "UPDATE_COMPLETE"
            };
            async move { observed(status) }
        };
        let limits = (Duration::ZERO, Duration::from_secs(3600));
        let mut tail = Tail::default();
        let status = follow_until(
            "gateway",
            "acme-gateway",
            "us-east-1",
            Instant::now(),
            limits,
            &mut tail,
            observe,
        )
        .await
        .unwrap();
        assert_eq!((status.as_str(), looks.get()), ("UPDATE_COMPLETE", 3));
    }

    #[tokio::test]
    async fn following_stops_waiting_at_its_limit() {
        let looks = Cell::new(0);
        let observe = || {
            looks.set(looks.get() + 1);
            async { observed("UPDATE_IN_PROGRESS") }
        };
        // A stack that never finishes, followed with no time to spare: one look, then the error.
        let limits = (Duration::ZERO, Duration::ZERO);
        let mut tail = Tail::default();
        let run = follow_until(
            "gateway",
            "acme-gateway",
            "us-east-1",
            Instant::now(),
            limits,
            &mut tail,
            observe,
        );
        let err = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("following must give up by itself")
            .unwrap_err()
            .to_string();
        assert_eq!(looks.get(), 1);
        assert!(err.contains("stopped following acme-gateway"), "{err}");
        assert!(err.contains("aws cloudformation cancel-update-stack --region us-east-1 --stack-name acme-gateway"), "{err}");
    }

    #[tokio::test]
    async fn a_deleted_stack_ends_following() {
        let observe = || async { Ok((None, Vec::new())) };
        let limits = (Duration::ZERO, Duration::ZERO);
        let mut tail = Tail::default();
        let status = follow_until(
            "vpn",
            "acme-vpn",
            "us-east-1",
            Instant::now(),
            limits,
            &mut tail,
            observe,
        )
        .await
        .unwrap();
        assert_eq!(status, "DELETE_COMPLETE");
    }
}
