//! The spend Admin API over HTTP (auth, shapes, audit) and a cap refusing inference with the
//! reference's 429 billing_error.

use serde_json::{json, Value};

use crate::support::gateway::{config, token, Gateway};
use crate::support::pg::shared;

const WRITE: &str = "write-key-0123456789abcdef0123456789";
const READ: &str = "read-key-0123456789abcdef01234567890";

async fn start() -> Gateway {
    let url = shared().new_db();
    let extra = format!(
        "admin:\n  write_keys: [{{id: ops, key: {WRITE}}}]\n  read_keys: [{{id: finance, key: {READ}}}]\n  admin_groups: [gw-admins]\n  blocked_message: ask finance\n"
    );
    tokio::task::spawn_blocking(move || Gateway::start(|port| config(port, &url, &extra), &[]))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_are_managed_through_the_admin_api() {
    let gw = start().await;
    let c = crate::support::client();
    let base = format!("http://127.0.0.1:{}/v1/organizations/spend_limits", gw.port);
    let cap =
        json!({"scope": {"type": "user", "user_id": "dev1"}, "amount": "0", "period": "daily"});

    let r = c.post(&base).json(&cap).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r
        .headers()
        .get("request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let r = c
        .post(&base)
        .header("x-api-key", READ)
        .json(&cap)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(&base)
        .header("x-api-key", "not-a-key")
        .json(&cap)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(&base)
        .header("x-api-key", WRITE)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = c
        .post(&base)
        .header("x-api-key", WRITE)
        .json(&cap)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["type"], "spend_limit");
    assert!(created["id"].as_str().unwrap().starts_with("spl_"));
    assert_eq!(created["amount"], "0");
    assert_eq!(created["currency"], "USD");
    assert_eq!(created["scope"], json!({"type": "user", "user_id": "dev1"}));

    // An admin-group session token may write too.
    let group = json!({"scope": {"type": "rbac_group", "rbac_group_id": "eng"}, "amount": "50000"});
    let r = c
        .post(&base)
        .bearer_auth(token("boss", &["gw-admins"]))
        .json(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(&base)
        .bearer_auth(token("dev1", &["eng"]))
        .json(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let list: Value = c
        .get(&base)
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["has_more"], false);
    assert_eq!(list["data"][1]["period"], "monthly", "the default period");
    let one: Value = c
        .get(format!("{base}/{}", created["id"].as_str().unwrap()))
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], created["id"]);

    // The capped user is refused before anything goes upstream.
    let msg = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    let r = c
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("dev1", &["eng"]))
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let h = r.headers().clone();
    assert_eq!(h["x-should-retry"], "false");
    assert_eq!(h["anthropic-ratelimit-unified-status"], "rejected");
    assert_eq!(h["anthropic-ratelimit-unified-overage-period"], "daily");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() <= 86_400);
    assert!(h
        .get("anthropic-ratelimit-unified-representative-claim")
        .is_none());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "billing_error");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.starts_with("spend limit reached (daily; resets ") && m.ends_with("UTC) — ask finance"),
        "{m}"
    );

    // count_tokens is never blocked by spend.
    let r = c
        .post(format!(
            "http://127.0.0.1:{}/v1/messages/count_tokens",
            gw.port
        ))
        .bearer_auth(token("dev1", &["eng"]))
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 429);

    // The user's own view.
    let u: Value = c
        .get(format!("http://127.0.0.1:{}/api/oauth/usage", gw.port))
        .bearer_auth(token("dev1", &["eng"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let daily = u["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["group"] == "daily")
        .unwrap();
    assert_eq!(daily["kind"], "spend");
    assert!(daily["resets_at"].as_str().unwrap().ends_with('Z'));

    let eff: Value = c
        .get(format!("{base}/effective?user_ids[]=dev1&period[]=monthly"))
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(eff["data"][0]["period"], "monthly", "{eff}");
    assert_eq!(
        eff["data"][0]["source"],
        json!({"type": "rbac_group", "rbac_group_id": "eng"}),
        "group caps apply per seat: {eff}"
    );
    // A period or a user asked for again is answered once: the answer cannot be inflated.
    let repeated = "&period[]=monthly&period=daily&user_ids[]=dev1".repeat(300);
    let eff: Value = c
        .get(format!("{base}/effective?user_ids[]=dev1{repeated}"))
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let periods: Vec<&str> = eff["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["period"].as_str().unwrap())
        .collect();
    assert_eq!(periods, ["daily", "monthly"], "{eff}");

    let del: Value = c
        .delete(format!("{base}/{}", created["id"].as_str().unwrap()))
        .header("x-api-key", WRITE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        del,
        json!({"type": "spend_limit_deleted", "id": created["id"]})
    );
    let trail: Value = c
        .get(format!("{base}/audit"))
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "spend_limit.delete",
            "spend_limit.upsert",
            "spend_limit.upsert"
        ]
    );
    assert_eq!(trail["data"][1]["actor"], "oidc:boss");

    let audit = gw.stdout();
    assert!(
        audit.contains("\"evt\":\"admin.denied\"") && audit.contains("\"evt\":\"spend.blocked\"")
    );
    assert!(
        !audit.contains(WRITE) && !audit.contains(READ),
        "keys never reach the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_report_groups_daily_cost() {
    use std::str::FromStr;
    let url = shared().new_db();
    let extra = format!("admin:\n  read_keys: [{{id: finance, key: {READ}}}]\n");
    let u = url.clone();
    let gw =
        tokio::task::spawn_blocking(move || Gateway::start(|port| config(port, &u, &extra), &[]))
            .await
            .unwrap();
    let store = claude_gateway::store::Store::lazy(
        sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
        2,
        std::time::Duration::from_secs(5),
    );
    let now = time::OffsetDateTime::now_utc();
    let today = now.date();
    let yesterday = today - time::Duration::days(1);
    let eng = vec!["eng".to_owned()];
    store
        .record_cost(
            "alice",
            &crate::support::ledger(today, Some("a@x"), None, &eng, "claude-sonnet-4-5", now),
            1_500_000,
        )
        .await
        .unwrap();
    store
        .record_cost(
            "alice",
            &crate::support::ledger(today, Some("a@x"), None, &eng, "claude-sonnet-4-5", now),
            500_000,
        )
        .await
        .unwrap();
    store
        .record_cost(
            "bob",
            &crate::support::ledger(today, None, None, &[], "claude-haiku-4-5", now),
            30_000,
        )
        .await
        .unwrap();
    store
        .record_cost(
            "bob",
            &crate::support::ledger(yesterday, None, None, &[], "claude-haiku-4-5", now),
            10_000,
        )
        .await
        .unwrap();

    let c = crate::support::client();
    let base = format!(
        "http://127.0.0.1:{}/v1/organizations/analytics/cost",
        gw.port
    );
    let start = format!("{}T00:00:00Z", yesterday);
    let r: Value = c
        .get(format!("{base}?starting_at={start}&group_by[]=actor"))
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let days = r["data"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{r}");
    assert_eq!(days[0]["results"][0]["group"]["actor"]["user_id"], "bob");
    assert_eq!(
        days[0]["results"][0]["cost"]["amount"], "1.000000",
        "10,000 micro-dollars = 1 cent"
    );
    let alice = days[1]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["group"]["actor"]["user_id"] == "alice")
        .unwrap();
    assert_eq!(alice["cost"]["amount"], "200.000000");
    assert_eq!(alice["cost"]["requests"], 2);
    let r: Value = c
        .get(format!(
            "{base}?starting_at={start}&group_by[]=rbac_group_id"
        ))
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let today_groups = r["data"][1]["results"].as_array().unwrap();
    assert!(today_groups
        .iter()
        .any(|x| x["group"]["rbac_group_id"] == "eng" && x["cost"]["amount"] == "200.000000"));
    let r = c
        .get(format!("{base}?starting_at=2026-11-01"))
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(format!(
            "{base}?starting_at=2026-01-01T00:00:00Z&ending_at=2026-03-01T00:00:00Z"
        ))
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "more than 31 days");
    // A range ending on the last representable day is refused, not a panic.
    let r = c
        .get(format!(
            "{base}?starting_at=9999-12-01T00:00:00Z&ending_at=9999-12-31T12:00:00Z"
        ))
        .header("x-api-key", READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body.to_string().contains("last date"), "{body}");
}
