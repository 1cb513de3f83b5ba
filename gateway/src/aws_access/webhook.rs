//! The optional announcement of a new write request or held call: a Slack-compatible
//! `{"text": …}` POSTed to `aws_access.webhook_url` in a background task, bounded in time, never
//! following a redirect, never holding up or failing the request. The URL is a secret: no log
//! line carries it.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use serde_json::json;

use crate::config::aws_access::{AwsProject, Environment};
use crate::state::AppState;
use crate::store::aws_access::GrantRow;
use crate::store::aws_proxy::CallApprovalRow;

/// How long one announcement may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most characters of the reason an announcement carries.
pub const REASON_CHARS: usize = 200;
/// The most characters of a held call's operation an announcement carries.
pub const NAME_CHARS: usize = 100;

/// Slack's mrkdwn treats `<`, `>` and `&` as markup (`<!channel>` would page everyone).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The announcement's text.
pub fn text(project: &AwsProject, g: &GrantRow, approval_url: &str) -> String {
    let env = environment(project);
    let mut reason: String = g.reason.chars().take(REASON_CHARS).collect();
    if g.reason.chars().count() > REASON_CHARS {
        reason.push('…');
    }
    let minutes = g.duration_seconds / 60;
    format!(
        "{who} asks for write access to project {p} ({env}) for {minutes} minutes: \"{reason}\"\nApprove or deny: {approval_url}",
        who = slack_escape(g.user_email.as_deref().unwrap_or(&g.user_sub)),
        p = slack_escape(&project.name),
        reason = slack_escape(&reason),
    )
}

/// The announcement of a held call: who, what, where and the link; never its parameters.
pub fn call_text(project: &AwsProject, c: &CallApprovalRow, approval_url: &str) -> String {
    let what = match (&c.call.operation, &c.call.action) {
        (_, Some(a)) => a.clone(),
        (Some(o), None) => format!("{}:{o}", c.call.service),
        (None, None) => format!("an unnamed {} call", c.call.service),
    };
    let mut name: String = what.chars().take(NAME_CHARS).collect();
    if what.chars().count() > NAME_CHARS {
        name.push('…');
    }
    format!(
        "{who} asks to run {what} on project {p} ({env}) in {region}\nApprove or deny: {approval_url}",
        who = slack_escape(c.call.user_email.as_deref().unwrap_or(&c.call.user_sub)),
        what = slack_escape(&name),
        p = slack_escape(&project.name),
        env = environment(project),
        region = slack_escape(&c.call.region),
    )
}

fn environment(project: &AwsProject) -> &'static str {
    match project.environment {
        Environment::Prod => "prod",
        Environment::Nonprod => "nonprod",
    }
}

fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| match crate::upstream::anthropic::http_client() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("the write-request webhook has no HTTP client: {e}");
                None
            }
        })
        .as_ref()
}

/// Announces `g` when a webhook is configured; returns at once.
pub fn announce(state: &AppState, project: &AwsProject, g: &GrantRow, approval_url: &str) {
    send(
        state,
        "write-request",
        &g.id,
        text(project, g, approval_url),
    );
}

/// Announces held call `c` when a webhook is configured; returns at once.
pub fn announce_call(
    state: &AppState,
    project: &AwsProject,
    c: &CallApprovalRow,
    approval_url: &str,
) {
    send(
        state,
        "call-approval",
        &c.id,
        call_text(project, c, approval_url),
    );
}

/// POSTs `{"text": text}` to the webhook in the background, counting the result; `what` and
/// `id` name the announcement in a failure's log line.
fn send(state: &AppState, what: &'static str, id: &str, text: String) {
    let Some(url) = state
        .config
        .aws_access
        .as_ref()
        .and_then(|a| a.webhook_url.as_ref())
    else {
        return;
    };
    let url = url.expose().to_owned();
    let body = json!({ "text": text }).to_string();
    let counter = state.otel.m.aws_webhook.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let result = match client() {
            None => Err("no HTTP client".to_owned()),
            Some(c) => match c
                .post(&url)
                .timeout(TIMEOUT)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("answered {}", r.status().as_u16())),
                // reqwest's error text names the URL: keep only its kind.
                Err(e) if e.is_timeout() => Err("timed out".to_owned()),
                Err(e) if e.is_connect() => Err("could not connect".to_owned()),
                Err(_) => Err("request failed".to_owned()),
            },
        };
        match result {
            Ok(()) => counter.add(1, &[KeyValue::new("result", "sent")]),
            Err(why) => {
                counter.add(1, &[KeyValue::new("result", "failed")]);
                tracing::warn!(%id, "the {what} webhook failed: {why}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::aws_access::{example_project, WriteApproval};
    use crate::store::aws_access::GrantStatus;
    use time::macros::datetime;

    #[test]
    fn the_text_names_who_what_and_where_to_decide_with_markup_escaped() {
        let p = example_project(Environment::Prod, WriteApproval::Required);
        let g = GrantRow {
            id: "grt_1".into(),
            project: "payments".into(),
            user_sub: "ana".into(),
            user_email: Some("ana@example.com".into()),
            reason: format!("<!channel> & {}", "x".repeat(300)),
            duration_seconds: 1800,
            status: GrantStatus::Pending,
            requested_at: datetime!(2026-12-06 10:00 UTC),
            window_until: None,
            decided_at: None,
            decided_by: None,
            until: None,
        };
        let t = text(&p, &g, "https://gw.example.com/aws/approvals/grt_1");
        assert!(t.starts_with(
            "ana@example.com asks for write access to project payments (prod) for 30 minutes: \"&lt;!channel&gt; &amp; xxx"
        ), "{t}");
        assert!(t.contains(&format!("{}…\"", "x".repeat(187))), "{t}");
        assert!(!t.contains(&"x".repeat(188)));
        assert!(t.ends_with("\nApprove or deny: https://gw.example.com/aws/approvals/grt_1"));
    }

    #[test]
    fn a_held_call_is_announced_by_name_without_its_parameters() {
        let p = example_project(Environment::Prod, WriteApproval::Required);
        let mut c = CallApprovalRow {
            id: "cap_1".into(),
            call: crate::aws_proxy::held::HeldCall {
                fingerprint: "f".into(),
                project: "payments".into(),
                user_sub: "ana".into(),
                user_email: Some("ana@example.com".into()),
                service: "s3".into(),
                region: "eu-west-1".into(),
                operation: Some("DeleteObjects".into()),
                action: Some("s3:DeleteObjects".into()),
                params: serde_json::json!({"Bucket": "ledger", "Token": "[MASKED:token]"}),
                reasons: vec!["a write".into()],
            },
            status: crate::store::aws_proxy::CallStatus::Pending,
            requested_at: datetime!(2026-12-06 10:00 UTC),
            decided_at: None,
            decided_by: None,
            until: None,
        };
        let url = "https://gw.example.com/aws/approvals/cap_1";
        assert_eq!(
            call_text(&p, &c, url),
            "ana@example.com asks to run s3:DeleteObjects on project payments (prod) in eu-west-1\nApprove or deny: https://gw.example.com/aws/approvals/cap_1"
        );
        // An operation named by the client is cut and its markup escaped.
        c.call.action = None;
        c.call.operation = Some(format!("<!channel>{}", "x".repeat(200)));
        let t = call_text(&p, &c, url);
        assert!(t.contains("run s3:&lt;!channel&gt;xxx"), "{t}");
        assert!(
            t.contains(&format!("{}… on project", "x".repeat(86))),
            "{t}"
        );
        assert!(!t.contains("ledger") && !t.contains("MASKED"), "{t}");
    }
}
