//! Spend leases and batched settlement against a real PostgreSQL: a grant is bounded by the
//! headroom, a batch is written once, a lease given back returns what it has left, and a lease
//! that expired is never counted twice.

use claude_gateway::store::leases::{Batch, Charge, Grow, Grown, Return};
use claude_gateway::store::spend::{BucketCap, Ledger};
use claude_gateway::store::Store;
use time::OffsetDateTime;

fn caps(daily: i64) -> Vec<BucketCap> {
    vec![
        BucketCap {
            bucket: "d:2026-12-07".into(),
            cap_micros: Some(daily),
        },
        BucketCap {
            bucket: "m:2026-12".into(),
            cap_micros: None,
        },
    ]
}

fn keys() -> Vec<String> {
    caps(0).into_iter().map(|c| c.bucket).collect()
}

fn grow<'a>(
    lease: &'a str,
    buckets: &'a [BucketCap],
    need: i64,
    want: i64,
    existing: bool,
) -> Grow<'a> {
    Grow {
        lease,
        principal: "u",
        buckets,
        need,
        want,
        expires: OffsetDateTime::now_utc() + time::Duration::hours(1),
        existing,
    }
}

fn charge(lease: Option<&str>, cost: i64) -> Charge {
    Charge {
        principal: "u".into(),
        buckets: keys(),
        lease: lease.map(str::to_owned),
        cost,
        ledger: Some(Ledger {
            day: time::macros::date!(2026 - 12 - 07),
            model: "claude-sonnet-4-5".into(),
            email: Some("u@example.com".into()),
            name: None,
            groups: vec!["eng".into()],
            at: OffsetDateTime::now_utc(),
        }),
    }
}

