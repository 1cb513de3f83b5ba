//! One tool call as it runs: which project and region it acts in, who it acts as there, each AWS
//! call it makes sent through the proxy's stages (decided, held, re-signed, masked, recorded
//! under the MCP session and the tool's name), every refusal turned into a sentence the model
//! can act on, and what the `mcp.tool` audit line reports of it.

use http_body_util::BodyExt;
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use super::args::str_arg;
use super::request::{aws_error, AwsRequest};
use super::Context;
use crate::aws_access::gateway_credential::Grantee;
use crate::aws_access::membership::standing;
use crate::aws_access::mfa;
use crate::aws_proxy::decide::Denial;
use crate::aws_proxy::fault::{Fault, Protocol};
use crate::aws_proxy::serve::{self, Mode, Principal, Serving, Trail, Unsigned};
use crate::config::aws_access::{Level, WriteApproval};
use crate::mcp::tool::ToolResult;

/// What became of a tool call, for the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It ran.
    Ok,
    /// An input error, an AWS error, or the gateway could not serve it.
    Error,
    /// Refused by the project's rules, membership or an approver.
    Denied,
    /// Held for a person's approval.
    Held,
    /// Over a rate limit.
    Throttled,
}

impl Verdict {
    /// The name in the audit line.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Error => "error",
            Verdict::Denied => "denied",
            Verdict::Held => "held",
            Verdict::Throttled => "throttled",
        }
    }
}

/// Where a tool's AWS calls go, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The project.
    pub project: String,
    /// The region.
    pub region: String,
    /// The developer on the project: their level (write only where a write could be allowed:
    /// every write held for a person, the project's writes not needing a grant, or a grant in
    /// force), recent MFA, the grant.
    pub who: Grantee,
}

/// A tool call in progress.
pub struct Run<'a, 'c> {
    cx: &'a Context<'c>,
    tool: &'static str,
    turn: Option<(String, Option<String>)>,
    /// The project it acted in.
    pub project: Option<String>,
    /// The IAM actions of its AWS calls.
    pub actions: Vec<String>,
    /// What it named: `s3://bucket/key`, a log group, ARNs.
    pub resources: Vec<String>,
    /// What became of it.
    pub verdict: Verdict,
}

impl<'a, 'c> Run<'a, 'c> {
    /// A run of `tool` for `cx`, asked for by model turn `turn` when known.
    pub fn new(
        cx: &'a Context<'c>,
        tool: &'static str,
        turn: Option<(String, Option<String>)>,
    ) -> Self {
        Self {
            cx,
            tool,
            turn,
            project: None,
            actions: Vec::new(),
            resources: Vec::new(),
            verdict: Verdict::Ok,
        }
    }

