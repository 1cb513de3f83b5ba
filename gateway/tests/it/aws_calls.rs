//! AWS call recordings in a real PostgreSQL: many rows in one insert, the list narrowed by user,
//! project, session and decision and paged newest first without bodies, one call with its body,
//! the retention sweep (recordings, decided call approvals, old call counts), and the queue that
//! writes them: drained at shutdown, bounded, and dropping (counted) what the store refuses.

use std::str::FromStr;
use std::time::Duration;

use claude_gateway::aws_proxy::mask::{mask, Rules};
use claude_gateway::aws_proxy::operation::Class;
use claude_gateway::aws_proxy::record::{CallRecord, Decision};
use claude_gateway::aws_proxy::recorder::{Recorder, BATCH};
use claude_gateway::config::aws_access::Level;
use claude_gateway::store::aws_proxy::calls::CallFilter;
use claude_gateway::store::Store;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use time::macros::datetime;
use time::OffsetDateTime;

use crate::support::pg::shared;

const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

/// A recorded `secretsmanager:GetSecretValue` by `sub` in `project`, its answer masked.
pub(crate) fn call(sub: &str, project: &str, session: &str, decision: Decision) -> CallRecord {
    let answer = br#"{"Name":"db","SecretString":"hunter2-the-db-password"}"#;
    let m = mask(
        answer,
        Some("application/x-amz-json-1.1"),
        &Rules::default(),
    )
    .unwrap();
    CallRecord {
        at: NOW,
        session_id: session.into(),
        user_sub: sub.into(),
        user_email: Some(format!("{sub}@Example.com")),
        project: project.into(),
        level: Level::Read,
        grant_id: None,
        service: "secretsmanager".into(),
        region: "eu-west-1".into(),
        operation: Some("GetSecretValue".into()),
        action: Some("secretsmanager:GetSecretValue".into()),
        class: Class::Read,
        params: json!({"SecretId": "db"}),
        decision,
        reason: (decision == Decision::Denied).then(|| "not in the project's actions".into()),
        approval_id: None,
        approver: None,
        status: Some(200),
        request_bytes: 20,
        response_bytes: 60,
        duration_ms: 12,
        masked: m.counts,
        body: Some(String::from_utf8_lossy(&m.body).into_owned()),
        body_truncated: false,
        turn_request_id: Some("req_1".into()),
        prompt_fingerprint: None,
        tool: None,
    }
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn calls_are_written_in_one_batch_listed_narrowed_paged_and_read() {
    let s = crate::support::pg::fresh_store().await;
    let mut rows = Vec::new();
    for i in 0..6 {
        let (sub, project) = if i % 2 == 0 {
            ("ana", "payments")
        } else {
            ("bo", "search")
        };
        let decision = if i == 5 {
            Decision::Denied
        } else {
            Decision::Allowed
        };
        let mut row = call(sub, project, &format!("AGWSESSION{}", i / 3), decision);
        if i == 5 {
            row.tool = Some("s3_read".into());
        }
        rows.push(row);
    }
    assert_eq!(s.aws_insert_calls(&rows).await.unwrap(), 6);
    assert_eq!(s.aws_insert_calls(&[]).await.unwrap(), 0);

    let all = s.aws_calls(&CallFilter::default(), 100).await.unwrap();
    assert_eq!(all.len(), 6);
    let all_ids = ids(&all);
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let newest = &all[0];
    assert!(newest.get("body").is_none(), "a list has no bodies");
    assert_eq!(newest["type"], "aws_call");
    assert_eq!(
        newest["user"],
        json!({"sub": "bo", "email": "bo@Example.com"})
    );
    assert_eq!(newest["decision"], "denied");
    assert_eq!(newest["reason"], "not in the project's actions");
    assert_eq!(newest["masked"], json!({"secret": 1}));
    assert_eq!(newest["class"], "read");
    assert_eq!(newest["level"], "read");
    assert_eq!(newest["params"], json!({"SecretId": "db"}));
    assert_eq!(newest["status"], 200);
    assert_eq!(newest["at"], "2026-12-06T10:00:00Z");
    assert_eq!(newest["tool"], "s3_read", "the MCP tool that made the call");
    assert_eq!(
        all[1]["tool"],
        Value::Null,
        "a call through the proxy names none"
    );

    let narrowed = |f: CallFilter<'static>| {
        let s = s.clone();
        async move { s.aws_calls(&f, 100).await.unwrap().len() }
    };
    let f = CallFilter::default;
    assert_eq!(
        narrowed(CallFilter {
            user: Some("ana"),
            ..f()
        })
        .await,
        3
    );
    assert_eq!(
        narrowed(CallFilter {
            user: Some("BO@example.com"),
            ..f()
        })
        .await,
        3,
        "by email, in any case"
    );
    assert_eq!(
        narrowed(CallFilter {
            project: Some("search"),
            session_id: Some("AGWSESSION1"),
            ..f()
        })
        .await,
        2
    );
    assert_eq!(
        narrowed(CallFilter {
            decision: Some("denied"),
            ..f()
        })
        .await,
        1
    );
    assert_eq!(
        narrowed(CallFilter {
            project: Some("nothing"),
            ..f()
        })
        .await,
        0
    );

    // Pages of two, each after the last id of the one before.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .aws_calls(
                &CallFilter {
                    after_id: after,
                    ..f()
                },
                2,
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        seen.extend(ids(&page));
        after = seen.last().copied();
    }
    assert_eq!(seen, all_ids);

    let one = s.aws_call(all_ids[0]).await.unwrap().unwrap();
    let body = one["body"].as_str().unwrap();
    assert!(body.contains("[MASKED:secret]"), "{body}");
    assert!(!body.contains("hunter2"), "{body}");
    assert_eq!(one["turn_request_id"], "req_1");
    assert!(s.aws_call(-1).await.unwrap().is_none());
}

