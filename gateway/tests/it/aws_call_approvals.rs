//! Single AWS calls held for approval, in a real PostgreSQL: one pending request per call
//! however many replicas ask at once; two deciders racing, one wins; a pending request lapses
//! after `valid_seconds`; and a held call waits for its decision: woken at once by a decision
//! on its replica, by polling for another replica's, or answered with the link when the wait
//! ends, the request left pending for a later approval.

use std::sync::Arc;
use std::time::Duration;

use claude_gateway::aws_proxy::held::HeldCall;
use claude_gateway::aws_proxy::hold::{self, Held};
use claude_gateway::clock::{ManualClock, SharedClock};
use claude_gateway::config::{self, MapEnv};
use claude_gateway::state::AppState;
use claude_gateway::store::aws_access::Decider;
use claude_gateway::store::aws_proxy::{CallDecision, CallStatus};
use claude_gateway::store::Store;
use claude_gateway::telemetry::audit::Audit;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::support::gateway::config as gateway_config;
use crate::support::pg::shared;

const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);
/// `aws_access.proxy.approval.valid_seconds` in these tests.
const VALID: u32 = 600;
/// Longer than any test runs: a wait or poll that must not be what ends a hold.
const NEVER: Duration = Duration::from_secs(3600);

/// A held `s3:PutObject` of ana's on payments; `key` tells calls apart.
pub(crate) fn call(key: &str) -> HeldCall {
    HeldCall {
        fingerprint: hold::fingerprint(&["ana", "payments", "eu-west-1", "s3:PutObject", key]),
        project: "payments".into(),
        user_sub: "ana".into(),
        user_email: Some("ana@example.com".into()),
        service: "s3".into(),
        region: "eu-west-1".into(),
        operation: Some("PutObject".into()),
        action: Some("s3:PutObject".into()),
        params: json!({"Bucket": "ledger", "Key": key, "SSECustomerKey": "[MASKED:secret]"}),
        reasons: vec!["a write".into(), "a prod project".into()],
    }
}

fn bo() -> Decider<'static> {
    Decider {
        by: "bo@example.com",
        client_ip: Some("10.0.0.2"),
    }
}