    /// The call's context.
    pub fn cx(&self) -> &Context<'c> {
        self.cx
    }

    /// A tool error (an input error, an AWS error), noted for the audit.
    pub fn fail(&mut self, why: impl Into<String>) -> ToolResult {
        self.verdict = Verdict::Error;
        ToolResult::error(why)
    }

    /// Notes `resource` for the audit.
    pub fn names(&mut self, resource: impl Into<String>) {
        let r = resource.into();
        if !self.resources.contains(&r) && self.resources.len() < 32 {
            self.resources.push(r);
        }
    }

    /// The project (argument `project`, or the caller's one project now) and region (argument
    /// `region`, or the project's first) the tool acts in, and who the caller is there.
    pub async fn target(&mut self, args: &Map<String, Value>) -> Result<Target, ToolResult> {
        let cx = self.cx;
        let state = cx.state;
        let now = cx.now;
        let Ok(gw) = Serving::of(state) else {
            return Err(self.fail(
                "AWS access through this gateway is not configured; ask the platform team.",
            ));
        };
        let identity = &cx.caller.identity;
        let project = match str_arg(args, "project") {
            Some(p) => p.to_owned(),
            None => {
                let entries = gw
                    .broker
                    .entries(&state.store, identity, None)
                    .await
                    .map_err(|_| {
                        self.fail(
                            "The gateway cannot read project membership now; try again shortly.",
                        )
                    })?;
                let mine: Vec<&str> = gw
                    .cfg
                    .projects
                    .iter()
                    .filter(|p| {
                        standing(
                            &entries,
                            &p.name,
                            identity.email.as_deref(),
                            &identity.groups,
                            now,
                        )
                        .is_ok()
                    })
                    .map(|p| p.name.as_str())
                    .collect();
                match mine.as_slice() {
                    [one] => (*one).to_owned(),
                    [] => {
                        self.verdict = Verdict::Denied;
                        return Err(ToolResult::error(
                            "You are not a member of any AWS project now; the aws_access tool shows your projects and when access opens.",
                        ));
                    }
                    many => {
                        return Err(self.fail(format!(
                            "You are a member of several projects ({}); say which with the `project` argument.",
                            many.join(", ")
                        )))
                    }
                }
            }
        };
        self.project = Some(project.clone());
        let Some(p) = gw.cfg.projects.iter().find(|p| p.name == project) else {
            self.verdict = Verdict::Denied;
            return Err(ToolResult::error(format!(
                "There is no project {project}; the aws_access tool lists yours."
            )));
        };
        let region = match str_arg(args, "region") {
            Some(r) => r.to_owned(),
            None => match p.regions.first() {
                Some(r) => r.clone(),
                None => {
                    return Err(self.fail(format!(
                        "Project {project} names no region; say which with the `region` argument."
                    )))
                }
            },
        };
        let mfa_at = identity
            .mfa_at
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        let mfa = mfa::recent(
            mfa_at,
            now,
            Duration::seconds(i64::from(gw.cfg.mfa_max_age_seconds)),
        );
        // As a gateway-only credential is issued: with every write held for a person, write
        // needs no grant; otherwise a project whose writes need approval needs one in force.
        let needs_grant = p.write_approval == WriteApproval::Required && !gw.settings.risk.writes;
        let (level, grant) = if needs_grant {
            match state
                .store
                .aws_write_grant(&identity.sub, &project, now)
                .await
            {
                Ok(Some(g)) => (Level::Write, Some(g.id)),
                Ok(None) => (Level::Read, None),
                Err(_) => {
                    return Err(
                        self.fail("The gateway cannot read write grants now; try again shortly.")
                    )
                }
            }
        } else {
            (Level::Write, None)
        };
        Ok(Target {
            project: project.clone(),
            region,
            who: Grantee {
                sub: identity.sub.clone(),
                email: identity.email.clone(),
                groups: identity.groups.clone(),
                project,
                level,
                mfa,
                grant,
            },
        })
    }

    /// Sends `req` through the proxy's stages for `target`; the answer's masked text, or the
    /// tool result to give instead (a refusal, a hold, an AWS error).
    pub async fn send(&mut self, target: &Target, req: AwsRequest) -> Result<String, ToolResult> {
        let state = self.cx.state;
        let gw = Serving::of(state).map_err(|f| self.refused(f, target, None))?;
        let principal = Principal {
            session_id: self.cx.session_id.to_owned(),
            who: target.who.clone(),
        };
        let mut trail = Trail::new(state.clock.now());
        trail.tool = Some(self.tool.to_owned());
        trail.turn = self.turn.clone();
        let protocol = Protocol::of(&req.service, &req.headers, req.query.as_deref());
        let outcome = serve::serve(
            &gw,
            &principal,
            Unsigned {
                method: &req.method,
                service: &req.service,
                region: &target.region,
                path: &req.path,
                query: req.query.clone(),
                headers: &req.headers,
                extra: &[],
                body: req.body.clone(),
            },
            Mode::Text,
            &mut trail,
        )
        .await;
        if let Some(a) = trail.op.action.clone() {
            if !self.actions.contains(&a) {
                self.actions.push(a);
            }
        }
        let approval = trail.approval.as_ref().map(|(id, _)| id.clone());
        serve::finish(state, trail, &outcome, protocol);
        match outcome {
            Ok(a) => {
                let status = a.status;
                let body = a
                    .response
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&body).into_owned();
                if status >= 400 {
                    return Err(self.fail(aws_error(status, &text)));
                }
                Ok(text)
            }
            Err(f) => Err(self.refused(f, target, approval)),
        }
    }

    /// A fault as the model reads it, noted for the audit.
    fn refused(&mut self, fault: Fault, target: &Target, approval: Option<String>) -> ToolResult {
        let (verdict, result) = refusal(fault, &target.project, approval);
        self.verdict = verdict;
        result
    }
}