async fn count(s: &Store, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(s.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn retention_removes_old_recordings_decided_approvals_and_past_counts() {
    let s = crate::support::pg::fresh_store().await;
    let old = NOW - time::Duration::days(91);
    let mut old_call = call("ana", "payments", "AGWOLD", Decision::Allowed);
    old_call.at = old;
    let new_call = call("ana", "payments", "AGWNEW", Decision::Allowed);
    s.aws_insert_calls(&[old_call, new_call]).await.unwrap();
    for (id, status, requested, decided, until) in [
        ("cap_old_denied", "denied", old, Some(old), None),
        (
            "cap_old_approved",
            "approved",
            old,
            Some(old),
            Some(old + time::Duration::minutes(15)),
        ),
        ("cap_old_expired", "expired", old, None, None),
        ("cap_old_pending", "pending", old, None, None),
        ("cap_new_denied", "denied", NOW, Some(NOW), None),
    ] {
        sqlx::query(
            "INSERT INTO aws_call_approvals (id, fingerprint, project, user_sub, service, region,
             params, status, requested_at, decided_at, until)
             VALUES ($1, $1, 'payments', 'ana', 's3', 'eu-west-1', '{}', $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(status)
        .bind(requested)
        .bind(decided)
        .bind(until)
        .execute(s.pool())
        .await
        .unwrap();
    }
    // Windows of 300 s: the current one and the one before stay.
    for (class, start) in [
        ("read", NOW - time::Duration::seconds(601)),
        ("list", NOW - time::Duration::seconds(300)),
        ("write", NOW),
    ] {
        sqlx::query(
            "INSERT INTO aws_call_counts (user_sub, class, window_start, calls) VALUES ('ana', $1, $2, 3)",
        )
        .bind(class)
        .bind(start)
        .execute(s.pool())
        .await
        .unwrap();
    }

    assert_eq!(
        s.aws_proxy_retention(NOW, u32::MAX, 300).await.unwrap(),
        1,
        "a retention before any time keeps every recording; past counts still go"
    );
    assert_eq!(s.aws_proxy_retention(NOW, 90, 300).await.unwrap(), 1 + 3);
    let calls = s.aws_calls(&CallFilter::default(), 100).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["session_id"], "AGWNEW");
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM aws_call_approvals ORDER BY id")
        .fetch_all(s.pool())
        .await
        .unwrap();
    assert_eq!(left, vec!["cap_new_denied", "cap_old_pending"]);
    let classes: Vec<String> =
        sqlx::query_scalar("SELECT class FROM aws_call_counts ORDER BY class")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(classes, vec!["list", "write"]);
    assert_eq!(s.aws_proxy_retention(NOW, 90, 300).await.unwrap(), 0);
}

#[tokio::test]
async fn the_queue_writes_in_batches_and_a_drain_leaves_nothing_behind() {
    let s = crate::support::pg::fresh_store().await;
    let r = Recorder::new();
    let n = 2 * BATCH + 7;
    for i in 0..n {
        assert!(r.submit(call(
            "ana",
            "payments",
            &format!("AGW{i}"),
            Decision::Allowed
        )));
    }
    assert_eq!(r.pending(), n);
    assert_eq!(r.drain(&s, Duration::from_secs(30)).await, 0);
    assert_eq!(count(&s, "aws_calls").await, n as i64);
    assert_eq!((r.written(), r.dropped()), (n as u64, 0));

    // The background task writes what comes while it runs, and stops when told.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = r.spawn(s.clone(), stop_rx);
    r.submit(call("bo", "search", "AGWLIVE", Decision::Throttled));
    let mut waited = 0;
    while r.written() < n as u64 + 1 {
        assert!(waited < 3000, "the task wrote the row");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let live = s
        .aws_calls(
            &CallFilter {
                decision: Some("throttled"),
                ..CallFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
}

#[tokio::test]
async fn a_full_queue_or_a_store_error_drops_rows_counted_without_failing() {
    let r = Recorder::with_bounds(2, usize::MAX);
    for _ in 0..2 {
        assert!(r.submit(call("ana", "payments", "AGWX", Decision::Allowed)));
    }
    assert!(!r.submit(call("ana", "payments", "AGWX", Decision::Allowed)));
    assert_eq!((r.pending(), r.dropped()), (2, 1));

    // Bytes bound too: a row bigger than the whole allowance never waits.
    let small = Recorder::with_bounds(100, 1024);
    let mut big = call("ana", "payments", "AGWX", Decision::Allowed);
    big.body = Some("x".repeat(2048));
    assert!(!small.submit(big));
    assert_eq!(small.dropped(), 1);

    // A store that does not answer: the rows are dropped and counted, the drain ends.
    let gone = Store::lazy(
        PgConnectOptions::from_str("postgres://nobody@127.0.0.1:1/none").unwrap(),
        1,
        Duration::from_millis(200),
    );
    assert_eq!(r.drain(&gone, Duration::from_secs(30)).await, 0);
    assert_eq!((r.pending(), r.dropped(), r.written()), (0, 3, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_lists_and_reads_calls_for_admins_only() {
    use crate::aws_grants::{sections, Api, READ};
    use crate::support::gateway::{config, token, Gateway};

    let url = shared().new_db();
    let gw = {
        let (url, yaml) = (url.clone(), sections(""));
        tokio::task::spawn_blocking(move || Gateway::start(|port| config(port, &url, &yaml), &[]))
            .await
            .unwrap()
    };
    let s = crate::support::pg::migrated_store(&url).await;
    s.aws_insert_calls(&[
        call("ana", "payments", "AGWA", Decision::Allowed),
        call("ana", "payments", "AGWA", Decision::Denied),
        call("bo", "payments", "AGWB", Decision::Held),
    ])
    .await
    .unwrap();
    let api = Api::new(&gw);
    let calls = "/v1/organizations/aws_access/calls";
    let key = format!("key:{READ}");

    assert_eq!(api.call("GET", calls, "", None).await.0, 401);
    let (s_dev, _) = api
        .call("GET", calls, &token("ana", &["payments"]), None)
        .await;
    assert_eq!(s_dev, 401, "a developer is no admin");
    assert_eq!(
        api.call("GET", &format!("{calls}/1"), "", None).await.0,
        401
    );

    let (st, list) = api.call("GET", calls, &key, None).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    assert_eq!(list["has_more"], false);
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c.get("body").is_none()));
    assert_eq!(list["data"][0]["decision"], "held");

    let (_, page) = api
        .call("GET", &format!("{calls}?limit=2"), &key, None)
        .await;
    assert_eq!(page["has_more"], true);
    let last = page["data"][1]["id"].as_str().unwrap().to_owned();
    let (_, rest) = api
        .call(
            "GET",
            &format!("{calls}?limit=2&after_id={last}"),
            &key,
            None,
        )
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["has_more"], false);

    let admin = token("root", &["gw-admins"]);
    let (st, ana) = api
        .call(
            "GET",
            &format!("{calls}?user=ana&decision=denied&project=payments&session_id=AGWA"),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 200, "{ana}");
    assert_eq!(ana["data"].as_array().unwrap().len(), 1);
    assert_eq!(ana["data"][0]["user"]["sub"], "ana");

    for bad in ["decision=maybe", "after_id=x", "limit=0", "limit=1001"] {
        let (st, e) = api.call("GET", &format!("{calls}?{bad}"), &key, None).await;
        assert_eq!(
            (st, e["error"]["type"].as_str()),
            (400, Some("invalid_request_error")),
            "{bad}"
        );
    }

    let id = list["data"][2]["id"].as_str().unwrap();
    let (st, one) = api.call("GET", &format!("{calls}/{id}"), &key, None).await;
    assert_eq!(st, 200, "{one}");
    assert_eq!(one["id"], id);
    assert!(one["body"].as_str().unwrap().contains("[MASKED:secret]"));
    for missing in ["999999", "abc"] {
        let (st, e) = api
            .call("GET", &format!("{calls}/{missing}"), &key, None)
            .await;
        assert_eq!(
            (st, e["error"]["type"].as_str()),
            (404, Some("not_found_error")),
            "{missing}"
        );
    }
}
