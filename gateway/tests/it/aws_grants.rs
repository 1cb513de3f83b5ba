//! Write requests end to end against the real gateway and PostgreSQL: members through the Admin
//! API (with their trail), a request approved through the Admin API showing in the developer's
//! status, the requester refused as their own approver, two approvals racing with one winner,
//! and the webhook announcing a request.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::gateway::{config, token, Gateway};
use crate::support::pg::shared;

pub(crate) const WRITE: &str = "write-key-0123456789abcdef0123456789";
pub(crate) const READ: &str = "read-key-0123456789abcdef01234567890";

/// The `admin` and `aws_access` sections: project `payments` (prod, write needs approval by
/// `payments-leads`), the `payments` group members with write, and `extra` inside `aws_access`.
pub(crate) fn sections(extra: &str) -> String {
    format!(
        "admin:
  write_keys: [{{id: ops, key: {WRITE}}}]
  read_keys: [{{id: finance, key: {READ}}}]
  admin_groups: [gw-admins]
aws_access:
  projects:
    - name: payments
      role_arn: arn:aws:iam::123456789012:role/agent-payments
      regions: [eu-west-1]
      tag: {{key: project, value: payments}}
      environment: prod
      read: ['s3:Get*', 's3:List*']
      write: ['s3:PutObject']
      approvers: [payments-leads]
  members:
    - {{project: payments, groups: [payments], level: write, from: '2020-01-01T00:00:00Z', until: '2099-01-01T00:00:00Z'}}
{extra}"
    )
}

async fn start(extra: &str) -> Gateway {
    let url = shared().new_db();
    let yaml = sections(extra);
    tokio::task::spawn_blocking(move || Gateway::start(|port| config(port, &url, &yaml), &[]))
        .await
        .unwrap()
}

pub(crate) struct Api {
    pub(crate) base: String,
    c: reqwest::Client,
}

impl Api {
    pub(crate) fn new(gw: &Gateway) -> Api {
        Api {
            base: format!("http://127.0.0.1:{}", gw.port),
            c: crate::support::client(),
        }
    }