/// What the model reads of `fault` on a call in `project` (with approval request `approval`,
/// when one was asked): a tool error saying what was refused, why and what to do; or, for a
/// call held for approval, a result that says so (not an error: nothing failed yet).
pub fn refusal(fault: Fault, project: &str, approval: Option<String>) -> (Verdict, ToolResult) {
    match fault {
        Fault::ApprovalPending { url, reasons } => {
            let id = approval.unwrap_or_default();
            (
                Verdict::Held,
                ToolResult::text(format!(
                    "Held for approval: this call needs a person's approval ({reasons}). Approval request {id} is waiting for an approver of project {project} at {url}. Nothing was done yet. Once it is approved, call this tool again with exactly the same arguments and it runs."
                )),
            )
        }
        Fault::Denied(Denial::ReadOnly { .. }) => (
            Verdict::Denied,
            ToolResult::error(format!(
                "Refused: this call writes, and you hold read access to project {project} now. Ask for write access with `claude-aws request --project {project}`, and call again once it is approved."
            )),
        ),
        Fault::Denied(Denial::MfaNeeded { .. }) => (
            Verdict::Denied,
            ToolResult::error(format!(
                "Refused: writes on project {project} need a recent sign-in with MFA. Sign in to this MCP server again with MFA (in Claude Code: /mcp, then authenticate), then call again."
            )),
        ),
        Fault::Denied(d) => (
            Verdict::Denied,
            ToolResult::error(format!(
                "Refused: {d}. The project's rules decide this; ask its owners if the action should be allowed."
            )),
        ),
        Fault::Membership(r) => (Verdict::Denied, ToolResult::error(format!("Refused: {r}."))),
        Fault::ApprovalDenied { approver } => (
            Verdict::Denied,
            ToolResult::error(format!(
                "Refused: {approver} denied this call. Do not retry it as it is."
            )),
        ),
        Fault::Throttled { .. } => (
            Verdict::Throttled,
            ToolResult::error(format!("Refused: {fault}. Wait a little, then call again.")),
        ),
        Fault::Unmaskable(why) => (
            Verdict::Error,
            ToolResult::error(format!(
                "The answer cannot be shown: {why}. Only text answers the gateway can mask whole are passed; narrow the call."
            )),
        ),
        Fault::NotConfigured => (
            Verdict::Error,
            ToolResult::error(
                "AWS access through this gateway is not configured; ask the platform team.",
            ),
        ),
        other => (Verdict::Error, ToolResult::error(format!("{other}."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_have_their_audit_names() {
        let names: Vec<&str> = [
            Verdict::Ok,
            Verdict::Error,
            Verdict::Denied,
            Verdict::Held,
            Verdict::Throttled,
        ]
        .iter()
        .map(|v| v.as_str())
        .collect();
        assert_eq!(names, ["ok", "error", "denied", "held", "throttled"]);
    }

    #[test]
    fn a_held_call_is_not_an_error_and_says_how_to_run_it() {
        let (v, r) = refusal(
            Fault::ApprovalPending {
                url: "https://gw/aws/approvals/cap_1".into(),
                reasons: "it writes".into(),
            },
            "payments",
            Some("cap_1".into()),
        );
        assert_eq!(v, Verdict::Held);
        assert!(!r.is_error);
        let text = &r.text[0];
        for part in [
            "Held for approval",
            "(it writes)",
            "cap_1",
            "https://gw/aws/approvals/cap_1",
            "project payments",
            "same arguments",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }

    #[test]
    fn refusals_are_errors_that_say_why_and_what_to_do() {
        let denied = Fault::Denied(Denial::NotAllowed {
            project: "payments".into(),
            action: "s3:PutObject".into(),
        });
        let (v, r) = refusal(denied, "payments", None);
        assert_eq!(v, Verdict::Denied);
        assert!(r.is_error);
        assert!(
            r.text[0].starts_with("Refused: s3:PutObject is not allowed on project payments."),
            "{}",
            r.text[0]
        );
        let (v, r) = refusal(
            Fault::Denied(Denial::ReadOnly {
                project: "payments".into(),
            }),
            "payments",
            None,
        );
        assert_eq!(v, Verdict::Denied);
        assert!(r.text[0].contains("claude-aws request --project payments"));
        let (v, r) = refusal(
            Fault::Throttled {
                class: "read",
                limit: 10,
                window_seconds: 60,
            },
            "p",
            None,
        );
        assert_eq!(v, Verdict::Throttled);
        assert!(r.is_error && r.text[0].contains("at most 10 in 60 seconds"));
        let (v, r) = refusal(
            Fault::ApprovalDenied {
                approver: "lee@example.com".into(),
            },
            "p",
            None,
        );
        assert_eq!(v, Verdict::Denied);
        assert!(r.text[0].contains("lee@example.com denied"));
        let (v, r) = refusal(Fault::Unmaskable("body is binary".into()), "p", None);
        assert_eq!(v, Verdict::Error);
        assert!(r.text[0].contains("body is binary"));
        let (v, r) = refusal(Fault::Upstream, "p", None);
        assert_eq!(v, Verdict::Error);
        assert!(r.is_error && !r.text[0].is_empty());
    }
}
