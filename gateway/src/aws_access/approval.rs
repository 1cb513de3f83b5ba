//! Who may decide a request (a write request or a held AWS call), and how long an approved write
//! lasts, pure: a decider is an approver of the project (or an admin), never the requester (same
//! subject or same email); the request must still be pending and within its own lifetime;
//! approved write lasts its duration from the approval, never past the end of the requester's
//! membership window. Time is an input.

use time::{Duration, OffsetDateTime};

use crate::config::aws_access::AwsProject;
use crate::store::aws_access::{GrantRow, GrantStatus};
use crate::store::aws_proxy::{CallApprovalRow, CallStatus};

/// Who decides.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    /// Their subject, when a person signed in.
    pub sub: Option<&'a str>,
    /// Their email, when known.
    pub email: Option<&'a str>,
    /// Their IdP groups; `None` for an Admin API caller, who needs no approver group.
    pub groups: Option<&'a [String]>,
}

/// Why a decision is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoDecision {
    /// The decider asked for it.
    #[error("you cannot approve your own request")]
    Own,
    /// The decider is in none of the project's approver groups.
    #[error("you are not an approver of this project")]
    NotApprover,
    /// The request was already decided (or lapsed): its status.
    #[error("this request is {0}, not pending")]
    NotPending(&'static str),
    /// The request is older than its own duration.
    #[error("this request was not decided in time and has expired")]
    Lapsed,
    /// The requester's time on the project is over.
    #[error("the requester's access to this project has ended")]
    WindowOver,
}

/// When a pending request lapses: its own duration after it was made.
pub fn lapses_at(g: &GrantRow) -> OffsetDateTime {
    g.requested_at + Duration::seconds(i64::from(g.duration_seconds))
}

/// Who asked for a request.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// Their subject.
    pub sub: &'a str,
    /// Their email, when known.
    pub email: Option<&'a str>,
}

/// Whether `who` is `requester`: the same subject, or the same email (any case).
pub fn is_requester(who: &Decider<'_>, requester: Requester<'_>) -> bool {
    let same_sub = who.sub.is_some_and(|s| s == requester.sub);
    let same_email = match (who.email, requester.email) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    same_sub || same_email
}

/// Whether `who` may decide a request of `requester` on `project` at all: an approver of the
/// project (or an admin), not the requester.
pub fn may_act(
    who: &Decider<'_>,
    project: &AwsProject,
    requester: Requester<'_>,
) -> Result<(), NoDecision> {
    if is_requester(who, requester) {
        return Err(NoDecision::Own);
    }
    if let Some(groups) = who.groups {
        if !groups.iter().any(|x| project.approvers.contains(x)) {
            return Err(NoDecision::NotApprover);
        }
    }
    Ok(())
}

/// Whether `who` may approve or deny `g`, a request on `project`, at `now`.
pub fn may_decide(
    who: &Decider<'_>,
    project: &AwsProject,
    g: &GrantRow,
    now: OffsetDateTime,
) -> Result<(), NoDecision> {
    let requester = Requester {
        sub: &g.user_sub,
        email: g.user_email.as_deref(),
    };
    may_act(who, project, requester)?;
    if g.status != GrantStatus::Pending {
        return Err(NoDecision::NotPending(g.status.as_str()));
    }
    if now >= lapses_at(g) {
        return Err(NoDecision::Lapsed);
    }
    if g.window_until.is_some_and(|w| w <= now) {
        return Err(NoDecision::WindowOver);
    }
    Ok(())
}

/// Whether `who` may approve or deny held call `c` on `project` at `now`: pending, and asked
/// less than `valid_seconds` ago.
pub fn may_decide_call(
    who: &Decider<'_>,
    project: &AwsProject,
    c: &CallApprovalRow,
    valid_seconds: u32,
    now: OffsetDateTime,
) -> Result<(), NoDecision> {
    let requester = Requester {
        sub: &c.call.user_sub,
        email: c.call.user_email.as_deref(),
    };
    may_act(who, project, requester)?;
    if c.status != CallStatus::Pending {
        return Err(NoDecision::NotPending(c.status.as_str()));
    }
    if crate::aws_proxy::hold::lapsed(c, valid_seconds, now) {
        return Err(NoDecision::Lapsed);
    }
    Ok(())
}

