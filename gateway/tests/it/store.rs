//! The store against a real PostgreSQL: migrations, key expiry, counters, concurrent boots, and
//! connection settings assembled from the environment.

use std::str::FromStr;
use std::time::Duration;

use claude_gateway::config::{self, MapEnv};
use claude_gateway::store::{connect_options, Store};
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;

use crate::support::gateway::{config as gw_config, Gateway};
use crate::support::http::get;
use crate::support::pg::shared;

async fn fresh_store() -> Store {
    let url = shared().new_db();
    let opts = PgConnectOptions::from_str(&url).unwrap();
    Store::connect(
        opts,
        4,
        Duration::from_secs(5),
        3,
        Duration::from_millis(200),
    )
    .await
    .unwrap()
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
}

async fn applied(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let store = fresh_store().await;
    store.migrate().await.unwrap();
    let first = applied(&store).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(applied(&store).await, first);
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(first, files);
    let kv: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'kv'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(kv, 1);
}

#[tokio::test]
async fn kv_values_expire_and_take_is_single_use() {
    let store = fresh_store().await;
    store.migrate().await.unwrap();
    store.kv_put("grant:1", "pending", at(600)).await.unwrap();
    assert_eq!(
        store.kv_get("grant:1", at(0)).await.unwrap().as_deref(),
        Some("pending")
    );
    assert_eq!(
        store.kv_get("grant:1", at(600)).await.unwrap(),
        None,
        "expired at its expiry"
    );

    assert!(store
        .kv_put_new("code:A", "x", at(60), at(0))
        .await
        .unwrap());
    assert!(
        !store
            .kv_put_new("code:A", "y", at(60), at(1))
            .await
            .unwrap(),
        "a live key is not overwritten"
    );
    assert!(
        store
            .kv_put_new("code:A", "z", at(200), at(61))
            .await
            .unwrap(),
        "an expired key is"
    );

    let (a, b) = tokio::join!(
        store.kv_take("code:A", at(62)),
        store.kv_take("code:A", at(62))
    );
    let winners = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
    assert_eq!(winners, 1, "exactly one concurrent take wins");

    store.kv_put("old", "v", at(10)).await.unwrap();
    assert_eq!(
        store.kv_sweep(at(601), 100).await.unwrap(),
        2,
        "both expired rows swept"
    );
    assert_eq!(store.kv_sweep(at(601), 100).await.unwrap(), 0);
    assert_eq!(
        store.kv_get("grant:1", at(-1)).await.unwrap(),
        None,
        "the row is gone, not just hidden"
    );
}

#[tokio::test]
async fn counters_use_fixed_windows() {
    let store = fresh_store().await;
    store.migrate().await.unwrap();
    let w = time::Duration::seconds(60);
    for expected in 1..=3 {
        assert_eq!(
            store.kv_incr("rl:ip", w, at(expected)).await.unwrap(),
            expected
        );
    }
    assert_eq!(
        store.kv_incr("rl:ip", w, at(59)).await.unwrap(),
        4,
        "still the first window"
    );
    assert_eq!(
        store.kv_incr("rl:ip", w, at(61)).await.unwrap(),
        1,
        "a new window starts at 1"
    );
    // Concurrent hits are all counted.
    let hits = (0..20).map(|_| store.kv_incr("rl:burst", w, at(0)));
    let mut counts: Vec<i64> = futures_util::future::join_all(hits)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<_>>());
}

#[test]
fn two_gateways_booting_together_on_an_empty_database_both_come_up() {
    let url = shared().new_db();
    let a_port = crate::support::pg::free_port();
    let b_port = crate::support::pg::free_port();
    let a = Gateway::spawn(&gw_config(a_port, &url, ""), a_port, &[]);
    let b = Gateway::spawn(&gw_config(b_port, &url, ""), b_port, &[]);
    a.wait_healthy(Duration::from_secs(30));
    b.wait_healthy(Duration::from_secs(30));
    for g in [&a, &b] {
        let res = get(g.port, "/readyz", &[]);
        assert_eq!(res.status, 200, "{}", g.stderr());
        assert!(g
            .stdout()
            .lines()
            .next()
            .unwrap_or_default()
            .contains("\"evt\":\"config.load\""));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::lazy(
            PgConnectOptions::from_str(&url).unwrap(),
            1,
            Duration::from_secs(5),
        );
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .count() as i64;
        assert_eq!(applied(&store).await, files, "each migration applied once");
    });
}