    /// `method path` with `auth` (`key:…` for an admin key, else a bearer) and a JSON body.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut r = match method {
            "POST" => self.c.post(url),
            "DELETE" => self.c.delete(url),
            _ => self.c.get(url),
        };
        r = match auth.strip_prefix("key:") {
            Some(k) => r.header("x-api-key", k),
            None if auth.is_empty() => r,
            None => r.bearer_auth(auth),
        };
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Asks for write on payments as `tok`.
    pub(crate) async fn ask(&self, tok: &str, seconds: u32) -> (u16, Value) {
        self.call(
            "POST",
            "/v1/aws/grants",
            tok,
            Some(json!({"project": "payments", "duration_seconds": seconds, "reason": "rotate the <b>key</b>"})),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_managed_through_the_admin_api_with_their_trail() {
    let gw = start("").await;
    let api = Api::new(&gw);
    let members = "/v1/organizations/aws_access/members";
    let bo = json!({"project": "payments", "emails": ["Bo@Example.com"], "level": "write",
                    "from": "2020-01-01T00:00:00Z", "until": "2099-01-01T00:00:00Z"});
    assert_eq!(api.call("POST", members, "", Some(bo.clone())).await.0, 401);
    assert_eq!(
        api.call("POST", members, &format!("key:{READ}"), Some(bo.clone()))
            .await
            .0,
        403
    );
    let (s, v) = api
        .call(
            "POST",
            members,
            &format!("key:{WRITE}"),
            Some(json!({"project": "billing", "groups": ["x"]})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let (s, m) = api
        .call("POST", members, &format!("key:{WRITE}"), Some(bo))
        .await;
    assert_eq!(s, 200, "{m}");
    let id = m["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("awm_"));
    assert_eq!(m["emails"], json!(["bo@example.com"]));
    assert_eq!(m["created_by"], "admin-key:ops");

    let (s, list) = api
        .call(
            "GET",
            &format!("{members}?limit=10"),
            &format!("key:{READ}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(
        api.call(
            "GET",
            &format!("{members}?limit=1001"),
            &format!("key:{READ}"),
            None
        )
        .await
        .0,
        400
    );

    // bo is a member now, by email, through the store.
    let bo_token = token("bo", &[]);
    let (s, st) = api.call("GET", "/v1/aws/status", &bo_token, None).await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["user"]["email"], "bo@example.com");
    assert_eq!(st["projects"][0]["name"], "payments");
    assert_eq!(st["projects"][0]["level"], "write");
    assert_eq!(st["projects"][0]["until"], "2099-01-01T00:00:00Z");

    // An admin-group session token may change members too.
    let admin = token("root", &["gw-admins"]);
    let path = format!("{members}/{id}");
    assert_eq!(api.call("DELETE", &path, &admin, None).await.0, 200);
    assert_eq!(api.call("DELETE", &path, &admin, None).await.0, 404);
    let (_, st) = api.call("GET", "/v1/aws/status", &bo_token, None).await;
    assert_eq!(st["projects"], json!([]));

    let (s, trail) = api
        .call(
            "GET",
            "/v1/organizations/aws_access/audit",
            &format!("key:{READ}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let steps: Vec<(&str, &str, &str)> = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["subject"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("aws.member.removed", "oidc:root", id.as_str()),
            ("aws.member.added", "admin-key:ops", id.as_str())
        ]
    );
    let added = gw.audit("aws.member.added");
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["member"], id.as_str());
    assert_eq!(added[0]["level"], "write");
    assert_eq!(added[0]["client_ip"], "127.0.0.1");
    let removed = gw.audit("aws.member.removed");
    assert_eq!(removed[0]["actor"], "oidc:root");
    assert_eq!(removed[0]["client_ip"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_approved_through_the_admin_api_shows_in_the_status() {
    let gw = start("").await;
    let api = Api::new(&gw);
    let ana = token("ana", &["payments"]);
    // Refusals first: outside the project, a bad duration.
    let (s, v) = api.ask(&token("carl", &["ops"]), 3600).await;
    assert_eq!((s, v["code"].as_str()), (403, Some("not_member")));
    let (s, v) = api.ask(&ana, 600).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("bad_request")));

    let (s, g) = api.ask(&ana, 3600).await;
    assert_eq!(s, 201, "{g}");
    let id = g["id"].as_str().unwrap().to_owned();
    assert_eq!(g["status"], "pending");
    assert_eq!(
        g["approval_url"],
        format!("{}/aws/approvals/{id}", api.base).as_str()
    );
    let (s, v) = api.ask(&ana, 1800).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("already_pending")));
    // Only the requester sees it.
    let (s, mine) = api
        .call("GET", &format!("/v1/aws/grants/{id}"), &ana, None)
        .await;
    assert_eq!((s, mine["project"].as_str()), (200, Some("payments")));
    assert_eq!(mine["reason"], "rotate the <b>key</b>");
    let (s, v) = api
        .call(
            "GET",
            &format!("/v1/aws/grants/{id}"),
            &token("bo", &["payments"]),
            None,
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));

    // The requester, an admin as well, may not approve their own request.
    let approve = format!("/v1/organizations/aws_access/grants/{id}/approve");
    let ana_admin = token("ana", &["payments", "gw-admins"]);
    let (s, v) = api.call("POST", &approve, &ana_admin, None).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["message"], "you cannot approve your own request");
    // Nor by adding an admin key header that is not text: with a key, only the key counts.
    let res = api
        .c
        .post(format!("{}{approve}", api.base))
        .bearer_auth(&ana_admin)
        .header(
            "x-api-key",
            reqwest::header::HeaderValue::from_bytes(b"\xff").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let (s, v) = api
        .call("GET", &format!("/v1/aws/grants/{id}"), &ana, None)
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("pending")), "{v}");

    // Two approvers at once: one wins, the other finds it decided.
    let root = token("root", &["gw-admins"]);
    let key = format!("key:{WRITE}");
    let (a, b) = tokio::join!(
        api.call("POST", &approve, &root, None),
        api.call("POST", &approve, &key, None)
    );
    let mut codes = [a.0, b.0];
    codes.sort_unstable();
    assert_eq!(codes, [200, 409], "{a:?} {b:?}");
    let winner = if a.0 == 200 { &a.1 } else { &b.1 };
    let by = winner["decided_by"].as_str().unwrap().to_owned();
    assert!(by == "oidc:root" || by == "admin-key:ops", "{by}");
    assert_eq!(gw.audit("aws.grant.approved").len(), 1);

    // The developer's status shows the grant in force.
    let (s, st) = api.call("GET", "/v1/aws/status", &ana, None).await;
    assert_eq!(s, 200);
    let p = &st["projects"][0];
    assert_eq!(p["write_approval"], "required");
    assert_eq!(p["grants"][0]["id"], id.as_str());
    assert_eq!(p["grants"][0]["status"], "approved");
    assert_eq!(p["grants"][0]["decided_by"], by.as_str());
    let until = time::OffsetDateTime::parse(
        p["grants"][0]["until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = until - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(55) && left <= time::Duration::hours(1),
        "{left}"
    );

    // Revoked, it is no longer in force; the list by status finds it.
    let revoke = format!("/v1/organizations/aws_access/grants/{id}/revoke");
    assert_eq!(api.call("POST", &revoke, &key, None).await.0, 200);
    assert_eq!(api.call("POST", &revoke, &key, None).await.0, 409);
    let (_, st) = api.call("GET", "/v1/aws/status", &ana, None).await;
    assert_eq!(st["projects"][0]["grants"][0]["status"], "revoked");
    let (s, list) = api
        .call(
            "GET",
            "/v1/organizations/aws_access/grants?status=revoked&project=payments&limit=5",
            &format!("key:{READ}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["user"]["email"], "ana@example.com");

    // The stream names who and how long, never the reason's text.
    let asked = gw.audit("aws.grant.requested");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["grant"], id.as_str());
    assert_eq!(asked[0]["duration_seconds"], 3600);
    assert_eq!(asked[0]["reason_len"], 21);
    assert_eq!(
        gw.audit("aws.grant.revoked")[0]["approver"],
        "admin-key:ops"
    );
    assert!(!gw.stdout().contains("rotate the"));
}

/// A one-request HTTP server on loopback that hands back the body it received.
pub(crate) async fn hook() -> (u16, tokio::sync::oneshot::Receiver<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await
                        .unwrap();
                    let _ = tx.send(body.as_bytes().to_vec());
                    return;
                }
            }
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_announces_a_new_request_and_no_log_names_it() {
    let (port, got) = hook().await;
    let secret_path = "hook/T000-secret-path";
    let gw = start(&format!(
        "  webhook_url: http://127.0.0.1:{port}/{secret_path}\n"
    ))
    .await;
    let api = Api::new(&gw);
    let (s, g) = api.ask(&token("ana", &["payments"]), 1800).await;
    assert_eq!(s, 201, "{g}");
    let body = tokio::time::timeout(Duration::from_secs(20), got)
        .await
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with("ana@example.com asks for write access to project payments (prod) for 30 minutes: \"rotate the &lt;b&gt;key&lt;/b&gt;\""),
        "{text}"
    );
    assert!(
        text.ends_with(g["approval_url"].as_str().unwrap()),
        "{text}"
    );
    gw.assert_absent(&[secret_path]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_fails_nothing_and_is_logged_without_its_url() {
    let port = crate::support::pg::free_port();
    let secret_path = "hook/T000-unreachable-secret";
    let gw = start(&format!(
        "  webhook_url: http://127.0.0.1:{port}/{secret_path}\n"
    ))
    .await;
    let api = Api::new(&gw);
    let (s, g) = api.ask(&token("ana", &["payments"]), 1800).await;
    assert_eq!(s, 201, "{g}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !gw.stderr().contains("the write-request webhook failed") {
        assert!(
            std::time::Instant::now() < deadline,
            "no failure logged:\n{}",
            gw.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = gw
        .stderr()
        .lines()
        .find(|l| l.contains("the write-request webhook failed"))
        .unwrap()
        .to_owned();
    assert!(line.contains(g["id"].as_str().unwrap()), "{line}");
    gw.assert_absent(&[secret_path, &format!("127.0.0.1:{port}")]);
}

/// The approval page's decision POSTs are counted per network from the request head, like
/// `POST /device`: past `rate_limits.device_verify` they are refused before a session, a CSRF
/// token or the store is looked at, and the refusal is audited.
/// An unauthenticated request for a developer's write request is audited with the route, not
/// the client's path, so an id of any length is not written down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bearer_is_audited_with_the_route_not_the_path() {
    let gw = start("").await;
    let api = Api::new(&gw);
    let long = "g".repeat(20_000);
    let (s, v) = api
        .call("GET", &format!("/v1/aws/grants/{long}"), "", None)
        .await;
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")));
    let denied = gw.audit("auth.denied");
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["path"], "/v1/aws/grants/{id}");
    // The same on the Admin API.
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/v1/organizations/aws_access/members/{long}"),
            "",
            None,
        )
        .await;
    assert_eq!(s, 401);
    let denied = gw.audit("admin.denied");
    assert_eq!(
        denied[0]["path"],
        "/v1/organizations/aws_access/members/{id}"
    );
    assert!(!gw.stdout().contains(&long[..100]));
}

/// A decision POST naming an id longer than any request's is not found, before a session, a
/// CSRF token or the store is looked at, and the id reaches no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_approval_id_is_not_found_and_not_logged() {
    let gw = start("").await;
    let c = crate::support::client();
    let origin = format!("http://127.0.0.1:{}", gw.port);
    let long = "g".repeat(20_000);
    let r = c
        .post(format!("{origin}/aws/approvals/{long}/approve"))
        .header("origin", "https://evil.example")
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .post(format!("{origin}/aws/approvals/grt_short/approve"))
        .header("origin", "https://evil.example")
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a short one is still judged and blocked");
    assert_eq!(gw.audit("aws.approval.refused").len(), 1);
    assert!(!gw.stdout().contains(&long[..100]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_decisions_are_rate_limited_per_address() {
    let gw = start("rate_limits: {device_verify: {max: 2, window_seconds: 600}}\n").await;
    let c = crate::support::client();
    let origin = format!("http://127.0.0.1:{}", gw.port);
    let post = |action: &str| {
        c.post(format!("{origin}/aws/approvals/grt_guess/{action}"))
            .header("origin", &origin)
            .form(&[("csrf", "guess")])
            .send()
    };
    for action in ["approve", "deny"] {
        let r = post(action).await.unwrap();
        assert_eq!(r.status(), 403, "under the limit the page answers");
    }
    let r = post("approve").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("Too many attempts"));
    let refused = gw.audit("aws.approval.refused");
    assert_eq!(
        refused
            .last()
            .map(|e| (e["reason"].clone(), e["grant"].clone())),
        Some((json!("rate_limited"), json!("grt_guess"))),
        "{refused:?}"
    );
    // A path's id longer than any request's is counted too, and not written to the log.
    let long = "g".repeat(20_000);
    let r = c
        .post(format!("{origin}/aws/approvals/{long}/deny"))
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(!gw.stdout().contains(&long[..100]));
    // The device pages count apart.
    let r = c
        .post(format!("{origin}/device"))
        .header("origin", &origin)
        .form(&[("user_code", "BCDFGHJK")])
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 429);
}

/// The sweeper deletes the agent-access trail past `admin.audit_retention_days`, with its default
/// of 365 days also when the config has no `admin` section (the first sweep runs at start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_keeps_the_trail_a_year_without_an_admin_section() {
    use std::str::FromStr;
    let url = shared().new_db();
    let opts = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
    let s = claude_gateway::store::Store::connect(
        opts,
        2,
        Duration::from_secs(10),
        3,
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    s.migrate().await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO aws_audit (at, actor, action, subject) VALUES
         (now() - interval '400 days', 'admin-key:ops', 'aws.member.added', 'awm_old'),
         (now() - interval '300 days', 'admin-key:ops', 'aws.member.added', 'awm_kept')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let all = sections("");
    let yaml = all[all.find("aws_access:").unwrap()..].to_owned();
    assert!(!yaml.contains("admin:"));
    let gw =
        tokio::task::spawn_blocking(move || Gateway::start(|port| config(port, &url, &yaml), &[]))
            .await
            .unwrap();
    let subjects = || async {
        s.aws_audit(10, None)
            .await
            .unwrap()
            .iter()
            .map(|e| e["subject"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while subjects().await.len() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sweep: {:?}\n{}",
            subjects().await,
            gw.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(subjects().await, ["awm_kept"]);
}