/// When write approved at `now` ends: the request's duration from now, never past the
/// requester's window end.
pub fn approved_until(g: &GrantRow, now: OffsetDateTime) -> OffsetDateTime {
    let end = now + Duration::seconds(i64::from(g.duration_seconds));
    match g.window_until {
        Some(w) if w < end => w,
        _ => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::aws_access::{example_project, Environment, WriteApproval};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

    fn request() -> GrantRow {
        GrantRow {
            id: "grt_1".into(),
            project: "payments".into(),
            user_sub: "ana".into(),
            user_email: Some("Ana@Example.com".into()),
            reason: "rotate the key".into(),
            duration_seconds: 3600,
            status: GrantStatus::Pending,
            requested_at: NOW - Duration::minutes(10),
            window_until: Some(NOW + Duration::days(1)),
            decided_at: None,
            decided_by: None,
            until: None,
        }
    }

    fn person<'a>(sub: &'a str, email: &'a str, groups: &'a [String]) -> Decider<'a> {
        Decider {
            sub: Some(sub),
            email: Some(email),
            groups: Some(groups),
        }
    }

    #[test]
    fn an_approver_decides_but_never_their_own_request() {
        let p = example_project(Environment::Prod, WriteApproval::Required);
        let leads = vec!["leads".to_owned()];
        let devs = vec!["payments".to_owned()];
        let g = request();
        assert_eq!(
            may_decide(&person("bo", "bo@example.com", &leads), &p, &g, NOW),
            Ok(())
        );
        assert_eq!(
            may_decide(&person("bo", "bo@example.com", &devs), &p, &g, NOW),
            Err(NoDecision::NotApprover)
        );
        // The same subject, or the same email under another subject: the requester.
        assert_eq!(
            may_decide(&person("ana", "other@example.com", &leads), &p, &g, NOW),
            Err(NoDecision::Own)
        );
        assert_eq!(
            may_decide(&person("ana-2", "ana@example.COM", &leads), &p, &g, NOW),
            Err(NoDecision::Own)
        );
        // An admin needs no approver group, and still is not the requester.
        let admin = Decider {
            sub: Some("root"),
            email: None,
            groups: None,
        };
        assert_eq!(may_decide(&admin, &p, &g, NOW), Ok(()));
        let admin_ana = Decider {
            sub: Some("ana"),
            ..admin
        };
        assert_eq!(may_decide(&admin_ana, &p, &g, NOW), Err(NoDecision::Own));
    }

    #[test]
    fn only_a_pending_request_within_its_duration_is_decided() {
        let p = example_project(Environment::Prod, WriteApproval::Required);
        let leads = vec!["leads".to_owned()];
        let bo = person("bo", "bo@example.com", &leads);
        let denied = GrantRow {
            status: GrantStatus::Denied,
            ..request()
        };
        assert_eq!(
            may_decide(&bo, &p, &denied, NOW),
            Err(NoDecision::NotPending("denied"))
        );
        let g = request();
        let lapse = lapses_at(&g);
        assert_eq!(lapse, NOW + Duration::minutes(50));
        assert_eq!(
            may_decide(&bo, &p, &g, lapse - Duration::seconds(1)),
            Ok(())
        );
        assert_eq!(may_decide(&bo, &p, &g, lapse), Err(NoDecision::Lapsed));
        let ended = GrantRow {
            window_until: Some(NOW),
            ..request()
        };
        assert_eq!(
            may_decide(&bo, &p, &ended, NOW),
            Err(NoDecision::WindowOver)
        );
    }

    #[test]
    fn approved_write_lasts_its_duration_up_to_the_window_end() {
        let g = request();
        assert_eq!(approved_until(&g, NOW), NOW + Duration::hours(1));
        let ending = GrantRow {
            window_until: Some(NOW + Duration::minutes(20)),
            ..request()
        };
        assert_eq!(approved_until(&ending, NOW), NOW + Duration::minutes(20));
        let open = GrantRow {
            window_until: None,
            ..request()
        };
        assert_eq!(approved_until(&open, NOW), NOW + Duration::hours(1));
    }

    #[test]
    fn a_held_call_is_decided_by_an_approver_while_pending_and_young() {
        use crate::store::aws_proxy::{CallApprovalRow, CallStatus};
        let p = example_project(Environment::Prod, WriteApproval::Required);
        let leads = vec!["leads".to_owned()];
        let c = CallApprovalRow {
            id: "cap_1".into(),
            call: crate::aws_proxy::held::HeldCall {
                fingerprint: "f".into(),
                project: "payments".into(),
                user_sub: "ana".into(),
                user_email: Some("ana@example.com".into()),
                service: "s3".into(),
                region: "eu-west-1".into(),
                operation: Some("PutObject".into()),
                action: Some("s3:PutObject".into()),
                params: serde_json::json!({}),
                reasons: vec![],
            },
            status: CallStatus::Pending,
            requested_at: NOW - Duration::minutes(10),
            decided_at: None,
            decided_by: None,
            until: None,
        };
        let bo = person("bo", "bo@example.com", &leads);
        assert_eq!(may_decide_call(&bo, &p, &c, 900, NOW), Ok(()));
        assert_eq!(
            may_decide_call(&person("x", "ANA@example.com", &leads), &p, &c, 900, NOW),
            Err(NoDecision::Own)
        );
        let devs = vec!["payments".to_owned()];
        assert_eq!(
            may_decide_call(&person("bo", "bo@example.com", &devs), &p, &c, 900, NOW),
            Err(NoDecision::NotApprover)
        );
        // Fifteen minutes after it was asked, it has lapsed.
        assert_eq!(
            may_decide_call(&bo, &p, &c, 900, NOW + Duration::minutes(5)),
            Err(NoDecision::Lapsed)
        );
        let denied = CallApprovalRow {
            status: CallStatus::Denied,
            ..c
        };
        assert_eq!(
            may_decide_call(&bo, &p, &denied, 900, NOW),
            Err(NoDecision::NotPending("denied"))
        );
    }
}
