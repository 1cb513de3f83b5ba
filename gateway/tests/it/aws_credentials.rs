//! The credential endpoint against the real gateway, a real PostgreSQL and moto's STS: who gets
//! credentials for which project and level, the refusals in words, the cache, and the audit
//! trail without a secret in it.

use claude_gateway::config::{Env, ProcessEnv};
use serde_json::{json, Value};

use crate::support::gateway::{config, Gateway, JWT_SECRET};
use crate::support::moto::{Moto, ENV};
use crate::support::pg::shared;

/// A session token for `sub` in `groups`, with multi-factor proof at `mfa_at` (unix seconds).
pub(crate) fn token(sub: &str, groups: &[&str], mfa_at: Option<i64>) -> String {
    token_at(sub, groups, mfa_at, time::OffsetDateTime::now_utc())
}

/// Like [`token`], issued at `iat`.
fn token_at(sub: &str, groups: &[&str], mfa_at: Option<i64>, iat: time::OffsetDateTime) -> String {
    use claude_gateway::auth::token::{Identity, SessionKeys};
    use claude_gateway::config::Secret;
    let keys = SessionKeys::new(&[Secret::new(JWT_SECRET)], None);
    let who = Identity {
        sub: sub.to_owned(),
        email: Some(format!("{sub}@example.com")),
        name: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        mfa_at,
    };
    keys.mint(&who, iat, time::Duration::hours(8))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub(crate) fn aws_access(sts: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let soon = rfc3339(now + time::Duration::minutes(10));
    let later = rfc3339(now + time::Duration::days(30));
    format!(
        "aws_access:
  sts_endpoint_url: {sts}
  projects:
    - name: payments
      role_arn: arn:aws:iam::111111111111:role/agent-payments
      regions: [eu-west-1]
      tag: {{key: project, value: payments}}
      environment: prod
      read: ['s3:List*', 's3:GetObject', 'logs:Describe*']
      write: ['s3:PutObject']
      approvers: [payments-leads]
    - name: sandbox
      role_arn: arn:aws:iam::222222222222:role/agent-sandbox
      regions: [us-east-1]
      tag: {{key: project, value: sandbox}}
      environment: nonprod
      read: ['s3:List*']
      write: ['s3:PutObject']
      write_approval: auto
  members:
    - {{project: payments, groups: [payments], level: write, until: '{later}'}}
    - {{project: sandbox, emails: [ana@example.com], level: write}}
    - {{project: sandbox, emails: [leo@example.com], level: read, until: '{soon}'}}
"
    )
}

pub(crate) async fn get(gw: &Gateway, bearer: Option<&str>, query: &str) -> (u16, Value) {
    let mut req = crate::support::client().get(format!(
        "http://127.0.0.1:{}/v1/aws/credentials?{query}",
        gw.port
    ));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_get_credentials_for_their_level_and_everyone_else_a_reason() {
    let (moto, gw) = tokio::task::spawn_blocking(|| {
        let moto = Moto::start();
        let url = shared().new_db();
        let extra = aws_access(&moto.url);
        let gw = Gateway::start(|port| config(port, &url, &extra), &ENV);
        (moto, gw)
    })
    .await
    .unwrap();

    // A member reads: moto's STS answers a temporary key.
    let ana = token("ana", &["payments"], None);
    let (s, creds) = get(&gw, Some(&ana), "project=payments").await;
    assert_eq!(s, 200, "{creds}");
    let key = creds["AccessKeyId"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ASIA"), "{creds}");
    let secret = creds["SecretAccessKey"].as_str().unwrap().to_owned();
    let session = creds["Token"].as_str().unwrap().to_owned();
    let expires = time::OffsetDateTime::parse(
        creds["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(55) && left <= time::Duration::hours(1),
        "{left}"
    );

    // Asked again, the same credential comes back from the cache.
    let (_, again) = get(&gw, Some(&ana), "project=payments&level=read").await;
    assert_eq!(again["AccessKeyId"], key.as_str());
    // A session with recent MFA gets its own credential, tagged so; and the one tagged
    // `mfa=true` never goes back to a session without it.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ana_mfa = token("ana", &["payments"], Some(now));
    let (s, with_mfa) = get(&gw, Some(&ana_mfa), "project=payments").await;
    assert_eq!(s, 200, "{with_mfa}");
    assert_ne!(with_mfa["AccessKeyId"], key.as_str());
    let (_, without) = get(&gw, Some(&ana), "project=payments").await;
    assert_eq!(without["AccessKeyId"], key.as_str());

    // The refusals, each with its code and a sentence.
    let cases = [
        (
            "project=billing",
            404,
            "no_project",
            "there is no project billing",
        ),
        (
            "project=payments&level=write",
            403,
            "write_not_approved",
            "needs an approved request",
        ),
        (
            "project=payments&level=admin",
            400,
            "bad_request",
            "read or write",
        ),
    ];
    for (q, status, code, says) in cases {
        let (s, body) = get(&gw, Some(&ana), q).await;
        assert_eq!(
            (s, body["code"].as_str().unwrap()),
            (status, code),
            "{q}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{q}: {body}"
        );
    }
    let outsider = token("bob", &["frontend"], None);
    let (s, body) = get(&gw, Some(&outsider), "project=payments").await;
    assert_eq!((s, body["code"].as_str().unwrap()), (403, "not_member"));
    assert_eq!(body["message"], "you are not a member of project payments");
    let (s, body) = get(&gw, None, "project=payments").await;
    assert_eq!((s, body["code"].as_str().unwrap()), (401, "unauthorized"));

    // A window that ends in less than 15 minutes gives nothing, and says when it ends.
    let leo = token("leo", &[], None);
    let (s, body) = get(&gw, Some(&leo), "project=sandbox").await;
    assert_eq!(
        (s, body["code"].as_str().unwrap()),
        (403, "access_ending"),
        "{body}"
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("your access to project sandbox ends at "));

    // Auto approval on a nonprod project: a writer gets write without a grant or MFA.
    let ana_sandbox = token("ana", &[], None);
    let (s, body) = get(&gw, Some(&ana_sandbox), "project=sandbox&level=write").await;
    assert_eq!(s, 200, "{body}");
    assert_ne!(
        body["AccessKeyId"],
        key.as_str(),
        "levels and projects are apart"
    );

    // A sign-in older than token_max_age_seconds (600 by default) is sent back for a refresh,
    // which asks the IdP again.
    let old = token_at(
        "ana",
        &["payments"],
        None,
        time::OffsetDateTime::now_utc() - time::Duration::minutes(11),
    );
    let (s, body) = get(&gw, Some(&old), "project=payments").await;
    assert_eq!(
        (s, body["code"].as_str().unwrap()),
        (401, "sign_in_stale"),
        "{body}"
    );

    // The audit trail names who got what, never a secret.
    let issued = gw.audit("aws.credentials");
    assert_eq!(issued.len(), 5, "{issued:?}");
    assert_eq!(issued[0]["project"], "payments");
    assert_eq!(issued[0]["level"], "read");
    assert_eq!(issued[0]["mfa"], false);
    assert_eq!(issued[0]["cached"], false);
    assert_eq!(issued[1]["cached"], true);
    assert_eq!(
        (&issued[2]["mfa"], &issued[2]["cached"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(
        (&issued[3]["mfa"], &issued[3]["cached"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(issued[4]["level"], "write");
    let refused = gw.audit("aws.credentials.refused");
    // Each refusal names what was asked, when the query said it.
    let asked: Vec<(&str, &str)> = refused
        .iter()
        .map(|e| {
            (
                e["project"].as_str().unwrap_or("-"),
                e["level"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        asked,
        [
            ("billing", "read"),
            ("payments", "write"),
            ("-", "-"),
            ("payments", "read"),
            ("sandbox", "read"),
            ("payments", "read")
        ]
    );
    let codes: Vec<&str> = refused.iter().filter_map(|e| e["code"].as_str()).collect();
    assert_eq!(
        codes,
        [
            "no_project",
            "write_not_approved",
            "bad_request",
            "not_member",
            "access_ending",
            "sign_in_stale"
        ]
    );
    gw.assert_absent(&[&secret, &session]);
    drop(moto);
}

/// A container or an orchestrator needs no CLI: an AWS SDK (boto3 here) reads the endpoint
/// through `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with the gateway session token in
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN`, and calls AWS (moto) with what it gets.
#[test]
fn an_aws_sdk_reads_the_endpoint_as_container_credentials() {
    let moto = Moto::start();
    let url = shared().new_db();
    let extra = aws_access(&moto.url);
    let gw = Gateway::start(|port| config(port, &url, &extra), &ENV);
    let ana = token("ana", &["payments"], None);
    let script = "import boto3, sys\n\
                  s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='eu-west-1')\n\
                  print(s3.list_buckets()['ResponseMetadata']['HTTPStatusCode'])\n\
                  sts = boto3.client('sts', endpoint_url=sys.argv[1], region_name='us-east-1')\n\
                  print(sts.get_caller_identity()['Arn'])\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, &moto.url])
        .env_clear()
        .env("PATH", ProcessEnv.var("PATH").unwrap_or_default())
        .env("HOME", ProcessEnv.var("HOME").unwrap_or_default())
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!(
                "http://127.0.0.1:{}/v1/aws/credentials?project=payments",
                gw.port
            ),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", format!("Bearer {ana}"))
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("200"));
    let arn = lines.next().unwrap_or_default();
    assert!(
        arn.starts_with("arn:aws:sts::111111111111:assumed-role/agent-payments/gw-ana"),
        "{arn}"
    );
    let issued = gw.audit("aws.credentials");
    assert_eq!(
        issued.len(),
        1,
        "one credential serves both clients: {issued:?}"
    );
}

/// `aws_access` with the proxy section `proxy` (a YAML flow mapping) under it.
pub(crate) fn aws_access_with_proxy(sts: &str, proxy: &str) -> String {
    format!("{}  proxy: {proxy}\n", aws_access(sts))
}

/// Gateway-only credentials (`via=gateway`): an `AGW…` key AWS does not know, a 40-character
/// secret and a sealed session, issued fresh each time and never mixed with the STS cache, which
/// works as before next to them; the audit line says `"via":"gateway"` and holds no secret. A
/// write through the gateway needs no grant while every write call is held for approval
/// (`risk.writes`, the default) and needs one again when it is not; and without a proxy section
/// the gateway route is not configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_only_credentials_carry_a_gateway_key_and_stay_apart_from_sts() {
    let (moto, gw, no_proxy, writes_off) = tokio::task::spawn_blocking(|| {
        let moto = Moto::start();
        let start = |extra: String| {
            let url = shared().new_db();
            Gateway::start(|port| config(port, &url, &extra), &ENV)
        };
        let gw = start(aws_access_with_proxy(&moto.url, "{}"));
        let no_proxy = start(aws_access(&moto.url));
        let writes_off = start(aws_access_with_proxy(&moto.url, "{risk: {writes: false}}"));
        (moto, gw, no_proxy, writes_off)
    })
    .await
    .unwrap();
    let ana = token("ana", &["payments"], None);

    // STS as before, next to the proxy section.
    let (s, sts) = get(&gw, Some(&ana), "project=payments").await;
    assert_eq!(s, 200, "{sts}");
    let sts_key = sts["AccessKeyId"].as_str().unwrap().to_owned();
    assert!(sts_key.starts_with("ASIA"), "{sts}");

    let (s, via) = get(&gw, Some(&ana), "project=payments&via=gateway").await;
    assert_eq!(s, 200, "{via}");
    let key = via["AccessKeyId"].as_str().unwrap().to_owned();
    let rest = key.strip_prefix("AGW").unwrap_or_else(|| panic!("{via}"));
    assert_eq!(rest.len(), 17, "{key}");
    assert!(
        rest.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
        "{key}"
    );
    let secret = via["SecretAccessKey"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 40, "{via}");
    let sealed = via["Token"].as_str().unwrap().to_owned();
    assert!(sealed.len() > 20, "{via}");
    assert_ne!(sealed, sts["Token"].as_str().unwrap());
    let expires = time::OffsetDateTime::parse(
        via["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(55) && left <= time::Duration::hours(1),
        "{left}"
    );

    // Each one is its own session; the STS cache still answers the STS key.
    let (_, again) = get(&gw, Some(&ana), "project=payments&via=gateway").await;
    assert_ne!(again["AccessKeyId"], key.as_str());
    assert!(again["AccessKeyId"].as_str().unwrap().starts_with("AGW"));
    let (_, sts_again) = get(&gw, Some(&ana), "project=payments").await;
    assert_eq!(sts_again["AccessKeyId"], sts_key.as_str());

    // Write on payments (prod, write_approval: required) with no grant: through the gateway,
    // with every write call held, it is issued (prod still asks for a sign-in with MFA).
    let (s, body) = get(&gw, Some(&ana), "project=payments&level=write&via=gateway").await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("mfa_needed")),
        "{body}"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ana_mfa = token("ana", &["payments"], Some(now));
    let (s, write) = get(
        &gw,
        Some(&ana_mfa),
        "project=payments&level=write&via=gateway",
    )
    .await;
    assert_eq!(s, 200, "{write}");
    assert!(write["AccessKeyId"].as_str().unwrap().starts_with("AGW"));
    // Straight from STS, the same write still needs an approved request.
    let (s, body) = get(&gw, Some(&ana_mfa), "project=payments&level=write").await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("write_not_approved")),
        "{body}"
    );
    // An outsider gets nothing through the gateway either.
    let bob = token("bob", &["frontend"], None);
    let (s, body) = get(&gw, Some(&bob), "project=payments&via=gateway").await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("not_member")),
        "{body}"
    );

    let (s, body) = get(&gw, Some(&ana), "project=payments&via=nonsense").await;
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("via"), "{body}");

    let issued = gw.audit("aws.credentials");
    let via_of: Vec<(&str, &str)> = issued
        .iter()
        .map(|e| (e["via"].as_str().unwrap(), e["level"].as_str().unwrap()))
        .collect();
    assert_eq!(
        via_of,
        [
            ("sts", "read"),
            ("gateway", "read"),
            ("gateway", "read"),
            ("sts", "read"),
            ("gateway", "write")
        ]
    );
    assert_eq!(issued[1]["access_key_id"], key.as_str());
    assert_eq!(issued[1]["cached"], false);
    assert_eq!(issued[1]["project"], "payments");
    assert_eq!(issued[4]["grant"], Value::Null);
    assert_eq!(issued[4]["mfa"], true);
    let line = issued[1].to_string();
    assert!(!line.contains(&secret) && !line.contains(&sealed), "{line}");
    let write_secret = write["SecretAccessKey"].as_str().unwrap();
    let write_token = write["Token"].as_str().unwrap();
    gw.assert_absent(&[&secret, &sealed, write_secret, write_token]);

    // No proxy section: the gateway route is not configured; STS is unchanged.
    let (s, body) = get(&no_proxy, Some(&ana), "project=payments&via=gateway").await;
    assert_eq!(
        (s, body["code"].as_str()),
        (404, Some("not_configured")),
        "{body}"
    );
    let (s, body) = get(&no_proxy, Some(&ana), "project=payments").await;
    assert_eq!(s, 200, "{body}");
    assert!(body["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));

    // With write calls not held (`risk.writes: false`), write through the gateway needs an
    // approved request again.
    let (s, body) = get(
        &writes_off,
        Some(&ana_mfa),
        "project=payments&level=write&via=gateway",
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("write_not_approved")),
        "{body}"
    );
    let (s, body) = get(&writes_off, Some(&ana), "project=payments&via=gateway").await;
    assert_eq!(s, 200, "{body}");
    assert!(body["AccessKeyId"].as_str().unwrap().starts_with("AGW"));
    drop(moto);
}