async fn lease_row(s: &Store, id: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT amount_micros FROM reservations WHERE id = $1")
        .bind(id)
        .fetch_optional(s.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_grant_beyond_the_need_is_at_most_a_quarter_of_the_headroom() {
    let s = crate::support::pg::fresh_store().await;
    let c = caps(100_000);
    match s
        .grow_lease(&grow("l1", &c, 1_000, 1_000_000, false))
        .await
        .unwrap()
    {
        Grown::Granted {
            give,
            amount,
            others,
        } => {
            assert_eq!((give, amount), (25_000, 25_000));
            assert_eq!(others[0].reserved, 0, "others' totals leave this lease out");
        }
        other => panic!("{other:?}"),
    }
    // Near the cap the grant shrinks to the need; past it, nothing is granted.
    match s
        .grow_lease(&grow("l1", &c, 70_000, 70_000, true))
        .await
        .unwrap()
    {
        Grown::Granted { give, amount, .. } => assert_eq!((give, amount), (70_000, 95_000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.grow_lease(&grow("l2", &c, 5_001, 5_001, false))
            .await
            .unwrap(),
        Grown::Over(vec!["d:2026-12-07".into()])
    );
    let t = s.totals("u", &keys()).await.unwrap();
    assert_eq!((t[0].reserved, t[1].reserved), (95_000, 95_000));
    assert_eq!(lease_row(&s, "l2").await, None, "a refusal leaves no row");
}

#[tokio::test]
async fn a_batch_is_written_once_and_a_returned_lease_gives_back_what_is_left() {
    let s = crate::support::pg::fresh_store().await;
    let c = caps(1_000_000);
    assert!(matches!(
        s.grow_lease(&grow("l1", &c, 10_000, 10_000, false))
            .await
            .unwrap(),
        Grown::Granted { give: 10_000, .. }
    ));
    let batch = Batch {
        id: "stb_1".into(),
        charges: vec![
            charge(Some("l1"), 1_000),
            charge(Some("l1"), 2_000),
            charge(None, 500),
        ],
        returns: Vec::new(),
        renew_until: OffsetDateTime::now_utc() + time::Duration::hours(2),
    };
    s.settle_batch(&batch).await.unwrap();
    s.settle_batch(&batch).await.unwrap();
    let t = s.totals("u", &keys()).await.unwrap();
    assert_eq!(
        t[0].settled, 3_500,
        "a batch retried under its id is applied once"
    );
    assert_eq!(
        t[0].reserved, 7_000,
        "the lease turned what was charged to it into spend"
    );
    assert_eq!(lease_row(&s, "l1").await, Some(7_000));
    let (cost, requests): (i64, i64) =
        sqlx::query_as("SELECT cost_micros, requests FROM cost_daily WHERE principal = 'u'")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(
        (cost, requests),
        (3_500, 3),
        "one finance row, every request counted"
    );

    let back = Batch {
        id: "stb_2".into(),
        charges: vec![charge(Some("l1"), 4_000)],
        returns: vec![Return {
            lease: "l1".into(),
            principal: "u".into(),
            buckets: keys(),
        }],
        renew_until: OffsetDateTime::now_utc(),
    };
    s.settle_batch(&back).await.unwrap();
    let t = s.totals("u", &keys()).await.unwrap();
    assert_eq!((t[0].settled, t[0].reserved), (7_500, 0));
    assert_eq!(lease_row(&s, "l1").await, None);
}

#[tokio::test]
async fn an_expired_lease_is_lost_and_what_was_charged_to_it_counts_once() {
    let s = crate::support::pg::fresh_store().await;
    let c = caps(1_000_000);
    let mut g = grow("l1", &c, 10_000, 10_000, false);
    g.expires = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    assert!(matches!(
        s.grow_lease(&g).await.unwrap(),
        Grown::Granted { .. }
    ));
    assert_eq!(
        s.expire_reservations(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.grow_lease(&grow("l1", &c, 1_000, 1_000, true))
            .await
            .unwrap(),
        Grown::Lost,
        "the replica learns its lease is gone instead of counting on it"
    );
    s.settle_batch(&Batch {
        id: "stb_late".into(),
        charges: vec![charge(Some("l1"), 3_000)],
        returns: vec![Return {
            lease: "l1".into(),
            principal: "u".into(),
            buckets: keys(),
        }],
        renew_until: OffsetDateTime::now_utc(),
    })
    .await
    .unwrap();
    let t = s.totals("u", &keys()).await.unwrap();
    assert_eq!(
        (t[0].settled, t[0].reserved),
        (3_000, 0),
        "the cost is billed, and the expired lease released nothing twice"
    );
}

#[tokio::test]
async fn a_grow_survives_its_connection_being_ended_by_the_server() {
    use sqlx::{ConnectOptions, Connection};
    let s = crate::support::pg::fresh_store().await;
    let c = caps(100_000);
    s.warm_leases().await.unwrap();
    let mut own = s.pool().connect_options().connect().await.unwrap();
    // What a database restart does to every open connection: all but `own` are ended.
    let mut end_others = async || {
        sqlx::query_scalar::<_, bool>(
            "SELECT bool_and(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut own)
        .await
        .unwrap()
    };
    assert!(end_others().await, "the lease connection was open");
    match s
        .grow_lease(&grow("l1", &c, 1_000, 1_000, false))
        .await
        .unwrap()
    {
        Grown::Granted { give, .. } => assert_eq!(give, 1_000),
        other => panic!("{other:?}"),
    }
    // And again, on the connection the retry opened.
    assert!(end_others().await);
    assert!(matches!(
        s.grow_lease(&grow("l1", &c, 1_000, 1_000, true))
            .await
            .unwrap(),
        Grown::Granted { give: 1_000, .. }
    ));
    let amount: i64 = sqlx::query_scalar("SELECT amount_micros FROM reservations WHERE id = 'l1'")
        .fetch_one(&mut own)
        .await
        .unwrap();
    assert_eq!(amount, 2_000);
    own.close().await.unwrap();
}

#[tokio::test]
async fn grows_arriving_together_are_each_granted_as_if_alone() {
    let s = crate::support::pg::fresh_store().await;
    let c = caps(10_000);
    let expires = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let whos: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
    let leases: Vec<String> = whos.iter().map(|w| format!("l-{w}")).collect();
    // Twenty principals, one of them twice, and one asking past its cap: more than the lane has
    // connections, so most of them wait and run together.
    let mut asks: Vec<Grow> = whos
        .iter()
        .zip(&leases)
        .map(|(w, l)| Grow {
            lease: l,
            principal: w,
            buckets: &c,
            need: 1_000,
            want: 4_000,
            expires,
            existing: false,
        })
        .collect();
    asks.push(asks[0].clone());
    asks.push(Grow {
        lease: "l-big",
        principal: "big",
        need: 20_000,
        want: 20_000,
        ..asks[1].clone()
    });
    let answers = futures_util::future::join_all(asks.iter().map(|g| s.grow_lease(g))).await;
    let answers: Vec<Grown> = answers.into_iter().map(|a| a.unwrap()).collect();
    // A grant is the need or a quarter of the headroom, whichever is more, up to the want.
    for a in &answers[1..20] {
        assert!(
            matches!(a, Grown::Granted { give: 2_500, amount: 2_500, others } if others[0].reserved == 0),
            "{a:?}"
        );
    }
    let mut twice: Vec<i64> = [&answers[0], &answers[20]]
        .iter()
        .map(|a| match a {
            Grown::Granted { give, .. } => *give,
            other => panic!("{other:?}"),
        })
        .collect();
    twice.sort();
    assert_eq!(twice, vec![1_875, 2_500], "the second grant saw the first");
    assert_eq!(answers[21], Grown::Over(vec!["d:2026-12-07".into()]));
    assert_eq!(lease_row(&s, "l-u00").await, Some(4_375));
    assert_eq!(lease_row(&s, "l-u07").await, Some(2_500));
    assert_eq!(lease_row(&s, "l-big").await, None);
    let reserved: i64 = sqlx::query_scalar(
        "SELECT sum(reserved_micros)::int8 FROM spend WHERE bucket = 'd:2026-12-07'",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(reserved, 19 * 2_500 + 4_375);
}
