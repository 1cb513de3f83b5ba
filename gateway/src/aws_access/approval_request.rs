//! The two kinds of request an approver decides on the approval page, behind one shape: a
//! developer's write request (`grt_…`) and a single AWS call held for approval (`cap_…`). The
//! page's protections are the same for both; what differs (reading one, showing it, who may
//! decide it when, and recording the decision) is here.

use time::OffsetDateTime;

use super::approval::{approved_until, may_decide, may_decide_call, Decider, NoDecision};
use super::grants::{event, expire};
use crate::aws_proxy::hold::settings;
use crate::clock::rfc3339;
use crate::config::aws_access::{AwsProject, Environment};
use crate::http::pages::escape;
use crate::state::AppState;
use crate::store::aws_access::{self as rows, Decision, GrantRow};
use crate::store::aws_proxy::{CallApprovalRow, CallDecision};
use crate::store::StoreError;

/// The most characters of a held call's parameters the page shows.
pub const PARAMS_CHARS: usize = 16 * 1024;

/// A request an approver decides.
#[derive(Debug, Clone)]
pub enum Request {
    /// A write request.
    Grant(GrantRow),
    /// A held AWS call.
    Call(CallApprovalRow),
}

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The store did not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Lapsed write requests could not be expired first.
    #[error("write requests could not be expired")]
    Expiry,
}

fn environment(p: &AwsProject) -> &'static str {
    match p.environment {
        Environment::Prod => "prod",
        Environment::Nonprod => "nonprod",
    }
}

fn row(k: &str, v: &str) -> String {
    format!("<dt>{k}</dt><dd>{}</dd>", escape(v))
}

impl Request {
    /// Request `id` (by its prefix), after lapsed ones of its kind expired.
    pub async fn load(state: &AppState, id: &str) -> Result<Option<Request>, LoadError> {
        let now = state.clock.now();
        if id.starts_with("cap_") {
            crate::aws_proxy::hold::expire(state, now).await?;
            Ok(state.store.aws_call_approval(id).await?.map(Request::Call))
        } else {
            expire(state, now).await.map_err(|_| LoadError::Expiry)?;
            Ok(state.store.aws_grant(id).await?.map(Request::Grant))
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        match self {
            Request::Grant(g) => &g.id,
            Request::Call(c) => &c.id,
        }
    }

    /// Its project's name.
    pub fn project(&self) -> &str {
        match self {
            Request::Grant(g) => &g.project,
            Request::Call(c) => &c.call.project,
        }
    }

    /// The page's title.
    pub fn title(&self) -> &'static str {
        match self {
            Request::Grant(_) => "Write access request",
            Request::Call(_) => "AWS call approval",
        }
    }

    /// What it asks for, in a few words: `write access` or the call's action.
    fn what(&self) -> String {
        match self {
            Request::Grant(_) => "Write access".to_owned(),
            Request::Call(c) => match (&c.call.action, &c.call.operation) {
                (Some(a), _) => format!("The call {a}"),
                (None, Some(o)) => format!("The call {}:{o}", c.call.service),
                (None, None) => format!("The unnamed {} call", c.call.service),
            },
        }
    }

    /// The request, as the approver reads it (every value escaped).
    pub fn details(&self, p: &AwsProject) -> String {
        match self {
            Request::Grant(g) => [
                row("Project", &p.name),
                row("Environment", environment(p)),
                row(
                    "Requested by",
                    g.user_email.as_deref().unwrap_or(&g.user_sub),
                ),
                row("Reason", &g.reason),
                row("Duration", &format!("{} minutes", g.duration_seconds / 60)),
                row("Requested at", &rfc3339(g.requested_at)),
                row("Status", g.status.as_str()),
            ]
            .concat(),
            Request::Call(c) => {
                let unnamed = || "(not named)".to_owned();
                let mut params = serde_json::to_string_pretty(&c.call.params).unwrap_or_default();
                if params.chars().count() > PARAMS_CHARS {
                    params = params.chars().take(PARAMS_CHARS).collect();
                    params.push_str("\n… (cut)");
                }
                [
                    row("Project", &p.name),
                    row("Environment", environment(p)),
                    row(
                        "Requested by",
                        c.call.user_email.as_deref().unwrap_or(&c.call.user_sub),
                    ),
                    row("Service", &c.call.service),
                    row(
                        "Operation",
                        &c.call.operation.clone().unwrap_or_else(unnamed),
                    ),
                    row("IAM action", &c.call.action.clone().unwrap_or_else(unnamed)),
                    row("Region", &c.call.region),
                    row("Why it is held", &c.call.reasons.join("; ")),
                    format!(
                        "<dt>Parameters (secrets masked)</dt><dd><pre id=\"params\">{}</pre></dd>",
                        escape(&params)
                    ),
                    row("Requested at", &rfc3339(c.requested_at)),
                    row("Status", c.status.as_str()),
                ]
                .concat()
            }
        }
    }

    /// Whether `who` may approve or deny it, on project `p`, at `now`.
    pub fn may_decide(
        &self,
        state: &AppState,
        who: &Decider<'_>,
        p: &AwsProject,
        now: OffsetDateTime,
    ) -> Result<(), NoDecision> {
        match self {
            Request::Grant(g) => may_decide(who, p, g, now),
            Request::Call(c) => may_decide_call(who, p, c, settings(state).valid_seconds, now),
        }
    }

    /// Approves or denies it (compare-and-set, audited, with its event), and says what happened
    /// in a sentence; `None`: it was decided in the meantime.
    pub async fn decide(
        &self,
        state: &AppState,
        approve: bool,
        who: rows::Decider<'_>,
        now: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        let project = self.project();
        let until = match self {
            Request::Grant(g) => {
                let decision = if approve {
                    Decision::Approve {
                        until: approved_until(g, now),
                    }
                } else {
                    Decision::Deny
                };
                let Some(done) = state
                    .store
                    .aws_decide_grant(&g.id, decision, who, now)
                    .await?
                else {
                    return Ok(None);
                };
                let evt = if approve {
                    "aws.grant.approved"
                } else {
                    "aws.grant.denied"
                };
                state
                    .audit
                    .emit(evt, now, event(&done, Some(who.by), who.client_ip));
                done.until
            }
            Request::Call(c) => {
                let decision = if approve {
                    CallDecision::Approve
                } else {
                    CallDecision::Deny
                };
                let done = crate::aws_proxy::hold::decide(state, &c.id, decision, who, now).await?;
                let Some(done) = done else {
                    return Ok(None);
                };
                done.until
            }
        };
        let what = self.what();
        let to = match self {
            Request::Grant(_) => "to",
            Request::Call(_) => "on",
        };
        Ok(Some(match until {
            Some(until) if approve => format!(
                "{what} {to} project {project} is approved until {}.",
                rfc3339(until)
            ),
            _ => match self {
                Request::Grant(_) => {
                    format!("The request for write access to project {project} is denied.")
                }
                Request::Call(_) => format!("{what} on project {project} is denied."),
            },
        }))
    }
}