#[tokio::test]
async fn postgres_settings_can_come_from_gateway_pg_variables() {
    let pg = shared();
    let password = "p#a%s&s@w/o:r?d 'x'";
    pg.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pwuser') THEN CREATE ROLE pwuser LOGIN; END IF; END $$");
    pg.psql(&format!(
        "ALTER ROLE pwuser PASSWORD '{}'",
        password.replace('\'', "''")
    ));
    let env = MapEnv::new()
        .with_var("GATEWAY_PG_HOST", "127.0.0.1")
        .with_var("GATEWAY_PG_PORT", &pg.port.to_string())
        .with_var("GATEWAY_PG_USER", "pwuser")
        .with_var("GATEWAY_PG_PASSWORD", password)
        .with_var("GATEWAY_PG_DB", "postgres")
        .with_var("GATEWAY_PG_SSLMODE", "disable");
    let yaml = "listen: {host: 127.0.0.1}\nupstreams: [{provider: bedrock, region: us-east-1}]\nsession: {jwt_secret: 0123456789abcdef0123456789abcdef}\nstore: {}\noidc: {issuer: 'https://idp.example.com', client_id: c, client_secret: s}\n";
    let loaded = config::load(yaml, &env).unwrap();
    let opts = connect_options(&loaded.config.store, &env).unwrap();
    let store = Store::connect(opts, 1, Duration::from_secs(5), 1, Duration::ZERO)
        .await
        .unwrap();
    let who: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(who, "pwuser");

    let wrong = env.clone().with_var("GATEWAY_PG_PASSWORD", "not-it");
    let opts = connect_options(&loaded.config.store, &wrong).unwrap();
    let err = Store::connect(opts, 1, Duration::from_secs(5), 1, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(password));
}

/// A deny and a callback that read the same pending grant and race to settle it: exactly one
/// wins, the other is told it lost (and writes nothing), in every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_grant_transitions_have_exactly_one_winner() {
    use claude_gateway::auth::grant::{self, Issued, Status};
    use claude_gateway::auth::seal::Sealer;
    use claude_gateway::config::Secret;

    let store = fresh_store().await;
    store.migrate().await.unwrap();
    let sealer = Sealer::new(&[Secret::new("grant-race-secret-0123456789abcdef")]);
    let now = OffsetDateTime::now_utc();
    for round in 0..20 {
        let (device_code, _) = grant::create(&store, &sealer, now, None, None)
            .await
            .unwrap();
        let key = grant::device_key(&device_code);
        let (pending, read) = grant::load_versioned(&store, &sealer, &key, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pending.status, Status::Pending);
        let mut denied = pending.clone();
        denied.status = Status::Denied;
        let mut complete = pending.clone();
        complete.status = Status::Complete;
        complete.issued = Some(Issued {
            access_token: format!("token-{round}"),
            refresh_token: None,
            expires_in: 3600,
        });
        let (deny, callback) = tokio::join!(
            grant::replace(&store, &sealer, &key, &read, &denied, now),
            grant::replace(&store, &sealer, &key, &read, &complete, now),
        );
        let (deny, callback) = (deny.unwrap(), callback.unwrap());
        assert!(deny != callback, "round {round}: exactly one wins");
        let settled = grant::load(&store, &sealer, &key, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(settled, if deny { denied.clone() } else { complete });
        // The loser's stale read can change nothing later either.
        assert!(!grant::replace(&store, &sealer, &key, &read, &denied, now)
            .await
            .unwrap());
    }
}