async fn actions(s: &Store) -> Vec<(String, String)> {
    s.aws_audit(1000, None)
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pending_request_per_call_however_many_replicas_ask() {
    let url = shared().new_db();
    let (one, two) = (
        crate::support::pg::migrated_store(&url).await,
        crate::support::pg::migrated_store(&url).await,
    );
    let c = call("a");
    // Two replicas ask for the same call at once: one request, both see it.
    let (a, b) = tokio::join!(
        one.aws_ask_call("cap_one", &c, NOW),
        two.aws_ask_call("cap_two", &c, NOW)
    );
    let ((a, a_new), (b, b_new)) = (a.unwrap(), b.unwrap());
    assert_eq!(a.id, b.id);
    assert!(a_new ^ b_new, "exactly one asked anew: {a_new} {b_new}");
    assert_eq!(a.status, CallStatus::Pending);
    assert_eq!(a.call.params["SSECustomerKey"], "[MASKED:secret]");
    assert_eq!(a.call.reasons, vec!["a write", "a prod project"]);
    // Asked again later, the same one; another call is another request.
    let (again, new) = one.aws_ask_call("cap_three", &c, NOW).await.unwrap();
    assert_eq!((again.id.as_str(), new), (a.id.as_str(), false));
    let (other, new) = one.aws_ask_call("cap_four", &call("b"), NOW).await.unwrap();
    assert_eq!((other.id.as_str(), new), ("cap_four", true));
    // Once decided, the same call asks anew.
    assert!(one
        .aws_decide_call(&a.id, CallDecision::Deny, bo(), VALID, NOW)
        .await
        .unwrap()
        .is_some());
    let (fresh, new) = one.aws_ask_call("cap_five", &c, NOW).await.unwrap();
    assert_eq!((fresh.id.as_str(), new), ("cap_five", true));
    assert_eq!(
        actions(&one).await,
        vec![
            ("aws.call_approval.requested".into(), a.id.clone()),
            ("aws.call_approval.requested".into(), "cap_four".into()),
            ("aws.call_approval.denied".into(), a.id.clone()),
            ("aws.call_approval.requested".into(), "cap_five".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deciders_racing_one_wins_and_an_approval_lets_only_that_call_through() {
    let url = shared().new_db();
    let (one, two) = (
        crate::support::pg::migrated_store(&url).await,
        crate::support::pg::migrated_store(&url).await,
    );
    let c = call("a");
    let (asked, _) = one.aws_ask_call("cap_1", &c, NOW).await.unwrap();
    let at = NOW + time::Duration::minutes(1);
    let (approve, deny) = tokio::join!(
        one.aws_decide_call(&asked.id, CallDecision::Approve, bo(), VALID, at),
        two.aws_decide_call(
            &asked.id,
            CallDecision::Deny,
            Decider {
                by: "cy@example.com",
                client_ip: None
            },
            VALID,
            at
        )
    );
    let won: Vec<_> = [approve.unwrap(), deny.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(won.len(), 1, "{won:?}");
    let row = one.aws_call_approval("cap_1").await.unwrap().unwrap();
    assert_eq!(row, won[0]);
    let decided = actions(&one)
        .await
        .into_iter()
        .filter(|(a, _)| a != "aws.call_approval.requested")
        .count();
    assert_eq!(decided, 1, "one decision in the trail");

    // Approved for the call and the user only, for `valid_seconds` from the decision.
    let c2 = call("b");
    one.aws_ask_call("cap_2", &c2, NOW).await.unwrap();
    let done = one
        .aws_decide_call("cap_2", CallDecision::Approve, bo(), VALID, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, CallStatus::Approved);
    assert_eq!(done.decided_by.as_deref(), Some("bo@example.com"));
    assert_eq!(
        done.until,
        Some(at + time::Duration::seconds(i64::from(VALID)))
    );
    let until = at + time::Duration::seconds(i64::from(VALID));
    let found = |fp: String, user: &'static str, when: OffsetDateTime| {
        let one = one.clone();
        async move {
            one.aws_call_approved(&fp, user, when)
                .await
                .unwrap()
                .map(|r| r.id)
        }
    };
    assert_eq!(
        found(
            c2.fingerprint.clone(),
            "ana",
            until - time::Duration::seconds(1)
        )
        .await,
        Some("cap_2".into())
    );
    assert_eq!(found(c2.fingerprint.clone(), "ana", until).await, None);
    assert_eq!(found(c2.fingerprint.clone(), "eve", at).await, None);
    assert_eq!(found(call("c").fingerprint, "ana", at).await, None);
    // Decided once, never again.
    assert!(one
        .aws_decide_call("cap_2", CallDecision::Deny, bo(), VALID, at)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_pending_request_lapses_after_valid_seconds() {
    let s = crate::support::pg::migrated_store(&shared().new_db()).await;
    let (asked, _) = s.aws_ask_call("cap_1", &call("a"), NOW).await.unwrap();
    let lapse = NOW + time::Duration::seconds(i64::from(VALID));
    assert!(s
        .aws_expire_call_approvals(lapse - time::Duration::seconds(1), VALID)
        .await
        .unwrap()
        .is_empty());
    // At its lapse, a decision no longer takes.
    assert!(s
        .aws_decide_call(&asked.id, CallDecision::Approve, bo(), VALID, lapse)
        .await
        .unwrap()
        .is_none());
    let gone = s.aws_expire_call_approvals(lapse, VALID).await.unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].status, CallStatus::Expired);
    assert_eq!(gone[0].decided_at, Some(lapse));
    assert!(s
        .aws_expire_call_approvals(lapse, VALID)
        .await
        .unwrap()
        .is_empty());
    // The call asks anew.
    let (fresh, new) = s.aws_ask_call("cap_2", &call("a"), lapse).await.unwrap();
    assert_eq!((fresh.id.as_str(), new), ("cap_2", true));
    assert_eq!(
        actions(&s).await,
        vec![
            ("aws.call_approval.requested".into(), "cap_1".into()),
            ("aws.call_approval.expired".into(), "cap_1".into()),
            ("aws.call_approval.requested".into(), "cap_2".into()),
        ]
    );
    // Retention: the lapsed one goes after its days, the pending one stays.
    let later = lapse + time::Duration::days(31);
    assert_eq!(s.aws_call_approvals_retention(later, 30).await.unwrap(), 1);
    assert!(s.aws_call_approval("cap_1").await.unwrap().is_none());
    assert!(s.aws_call_approval("cap_2").await.unwrap().is_some());
}

/// The state a replica holds, on database `url`, its clock at [`NOW`]; `extra` goes in
/// `aws_access`.
async fn replica_with(url: &str, extra: &str) -> (AppState, Audit, Arc<ManualClock>) {
    let yaml = gateway_config(
        8080,
        url,
        &crate::aws_grants::sections(&format!(
            "  proxy: {{approval: {{wait_seconds: 30, valid_seconds: {VALID}}}}}\n{extra}"
        )),
    );
    let env = MapEnv::new().with_var(config::ALLOW_LOOPBACK_VAR, "1");
    let loaded = config::load(&yaml, &env).unwrap();
    let audit = Audit::memory();
    let manual = Arc::new(ManualClock::new(NOW));
    let clock: SharedClock = manual.clone();
    let state = AppState::new(
        loaded,
        audit.clone(),
        clock,
        crate::support::pg::migrated_store(url).await,
        claude_gateway::upstream::Upstreams::none(),
    )
    .unwrap();
    (state, audit, manual)
}

async fn replica(url: &str) -> (AppState, Audit) {
    let (state, audit, _) = replica_with(url, "").await;
    (state, audit)
}

fn events(audit: &Audit, evt: &str) -> Vec<Value> {
    audit
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["evt"] == evt)
        .collect()
}

/// Until `state` has a call waiting (its hold has asked and registered).
async fn until_waiting(state: &AppState) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while state.call_waiters.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the hold registers its wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_hold_returns_approved_as_soon_as_the_decision_lands() {
    let (state, audit) = replica(&shared().new_db()).await;
    let c = call("a");
    // Neither the wait nor a poll can end it: only the decision's wake.
    let waiting = tokio::spawn({
        let (state, c) = (state.clone(), c.clone());
        async move { hold::hold_polling_every(&state, c, NEVER, NEVER).await }
    });
    until_waiting(&state).await;
    let requested = events(&audit, "aws.call_approval.requested");
    assert_eq!(requested.len(), 1);
    let id = requested[0]["approval"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cap_"), "{id}");
    assert_eq!(requested[0]["action"], "s3:PutObject");
    assert!(requested[0].get("params").is_none());
    let done = hold::decide(&state, &id, CallDecision::Approve, bo(), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, CallStatus::Approved);
    let held = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the decision ends the hold")
        .unwrap()
        .unwrap();
    assert_eq!(
        held,
        Held::Approved {
            id: id.clone(),
            approver: "bo@example.com".into()
        }
    );
    assert!(state.call_waiters.is_empty(), "the wait unregistered");
    let approved = events(&audit, "aws.call_approval.approved");
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["approver"], "bo@example.com");
    // The identical call is approved now; so the proxy lets it through without asking.
    assert_eq!(
        hold::approved(&state, &c.fingerprint, "ana", NOW)
            .await
            .unwrap(),
        Some((id, "bo@example.com".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_on_another_replica_reaches_the_hold_by_polling() {
    let url = shared().new_db();
    let (state, _) = replica(&url).await;
    let other = crate::support::pg::migrated_store(&url).await;
    let c = call("a");
    let waiting = tokio::spawn({
        let (state, c) = (state.clone(), c.clone());
        async move { hold::hold_polling_every(&state, c, NEVER, Duration::from_millis(20)).await }
    });
    until_waiting(&state).await;
    let (pending, new) = other.aws_ask_call("cap_other", &c, NOW).await.unwrap();
    assert!(!new, "the other replica joins the pending request");
    // Decided through the other replica's store: no wake here.
    other
        .aws_decide_call(&pending.id, CallDecision::Deny, bo(), VALID, NOW)
        .await
        .unwrap()
        .unwrap();
    let held = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("polling finds the decision")
        .unwrap()
        .unwrap();
    assert_eq!(
        held,
        Held::Denied {
            id: pending.id,
            approver: "bo@example.com".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_that_times_out_leaves_its_request_pending_for_a_later_approval() {
    let (state, audit) = replica(&shared().new_db()).await;
    let c = call("a");
    let first = hold::hold(&state, c.clone(), Duration::from_millis(10))
        .await
        .unwrap();
    let Held::TimedOut { id, url } = first else {
        panic!("{first:?}");
    };
    assert_eq!(url, format!("{}/aws/approvals/{id}", state.origin));
    // Retried before a decision: the same request, not announced again.
    let again = hold::hold(&state, c.clone(), Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(
        again,
        Held::TimedOut {
            id: id.clone(),
            url: url.clone()
        }
    );
    assert_eq!(events(&audit, "aws.call_approval.requested").len(), 1);
    assert!(hold::approved(&state, &c.fingerprint, "ana", NOW)
        .await
        .unwrap()
        .is_none());
    // Approved later: the identical call goes through until the approval ends.
    hold::decide(&state, &id, CallDecision::Approve, bo(), NOW)
        .await
        .unwrap()
        .unwrap();
    let end = NOW + time::Duration::seconds(i64::from(VALID));
    assert_eq!(
        hold::approved(
            &state,
            &c.fingerprint,
            "ana",
            end - time::Duration::seconds(1)
        )
        .await
        .unwrap(),
        Some((id.clone(), "bo@example.com".into()))
    );
    assert!(hold::approved(&state, &c.fingerprint, "ana", end)
        .await
        .unwrap()
        .is_none());
    // A decision taken twice: the second finds nothing pending.
    assert!(hold::decide(&state, &id, CallDecision::Deny, bo(), NOW)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_held_call_is_announced_by_name_and_link_without_its_parameters() {
    let (port, got) = crate::aws_grants::hook().await;
    let (state, _, _) = replica_with(
        &shared().new_db(),
        &format!("  webhook_url: http://127.0.0.1:{port}/hook\n"),
    )
    .await;
    let held = hold::hold(&state, call("a"), Duration::from_millis(10))
        .await
        .unwrap();
    let Held::TimedOut { url, .. } = held else {
        panic!("{held:?}");
    };
    let body = tokio::time::timeout(Duration::from_secs(20), got)
        .await
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["text"],
        format!(
            "ana@example.com asks to run s3:PutObject on project payments (prod) in eu-west-1\nApprove or deny: {url}"
        )
    );
}

/// A hold that joined a request late in its life, which lapses under the wait, asks anew and
/// waits on the new request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_lapsing_under_the_wait_is_asked_anew() {
    let url = shared().new_db();
    let (state, audit, clock) = replica_with(&url, "").await;
    let other = crate::support::pg::migrated_store(&url).await;
    let c = call("a");
    let old = NOW - time::Duration::seconds(i64::from(VALID) - 1);
    let (first, _) = other.aws_ask_call("cap_old", &c, old).await.unwrap();
    let waiting = tokio::spawn({
        let (state, c) = (state.clone(), c.clone());
        async move { hold::hold_polling_every(&state, c, NEVER, Duration::from_millis(20)).await }
    });
    until_waiting(&state).await;
    assert!(
        events(&audit, "aws.call_approval.requested").is_empty(),
        "joined"
    );
    clock.advance(time::Duration::seconds(1));
    let asked = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(e) = events(&audit, "aws.call_approval.requested").pop() {
                return e["approval"].as_str().unwrap().to_owned();
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the hold asks anew");
    assert_ne!(asked, first.id);
    let lapsed = other.aws_call_approval(&first.id).await.unwrap().unwrap();
    assert_eq!(lapsed.status, CallStatus::Expired);
    hold::decide(
        &state,
        &asked,
        CallDecision::Approve,
        bo(),
        state.clock.now(),
    )
    .await
    .unwrap()
    .unwrap();
    let held = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the decision ends the hold")
        .unwrap()
        .unwrap();
    assert_eq!(
        held,
        Held::Approved {
            id: asked,
            approver: "bo@example.com".into()
        }
    );
}
