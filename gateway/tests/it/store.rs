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

/// A store built from `store:` settings the way the gateway builds it, on a fresh database.
fn store_with(settings: &str) -> (Store, String) {
    let url = shared().new_db();
    let yaml = format!("listen: {{host: 127.0.0.1}}\nupstreams: [{{provider: bedrock, region: us-east-1}}]\nsession: {{jwt_secret: 0123456789abcdef0123456789abcdef}}\nstore: {{postgres_url: '{url}', {settings}}}\noidc: {{issuer: 'https://idp.example.com', client_id: c, client_secret: s}}\n");
    let env = MapEnv::new();
    let loaded = config::load(&yaml, &env).unwrap();
    let opts = connect_options(&loaded.config.store, &env).unwrap();
    (Store::lazy(opts, 2, Duration::from_secs(5)), url)
}

#[tokio::test]
async fn a_statement_longer_than_the_timeout_is_cancelled() {
    let (store, _) = store_with("statement_timeout_ms: 300");
    let bound: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(bound, "300ms");
    let idle: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(idle, "300ms");
    // A statement that would run for a minute is cancelled by the server.
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        sqlx::query("SELECT pg_sleep(60)").execute(store.pool()),
    )
    .await
    .expect("the statement was not cancelled")
    .unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("57014"), "{err}");
    // The default bounds every statement too.
    let (store, _) = store_with("max_connections: 2");
    let bound: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(bound, "5s");
}

#[tokio::test]
async fn migrations_wait_for_the_lock_beyond_the_statement_timeout() {
    let (store, url) = store_with("statement_timeout_ms: 200");
    // Another replica holds the migration lock for longer than the statement timeout.
    let other = Store::lazy(
        PgConnectOptions::from_str(&url).unwrap(),
        1,
        Duration::from_secs(5),
    );
    let mut holder = other.pool().acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(0x636c_6177_6467_7731_i64)
        .execute(&mut *holder)
        .await
        .unwrap();
    let migrating = store.migrate();
    tokio::pin!(migrating);
    let hold = async {
        // Wait until the migration is blocked on the lock, then past its statement timeout.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_lock%' AND datname = current_database()",
            )
            .fetch_one(&mut *holder)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "migration never waited for the lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
    };
    tokio::select! {
        r = &mut migrating => panic!("the migration gave up waiting for the lock: {r:?}"),
        () = hold => {}
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(0x636c_6177_6467_7731_i64)
        .execute(&mut *holder)
        .await
        .unwrap();
    migrating.await.unwrap();
    // The connection that migrated is bounded again.
    let bound: Vec<String> = futures_util::future::join_all((0..2).map(|_| async {
        let mut c = store.pool().acquire().await.unwrap();
        sqlx::query_scalar::<_, String>("SHOW statement_timeout")
            .fetch_one(&mut *c)
            .await
            .unwrap()
    }))
    .await;
    assert_eq!(bound, ["200ms", "200ms"]);
}
