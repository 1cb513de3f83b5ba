//! The reservation against a real PostgreSQL: under heavy concurrency no user ever passes a cap,
//! settlement is exact, expired reservations are released, and Admin changes are audited.

use std::str::FromStr;
use std::time::Duration;

use claude_gateway::store::spend::{BucketCap, Reserved, Settlement, MICROS_PER_CENT};
use claude_gateway::store::Store;
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;

use crate::support::pg::shared;

fn settlement(
    id: &str,
    reservation: Option<&str>,
    principal: &str,
    buckets: &[String],
    cost: i64,
) -> Settlement {
    Settlement {
        id: id.to_owned(),
        reservation: reservation.map(str::to_owned),
        principal: principal.to_owned(),
        buckets: buckets.to_vec(),
        cost,
        ledger: None,
    }
}

async fn store() -> Store {
    let opts = PgConnectOptions::from_str(&shared().new_db()).unwrap();
    let s = Store::connect(
        opts,
        20,
        Duration::from_secs(10),
        3,
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    s.migrate().await.unwrap();
    s
}

fn caps(daily_cents: Option<i64>) -> Vec<BucketCap> {
    vec![
        BucketCap {
            bucket: "d:2026-11-23".into(),
            cap_micros: daily_cents.map(|c| c * MICROS_PER_CENT),
        },
        BucketCap {
            bucket: "w:2026-11-23".into(),
            cap_micros: None,
        },
        BucketCap {
            bucket: "m:2026-11".into(),
            cap_micros: Some(1_000_000 * MICROS_PER_CENT),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_user_passes_a_cap_under_concurrency() {
    let s = store().await;
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    // $1.00 daily cap, $0.07 worst case per request: exactly 14 fit.
    let worst = 70_000;
    let mut tasks = Vec::new();
    for user in 0..20 {
        for attempt in 0..30 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("r-{user}-{attempt}");
                let principal = format!("user-{user}");
                let r = s
                    .reserve(&id, &principal, &caps(Some(100)), worst, later)
                    .await
                    .unwrap();
                if matches!(r, Reserved::Admitted(_)) {
                    // Settle at the worst case (the tightest possible outcome).
                    let buckets: Vec<String> = caps(None).into_iter().map(|c| c.bucket).collect();
                    s.settle(&settlement(
                        &format!("s-{id}"),
                        Some(&id),
                        &principal,
                        &buckets,
                        worst,
                    ))
                    .await
                    .unwrap();
                    1
                } else {
                    0
                }
            }));
        }
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    assert_eq!(
        admitted,
        20 * 14,
        "exactly floor(cap / worst case) per user"
    );
    for user in 0..20 {
        let t = s
            .totals(&format!("user-{user}"), &["d:2026-11-23".into()])
            .await
            .unwrap();
        assert_eq!(t[0].settled, 14 * worst);
        assert_eq!(t[0].reserved, 0, "every reservation settled");
        assert!(t[0].settled <= 100 * MICROS_PER_CENT, "never over the cap");
    }
}

#[tokio::test]
async fn settlement_is_exact_and_refusal_reserves_nothing() {
    let s = store().await;
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let buckets: Vec<String> = caps(None).into_iter().map(|c| c.bucket).collect();
    assert!(matches!(
        s.reserve("a", "u", &caps(Some(10)), 60_000, later)
            .await
            .unwrap(),
        Reserved::Admitted(_)
    ));
    // 60,000 + 50,000 would pass the $0.10 daily cap: refused, and no bucket keeps a partial reserve.
    match s
        .reserve("b", "u", &caps(Some(10)), 50_000, later)
        .await
        .unwrap()
    {
        Reserved::Over(b) => assert_eq!(b, vec!["d:2026-11-23".to_owned()]),
        other => panic!("{other:?}"),
    }
    let t = s.totals("u", &buckets).await.unwrap();
    assert_eq!(
        t.iter().map(|t| t.reserved).collect::<Vec<_>>(),
        vec![60_000, 60_000, 60_000]
    );
    s.settle(&settlement("s-a", Some("a"), "u", &buckets, 12_345))
        .await
        .unwrap();
    s.settle(&settlement("s-a", Some("a"), "u", &buckets, 12_345))
        .await
        .unwrap();
    s.settle(&settlement("s-a2", Some("a"), "u", &buckets, 0))
        .await
        .unwrap();
    let t = s.totals("u", &buckets).await.unwrap();
    assert_eq!(
        t[0].settled, 12_345,
        "a settlement retried with its id is applied once"
    );
    assert_eq!(t[0].reserved, 0);
    // An uncapped user is still metered.
    s.settle(&settlement("s-free", None, "free", &buckets, 777))
        .await
        .unwrap();
    assert_eq!(s.totals("free", &buckets).await.unwrap()[2].settled, 777);
}

#[tokio::test]
async fn reservations_of_a_dead_gateway_expire() {
    let s = store().await;
    let buckets: Vec<String> = caps(None).into_iter().map(|c| c.bucket).collect();
    let past = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    assert!(matches!(
        s.reserve("dead", "u", &caps(Some(10)), 90_000, past)
            .await
            .unwrap(),
        Reserved::Admitted(_)
    ));
    assert!(matches!(
        s.reserve("x", "u", &caps(Some(10)), 20_000, past)
            .await
            .unwrap(),
        Reserved::Over(_)
    ));
    assert_eq!(
        s.expire_reservations(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        3
    );
    assert_eq!(s.totals("u", &buckets).await.unwrap()[0].reserved, 0);
    // Settling an expired reservation later adds only the cost: nothing is billed twice.
    s.settle(&settlement("s-dead", Some("dead"), "u", &buckets, 5_000))
        .await
        .unwrap();
    let t = s.totals("u", &buckets).await.unwrap();
    assert_eq!((t[0].settled, t[0].reserved), (5_000, 0));
}

#[tokio::test]
async fn limit_changes_are_audited_in_the_same_transaction() {
    let s = store().await;
    let now = OffsetDateTime::now_utc();
    let a = s
        .upsert_limit(
            "spl_1",
            "user",
            "alice",
            Some(500),
            "daily",
            "admin-key:ops",
            now,
        )
        .await
        .unwrap();
    let b = s
        .upsert_limit(
            "spl_2",
            "user",
            "alice",
            Some(900),
            "daily",
            "admin-key:ops",
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        a.id, b.id,
        "create-or-replace keeps the id of (scope, period)"
    );
    assert_eq!(b.amount_cents, Some(900));
    assert!(s.delete_limit(&a.id, "oidc:bob", now).await.unwrap());
    assert!(!s.delete_limit(&a.id, "oidc:bob", now).await.unwrap());
    let trail = s.admin_audit(10, None).await.unwrap();
    assert_eq!(trail.len(), 3);
    assert_eq!(trail[0]["action"], "spend_limit.delete");
    assert_eq!(trail[0]["actor"], "oidc:bob");
    assert_eq!(trail[1]["before"]["amount_cents"], 500);
    assert_eq!(trail[1]["after"]["amount_cents"], 900);
}

#[tokio::test]
async fn retention_removes_only_what_is_past_its_window() {
    let s = store().await;
    let now = OffsetDateTime::now_utc();
    let old = now - time::Duration::days(500);
    s.record_cost(
        "gone",
        &crate::support::ledger(old.date(), Some("g@x"), None, &[], "m", old),
        1,
    )
    .await
    .unwrap();
    s.record_cost(
        "kept",
        &crate::support::ledger(now.date(), Some("k@x"), None, &[], "m", now),
        1,
    )
    .await
    .unwrap();
    s.upsert_limit("spl_old", "user", "u", Some(1), "daily", "admin-key:a", old)
        .await
        .unwrap();
    assert_eq!(
        s.retention(now, u32::MAX, u32::MAX, u32::MAX)
            .await
            .unwrap(),
        0,
        "windows reaching before the earliest time keep everything, and do not panic"
    );
    let n = s.retention(now, 13, 365, 90).await.unwrap();
    assert_eq!(n, 3, "one cost row, one audit row, one identity");
    assert!(s.principal("gone").await.unwrap().is_none());
    assert!(s.principal("kept").await.unwrap().is_some());
    assert!(s.admin_audit(10, None).await.unwrap().is_empty());
    assert!(
        s.limit("spl_old").await.unwrap().is_some(),
        "caps themselves are never swept"
    );
}

#[tokio::test]
async fn totals_of_many_principals_come_in_one_read() {
    let s = store().await;
    let buckets: Vec<String> = caps(None).into_iter().map(|c| c.bucket).collect();
    s.settle(&settlement("s-u", None, "u", &buckets[..1], 12_345))
        .await
        .unwrap();
    s.settle(&settlement("s-free", None, "free", &buckets, 777))
        .await
        .unwrap();
    // Each in the order of the buckets asked, zero where it has no row, and a principal that
    // never spent all zero.
    let asked = vec!["free".to_owned(), "u".to_owned(), "nobody".to_owned()];
    let backwards: Vec<String> = buckets.iter().rev().cloned().collect();
    let all = s.totals_of(&asked, &backwards).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all["free"][0].settled, 777);
    let last = buckets.len() - 1;
    assert_eq!(all["u"][last].settled, 12_345);
    assert_eq!(all["u"][0].settled, 0, "no row in that bucket");
    assert_eq!(all["nobody"], vec![Default::default(); buckets.len()]);
    for p in &asked {
        let mut one = s.totals(p, &buckets).await.unwrap();
        one.reverse();
        assert_eq!(one, all[p], "{p}");
    }
}
