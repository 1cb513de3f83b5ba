//! Agent access in a real PostgreSQL: members and write requests, each change audited in its
//! transaction; one pending request per developer and project; two deciders racing, one wins;
//! a pending request lapses after its own duration; the write grant in force is the latest-ending.

use claude_gateway::config::aws_access::Level;
use claude_gateway::store::aws_access::{
    Added, Decider, Decision, GrantStatus, MemberRow, NewGrant, Requested,
};
use claude_gateway::store::Store;
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

fn request(id: &str, sub: &str, seconds: i32) -> NewGrant {
    NewGrant {
        id: id.into(),
        project: "payments".into(),
        user_sub: sub.into(),
        user_email: Some(format!("{sub}@example.com")),
        reason: "rotate the key".into(),
        duration_seconds: seconds,
        window_until: None,
        client_ip: Some("10.0.0.1".into()),
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

#[tokio::test]
async fn members_are_added_and_removed_with_their_trail() {
    let s = crate::support::pg::fresh_store().await;
    let m = MemberRow {
        id: "awm_1".into(),
        project: "payments".into(),
        groups: vec![],
        emails: vec!["ana@example.com".into()],
        level: Level::Write,
        from: Some(NOW),
        until: Some(NOW + time::Duration::days(30)),
        created_at: NOW,
        created_by: "admin-key:ops".into(),
    };
    assert_eq!(
        s.aws_add_member(&m, NOW).await.unwrap(),
        Added::Member(m.clone())
    );
    assert_eq!(
        s.aws_member_entries(None, Some("ana@example.com"), &[])
            .await
            .unwrap(),
        vec![m.entry()]
    );
    assert_eq!(
        s.aws_remove_member("awm_1", "admin-key:ops", NOW)
            .await
            .unwrap(),
        Some(m)
    );
    assert_eq!(
        s.aws_remove_member("awm_1", "admin-key:ops", NOW)
            .await
            .unwrap(),
        None
    );
    assert!(s
        .aws_member_entries(None, Some("ana@example.com"), &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        actions(&s).await,
        vec![
            ("aws.member.added".into(), "awm_1".into()),
            ("aws.member.removed".into(), "awm_1".into())
        ]
    );
}

/// A credential request reads only the entries naming its developer on its project, not every
/// member the gateway holds (up to 10,000 of up to 200 names each, on every request).
#[tokio::test]
async fn a_membership_read_holds_only_the_entries_naming_the_developer() {
    let s = crate::support::pg::fresh_store().await;
    let member = |id: &str, project: &str, groups: &[&str], emails: &[&str]| MemberRow {
        id: id.into(),
        project: project.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        emails: emails.iter().map(|e| (*e).to_owned()).collect(),
        level: Level::Read,
        from: None,
        until: None,
        created_at: NOW,
        created_by: "admin-key:ops".into(),
    };
    let rows = [
        member("awm_1_mail", "payments", &[], &["ana@example.com"]),
        member("awm_2_group", "payments", &["payments-devs"], &[]),
        member("awm_3_other_project", "billing", &["payments-devs"], &[]),
        member(
            "awm_other_people",
            "payments",
            &["ops"],
            &["bo@example.com"],
        ),
    ];
    for m in &rows {
        assert!(matches!(
            s.aws_add_member(m, NOW).await.unwrap(),
            Added::Member(_)
        ));
    }
    let groups = vec!["payments-devs".to_owned(), "everyone".to_owned()];
    let on_payments = s
        .aws_member_entries(Some("payments"), Some("Ana@Example.com"), &groups)
        .await
        .unwrap();
    assert_eq!(on_payments, vec![rows[0].entry(), rows[1].entry()]);
    let anywhere = s
        .aws_member_entries(None, Some("ana@example.com"), &groups)
        .await
        .unwrap();
    assert_eq!(
        anywhere,
        vec![rows[0].entry(), rows[1].entry(), rows[2].entry()]
    );
    let stranger = s
        .aws_member_entries(None, Some("cy@example.com"), &["contractors".to_owned()])
        .await
        .unwrap();
    assert!(stranger.is_empty(), "{stranger:?}");
    assert!(s
        .aws_member_entries(None, None, &[])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_approvers_racing_one_wins_and_the_grant_is_in_force() {
    let s = crate::support::pg::fresh_store().await;
    assert!(matches!(
        s.aws_request_grant(&request("grt_a", "ana", 3600), NOW)
            .await
            .unwrap(),
        Requested::Created(g) if g.status == GrantStatus::Pending
    ));
    assert_eq!(
        s.aws_request_grant(&request("grt_b", "ana", 3600), NOW)
            .await
            .unwrap(),
        Requested::AlreadyPending
    );
    let at = NOW + time::Duration::minutes(5);
    let until = at + time::Duration::hours(1);
    let decide = |by: &'static str, d: Decision| {
        let s = s.clone();
        tokio::spawn(async move {
            s.aws_decide_grant(
                "grt_a",
                d,
                Decider {
                    by,
                    client_ip: None,
                },
                at,
            )
            .await
            .unwrap()
        })
    };
    let (a, b) = tokio::join!(
        decide("lead@example.com", Decision::Approve { until }),
        decide("other@example.com", Decision::Deny)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.is_some() != b.is_some(),
        "exactly one decision wins: {a:?} {b:?}"
    );
    let stored = s.aws_grant("grt_a").await.unwrap().unwrap();
    let grant = s.aws_write_grant("ana", "payments", at).await.unwrap();
    if a.is_some() {
        assert_eq!(stored.status, GrantStatus::Approved);
        assert_eq!(stored.decided_by.as_deref(), Some("lead@example.com"));
        assert_eq!(
            grant.map(|g| (g.id, g.until)),
            Some(("grt_a".into(), until))
        );
    } else {
        assert_eq!(stored.status, GrantStatus::Denied);
        assert_eq!(grant, None);
    }
    // Only one decision reached the trail.
    let decided: Vec<_> = actions(&s)
        .await
        .into_iter()
        .filter(|(a, _)| a == "aws.grant.approved" || a == "aws.grant.denied")
        .collect();
    assert_eq!(decided.len(), 1);
}

#[tokio::test]
async fn grants_end_lapse_and_are_revoked() {
    let s = crate::support::pg::fresh_store().await;
    let hour = time::Duration::hours(1);
    let who = Decider {
        by: "admin-key:ops",
        client_ip: None,
    };
    s.aws_request_grant(&request("grt_1", "ana", 1800), NOW)
        .await
        .unwrap();
    // Not approved within its own 30 minutes: it lapses once, and cannot be approved after.
    let later = NOW + time::Duration::minutes(30);
    let approve = Decision::Approve {
        until: later + hour,
    };
    assert_eq!(
        s.aws_decide_grant("grt_1", approve, who, later)
            .await
            .unwrap(),
        None
    );
    let gone = s.aws_expire_pending(later).await.unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].status, GrantStatus::Expired);
    assert!(s.aws_expire_pending(later).await.unwrap().is_empty());
    // A new request is allowed once the old one lapsed.
    s.aws_request_grant(&request("grt_2", "ana", 3600), later)
        .await
        .unwrap();
    s.aws_request_grant(&request("grt_3", "bo", 3600), later)
        .await
        .unwrap();
    let short = Decision::Approve {
        until: later + hour / 2,
    };
    assert!(s
        .aws_decide_grant("grt_2", approve, who, later)
        .await
        .unwrap()
        .is_some());
    // The latest-ending approved grant is the one in force; a revoked one no longer is.
    assert_eq!(
        s.aws_write_grant("ana", "payments", later)
            .await
            .unwrap()
            .map(|g| g.id),
        Some("grt_2".into())
    );
    assert!(s
        .aws_decide_grant("grt_3", short, who, later)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        s.aws_write_grant("bo", "payments", later + hour)
            .await
            .unwrap(),
        None
    );
    assert!(s
        .aws_decide_grant("grt_2", Decision::Revoke, who, later)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        s.aws_write_grant("ana", "payments", later).await.unwrap(),
        None
    );
    assert_eq!(
        s.aws_grants(Some(GrantStatus::Approved), Some("payments"), 10)
            .await
            .unwrap()
            .iter()
            .map(|g| g.id.as_str())
            .collect::<Vec<_>>(),
        vec!["grt_3"]
    );
    assert_eq!(s.aws_user_grants("ana", NOW, 10).await.unwrap().len(), 2);
    // The trail says each step, never the reason's text.
    let trail = s.aws_audit(1000, None).await.unwrap();
    assert_eq!(trail.len(), 7, "{trail:?}");
    assert!(!serde_json::to_string(&trail)
        .unwrap()
        .contains("rotate the key"));
    assert_eq!(trail[0]["action"], "aws.grant.revoked");
    assert_eq!(trail[0]["detail"]["reason_len"], 14);
}

/// The agent-access trail and decided requests are kept `admin.audit_retention_days`: older
/// rows go, pending requests and anything newer stay, and a window of millennia keeps all.
#[tokio::test]
async fn retention_removes_the_old_trail_and_long_decided_requests() {
    let s = crate::support::pg::fresh_store().await;
    let old = NOW - time::Duration::days(400);
    let lead = Decider {
        by: "lead@example.com",
        client_ip: None,
    };
    for (id, sub, at) in [
        ("grt_old_denied", "ana", old),
        ("grt_old_approved", "bo", old),
        ("grt_old_pending", "cy", old),
        ("grt_new_denied", "dee", NOW),
    ] {
        assert!(matches!(
            s.aws_request_grant(&request(id, sub, 3600), at)
                .await
                .unwrap(),
            Requested::Created(_)
        ));
    }
    let decided = [
        ("grt_old_denied", Decision::Deny, old),
        (
            "grt_old_approved",
            Decision::Approve {
                until: old + time::Duration::hours(1),
            },
            old,
        ),
        ("grt_new_denied", Decision::Deny, NOW),
    ];
    for (id, d, at) in decided {
        assert!(s.aws_decide_grant(id, d, lead, at).await.unwrap().is_some());
    }
    let trail_before = s.aws_audit(1000, None).await.unwrap().len();
    assert_eq!(trail_before, 7, "four requests, three decisions");
    assert_eq!(
        s.aws_retention(NOW, u32::MAX).await.unwrap(),
        0,
        "a window before the earliest time keeps everything"
    );
    assert_eq!(s.aws_retention(NOW, 365).await.unwrap(), 5 + 2);
    for (id, kept) in [
        ("grt_old_denied", false),
        ("grt_old_approved", false),
        ("grt_old_pending", true),
        ("grt_new_denied", true),
    ] {
        assert_eq!(s.aws_grant(id).await.unwrap().is_some(), kept, "{id}");
    }
    assert_eq!(
        actions(&s).await,
        vec![
            ("aws.grant.requested".into(), "grt_new_denied".into()),
            ("aws.grant.denied".into(), "grt_new_denied".into()),
        ]
    );
}
