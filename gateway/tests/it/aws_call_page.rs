//! A held AWS call on the approval page, with the real gateway, PostgreSQL and test IdP: the
//! approver reads the call (operation, region, the masked parameters escaped, why it is held)
//! and approves it; the requester and someone outside the approver groups are refused; a form
//! POST without the session's CSRF token, or from another site, is blocked.

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::aws_approval_page::{approver_cookie, no_redirects};
use crate::aws_call_approvals::call;
use crate::aws_grants::sections;
use crate::support::idp::{IdpOptions, TestUser};
use crate::support::runtime;
use crate::support::stack::signin_with;
use claude_gateway::store::aws_proxy::CallStatus;
use claude_gateway::store::Store;

/// The CSRF token of the page's form.
fn csrf(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's CSRF token")
        .to_owned()
}

#[test]
fn an_approver_approves_a_held_call_and_the_requester_cannot() {
    let rt = runtime();
    let users = [
        TestUser::new("ana").groups(&["payments"]),
        TestUser::new("lead").groups(&["payments-leads"]),
        TestUser::new("eve").groups(&["ops"]),
    ];
    let (idp, gw, base) = signin_with(&users, IdpOptions::default(), "", &sections(""));
    rt.block_on(async {
        let store = Store::lazy(
            gw.postgres_url().parse().unwrap(),
            2,
            std::time::Duration::from_secs(10),
        );
        // The proxy asks; here its store call stands in for it.
        let mut held = call("<b>ledger</b>");
        held.reasons = vec!["a write".into(), "matches s3:Put*".into()];
        let (asked, new) = store
            .aws_ask_call("cap_page_test", &held, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert!(new);
        let url = format!("{base}/aws/approvals/{}", asked.id);
        let plain = no_redirects();
        let open = |cookie: String| {
            let (plain, url) = (plain.clone(), url.clone());
            async move {
                let r = plain
                    .get(&url)
                    .header("cookie", cookie.split(';').next().unwrap())
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let decide = |cookie: String, token: String, origin: &'static str| {
            let (plain, url) = (plain.clone(), url.clone());
            let origin = if origin.is_empty() {
                url.split("/aws/").next().unwrap().to_owned()
            } else {
                origin.to_owned()
            };
            async move {
                let r = plain
                    .post(format!("{url}/approve"))
                    .header("cookie", cookie.split(';').next().unwrap())
                    .header("origin", origin)
                    .form(&[("csrf", token)])
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };

        // Unsigned, the page sends the browser to the IdP.
        let r = plain.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 302);
        assert!(r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(&idp.issuer));

        // The requester reads their call and is told no, on the page and when posting.
        let ana = approver_cookie(&idp, &url, "ana").await;
        let (s, page) = open(ana.clone()).await;
        assert_eq!(s, 403, "{page}");
        assert!(
            page.contains("You cannot approve your own request."),
            "{page}"
        );
        assert!(!page.contains("id=\"approve\""));
        let (s, _) = decide(ana.clone(), "guess".into(), "").await;
        assert_eq!(s, 403);

        // Someone outside the approver groups sees nothing of the call.
        let eve = approver_cookie(&idp, &url, "eve").await;
        let (s, page) = open(eve).await;
        assert_eq!(s, 403);
        assert!(page.contains("<title>Not an approver</title>"), "{page}");
        assert!(
            !page.contains("ledger") && !page.contains("PutObject"),
            "{page}"
        );

        // The approver reads the call, every value escaped, the parameters as masked.
        let lead = approver_cookie(&idp, &url, "lead").await;
        let (s, page) = open(lead.clone()).await;
        assert_eq!(s, 200, "{page}");
        assert!(page.contains("<title>AWS call approval</title>"), "{page}");
        for want in [
            "<dd>payments</dd>",
            "<dd>prod</dd>",
            "<dd>ana@example.com</dd>",
            "<dd>s3</dd>",
            "<dd>PutObject</dd>",
            "<dd>s3:PutObject</dd>",
            "<dd>eu-west-1</dd>",
            "<dd>a write; matches s3:Put*</dd>",
            "&quot;Key&quot;: &quot;&lt;b&gt;ledger&lt;/b&gt;&quot;",
            "&quot;SSECustomerKey&quot;: &quot;[MASKED:secret]&quot;",
            "id=\"approve\"",
        ] {
            assert!(page.contains(want), "{want} in {page}");
        }
        assert!(!page.contains("<b>ledger"), "{page}");
        let token = csrf(&page);

        // Without the session's CSRF token, or from another site: blocked, still pending.
        let (s, page) = decide(lead.clone(), "guess".into(), "").await;
        assert_eq!(s, 403);
        assert!(page.contains("Request blocked"), "{page}");
        let (s, _) = decide(lead.clone(), token.clone(), "https://evil.example").await;
        assert_eq!(s, 403);
        let reasons: Vec<Value> = gw
            .audit("aws.approval.refused")
            .iter()
            .map(|e| e["reason"].clone())
            .collect();
        assert_eq!(
            reasons,
            vec![json!("csrf"), json!("csrf"), json!("cross_site")]
        );
        let row = store.aws_call_approval(&asked.id).await.unwrap().unwrap();
        assert_eq!(row.status, CallStatus::Pending);

        // The approver's own held call: refused with the session's valid token.
        let mut own = call("their own");
        own.user_sub = "lead".into();
        own.user_email = Some("lead@example.com".into());
        own.fingerprint = "another call".into();
        let (mine, _) = store
            .aws_ask_call("cap_page_own", &own, OffsetDateTime::now_utc())
            .await
            .unwrap();
        let r = plain
            .post(format!("{base}/aws/approvals/{}/approve", mine.id))
            .header("cookie", lead.split(';').next().unwrap())
            .header("origin", base.as_str())
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let page = r.text().await.unwrap();
        assert!(
            page.contains("You cannot approve your own request."),
            "{page}"
        );
        let row = store.aws_call_approval(&mine.id).await.unwrap().unwrap();
        assert_eq!(row.status, CallStatus::Pending);

        // Approve, for real.
        let (s, page) = decide(lead.clone(), token.clone(), "").await;
        assert_eq!(s, 200, "{page}");
        assert!(page.contains("<title>Approved</title>"), "{page}");
        assert!(
            page.contains("The call s3:PutObject on project payments is approved until"),
            "{page}"
        );
        let row = store.aws_call_approval(&asked.id).await.unwrap().unwrap();
        assert_eq!(row.status, CallStatus::Approved);
        assert_eq!(row.decided_by.as_deref(), Some("lead@example.com"));
        let approved = gw.audit("aws.call_approval.approved");
        assert_eq!(approved.len(), 1);
        assert_eq!(approved[0]["approval"], asked.id.as_str());
        assert_eq!(approved[0]["approver"], "lead@example.com");
        assert_eq!(approved[0]["client_ip"], "127.0.0.1");
        assert!(approved[0].get("params").is_none());

        // Decided: the page says so, and a second decision takes nothing.
        let (s, page) = open(lead.clone()).await;
        assert_eq!(s, 200);
        assert!(
            page.contains("This request is approved, not pending."),
            "{page}"
        );
        let (s, _) = decide(lead, token, "").await;
        assert_eq!(s, 409);
        gw.assert_no_secrets();
    });
}
