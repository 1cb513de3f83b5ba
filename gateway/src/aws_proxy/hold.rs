//! Holding a single call for a person's approval: the call asks (or joins the pending request
//! for the same call, whichever replica asked it), the approvers are told when it is newly
//! asked, and the call waits a bounded time for the decision. A decision on this replica wakes
//! its waiters at once ([`super::held::Waiters`]); one taken on another replica is seen by
//! polling the row. An approval lets the identical call through until it ends ([`approved`]).

use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::held::HeldCall;
use crate::aws_access::grants::approval_url;
use crate::config::aws_proxy::CallApproval;
use crate::state::AppState;
use crate::store::aws_access::Decider;
use crate::store::aws_proxy::{CallApprovalRow, CallDecision, CallStatus};
use crate::store::StoreError;

/// How often a waiting call reads its request for a decision taken on another replica.
pub const POLL: Duration = Duration::from_secs(1);
/// How many times a held call asks again when the request it waits on lapses under it.
const ASKS: usize = 2;

/// How a held call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Approved by `approver`.
    Approved {
        /// The request, `cap_…`.
        id: String,
        /// Who approved.
        approver: String,
    },
    /// Denied by `approver`.
    Denied {
        /// The request, `cap_…`.
        id: String,
        /// Who denied.
        approver: String,
    },
    /// Not decided within the wait; the request stays pending.
    TimedOut {
        /// The request, `cap_…`.
        id: String,
        /// Where an approver decides it.
        url: String,
    },
}

/// A call's fingerprint: hex SHA-256 over its `fields` (user, project, region, action, method,
/// path, query, body hash), each length-prefixed so no two lists of fields share one.
pub fn fingerprint(fields: &[&str]) -> String {
    let mut joined = String::new();
    for f in fields {
        joined.push_str(&f.len().to_string());
        joined.push(':');
        joined.push_str(f);
    }
    crate::auth::codes::sha256_hex(&joined)
}

/// `aws_access.proxy.approval`, or its defaults.
pub(crate) fn settings(state: &AppState) -> CallApproval {
    state
        .config
        .aws_access
        .as_ref()
        .and_then(|a| a.proxy.as_ref())
        .map(|p| p.approval.clone())
        .unwrap_or_default()
}

/// An `aws.call_approval.*` event's fields: never the parameters.
pub fn event(c: &CallApprovalRow, approver: Option<&str>, client_ip: Option<&str>) -> Value {
    json!({
        "approval": c.id, "project": c.call.project, "user": c.call.user_sub, "email": c.call.user_email,
        "service": c.call.service, "region": c.call.region, "operation": c.call.operation, "action": c.call.action,
        "reasons": c.call.reasons, "approver": approver, "client_ip": client_ip,
    })
}

/// Turns lapsed pending held calls to `expired`, with an `aws.call_approval.expired` event each.
pub async fn expire(state: &AppState, now: OffsetDateTime) -> Result<(), StoreError> {
    let valid = settings(state).valid_seconds;
    for c in state.store.aws_expire_call_approvals(now, valid).await? {
        state
            .audit
            .emit("aws.call_approval.expired", now, event(&c, None, None));
    }
    Ok(())
}

/// Whether pending `c` has lapsed at `now`.
pub fn lapsed(c: &CallApprovalRow, valid_seconds: u32, now: OffsetDateTime) -> bool {
    now >= c.requested_at + time::Duration::seconds(i64::from(valid_seconds))
}

/// An approval in force for this exact call (status approved, until > now), if any: its id
/// and approver.
pub async fn approved(
    state: &AppState,
    fingerprint: &str,
    user_sub: &str,
    now: OffsetDateTime,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(state
        .store
        .aws_call_approved(fingerprint, user_sub, now)
        .await?
        .map(|c| (c.id, c.decided_by.unwrap_or_default())))
}

/// Decides held call `id` (compare-and-set, audited) and wakes its waiters on this replica.
/// `None`: it is no longer pending (decided by someone else, or lapsed).
pub async fn decide(
    state: &AppState,
    id: &str,
    decision: CallDecision,
    who: Decider<'_>,
    now: OffsetDateTime,
) -> Result<Option<CallApprovalRow>, StoreError> {
    let valid = settings(state).valid_seconds;
    let Some(done) = state
        .store
        .aws_decide_call(id, decision, who, valid, now)
        .await?
    else {
        return Ok(None);
    };
    let evt = match decision {
        CallDecision::Approve => "aws.call_approval.approved",
        CallDecision::Deny => "aws.call_approval.denied",
    };
    state
        .audit
        .emit(evt, now, event(&done, Some(who.by), who.client_ip));
    state.call_waiters.wake(&done.id);
    Ok(Some(done))
}

/// Asks (or joins the pending request for the same fingerprint), tells the approvers (webhook)
/// when newly asked, and waits up to `wait` for a decision. Check [`approved`] first: an
/// approval in force lets the call through without asking again.
pub async fn hold(state: &AppState, call: HeldCall, wait: Duration) -> Result<Held, StoreError> {
    hold_polling_every(state, call, wait, POLL).await
}

/// [`hold`], reading the request every `poll` for a decision taken on another replica.
pub async fn hold_polling_every(
    state: &AppState,
    call: HeldCall,
    wait: Duration,
    poll: Duration,
) -> Result<Held, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    let valid = settings(state).valid_seconds;
    let mut last = None;
    for _ in 0..ASKS {
        let now = state.clock.now();
        expire(state, now).await?;
        let id = crate::auth::codes::token(16)
            .map(|t| format!("cap_{t}"))
            .map_err(|e| StoreError::Unavailable(sqlx::Error::Protocol(e.to_string())))?;
        let (asked, new) = state.store.aws_ask_call(&id, &call, now).await?;
        let url = approval_url(&state.origin, &asked.id);
        if new {
            state.audit.emit(
                "aws.call_approval.requested",
                now,
                event(&asked, None, None),
            );
            let project = state
                .config
                .aws_access
                .as_ref()
                .and_then(|a| a.projects.iter().find(|p| p.name == asked.call.project));
            if let Some(p) = project {
                crate::aws_access::webhook::announce_call(state, p, &asked, &url);
            }
        }
        // Registered before the first read: a decision after it wakes this wait.
        let mut waiting = state.call_waiters.watch(&asked.id);
        loop {
            match state.store.aws_call_approval(&asked.id).await? {
                Some(c) if c.status == CallStatus::Approved => {
                    return Ok(Held::Approved {
                        id: c.id,
                        approver: c.decided_by.unwrap_or_default(),
                    })
                }
                Some(c) if c.status == CallStatus::Denied => {
                    return Ok(Held::Denied {
                        id: c.id,
                        approver: c.decided_by.unwrap_or_default(),
                    })
                }
                Some(c)
                    if c.status == CallStatus::Pending && !lapsed(&c, valid, state.clock.now()) => {
                }
                // Lapsed under the wait (it was joined late in its life): ask anew.
                _ => break,
            }
            tokio::select! {
                () = waiting.woken() => {}
                () = tokio::time::sleep(poll) => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Ok(Held::TimedOut { id: asked.id, url });
                }
            }
        }
        last = Some((asked.id, url));
    }
    let (id, url) = last.unwrap_or_default();
    Ok(Held::TimedOut { id, url })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_tells_fields_apart_however_they_are_cut() {
        let a = fingerprint(&["ana", "payments", "eu-west-1", "s3:PutObject"]);
        assert_eq!(a.len(), 64);
        assert_eq!(
            a,
            fingerprint(&["ana", "payments", "eu-west-1", "s3:PutObject"])
        );
        // The same characters cut differently are another call.
        assert_ne!(
            fingerprint(&["ab", "c"]),
            fingerprint(&["a", "bc"]),
            "length-prefixed"
        );
        assert_ne!(fingerprint(&["1:a"]), fingerprint(&["1", "a"]));
    }
}
