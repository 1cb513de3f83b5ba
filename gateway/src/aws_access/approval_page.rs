//! The approval page, `GET /aws/approvals/{id}`: an approver signs in through the IdP (see
//! [`super::approver`]) and sees the request (a write request: project, environment, requester,
//! reason, duration, when; a held AWS call: its operation, region, masked parameters and why it
//! is held; see [`super::approval_request`]) with Approve and Deny, which POST to
//! `/aws/approvals/{id}/approve|deny` with the session's CSRF token. The requester is told they cannot approve their own request; anyone
//! outside the project's approver groups is refused. Same protections as the device pages: plain
//! HTML, escaped, a strict CSP, no caching, same-origin form posts only.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::approval::{Decider, NoDecision};
use super::approval_request::Request;
use super::approver::{self, csrf_ok, Approver};
use super::grants::MAX_ID_LEN;
use crate::auth::context::Ctx;
use crate::auth::device::same_origin;
use crate::auth::pages::{message, page};
use crate::config::aws_access::AwsProject;
use crate::http::pages::escape;
use crate::state::AppState;
use crate::store::aws_access as rows;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/aws/approvals/{id}", get(show))
        .route("/aws/approvals/{id}/{action}", post(decide))
}

fn unavailable() -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        "Approvals are unavailable for a moment. Try again shortly.",
    )
}

fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such request",
        "There is no request at this address.",
    )
}

/// The request and its project, after lapsed requests expired; or the page to answer.
async fn load(state: &AppState, id: &str) -> Result<(Request, AwsProject), Response> {
    let Some(a) = &state.config.aws_access else {
        return Err(not_found());
    };
    if id.len() > MAX_ID_LEN {
        return Err(not_found());
    }
    let r = match Request::load(state, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(not_found()),
        Err(e) => {
            tracing::error!("agent access store: {e}");
            return Err(unavailable());
        }
    };
    let p = a
        .projects
        .iter()
        .find(|p| p.name == r.project())
        .cloned()
        .ok_or_else(not_found)?;
    Ok((r, p))
}

/// Whether `id` could be a request's id (what the sign-in carries and redirects back to).
fn plausible(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn decider(a: &Approver) -> Decider<'_> {
    Decider {
        sub: Some(&a.sub),
        email: a.email.as_deref(),
        groups: Some(&a.groups),
    }
}

/// `GET /aws/approvals/{id}`.
async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if state.config.aws_access.is_none() || !plausible(&id) {
        return not_found();
    }
    // Signed in first: someone without a session costs the store nothing (loading expires lapsed
    // requests, a write), and learns nothing of which requests exist.
    let Some(a) = approver::session(&state, &headers) else {
        return approver::start(&state, &id).await;
    };
    let (r, p) = match load(&state, &id).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let title = r.title();
    let info = format!("<dl>{}</dl>", r.details(&p));
    let notice = |status: StatusCode, text: &str| {
        page(
            status,
            title,
            &format!("{info}<p class=\"notice\">{}</p>", escape(text)),
            &[],
        )
    };
    match r.may_decide(&state, &decider(&a), &p, state.clock.now()) {
        Ok(()) => {
            let base = super::grants::approval_url("", r.id());
            let body = format!(
                "{info}<form method=\"post\" action=\"{base}/approve\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" id=\"approve\">Approve</button> \
<button type=\"submit\" id=\"deny\" formaction=\"{base}/deny\" class=\"secondary\">Deny</button></form>",
                base = escape(&base),
                csrf = escape(&a.csrf),
            );
            page(StatusCode::OK, title, &body, &[])
        }
        // The requester sees their own request; anyone else outside the approvers, nothing of it.
        Err(n @ NoDecision::Own) => notice(StatusCode::FORBIDDEN, &format!("{}.", capitalized(&n))),
        Err(n @ NoDecision::NotApprover) => message(
            StatusCode::FORBIDDEN,
            "Not an approver",
            &format!("{}.", capitalized(&n)),
        ),
        Err(n) => notice(StatusCode::OK, &format!("{}.", capitalized(&n))),
    }
}

fn capitalized(n: &NoDecision) -> String {
    let s = n.to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

/// The POSTed form.
#[derive(Debug, Deserialize)]
struct DecisionForm {
    csrf: Option<String>,
}

/// `POST /aws/approvals/{id}/approve|deny`.
async fn decide(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let blocked = |why: &str| {
        ctx.audit(
            &state,
            "aws.approval.refused",
            serde_json::json!({"reason": why, "grant": id}),
        );
        message(
            StatusCode::FORBIDDEN,
            "Request blocked",
            "This request was blocked. Open the approval link again and decide from that page.",
        )
    };
    if (action != "approve" && action != "deny") || id.len() > MAX_ID_LEN {
        return not_found();
    }
    if !same_origin(&headers, &state.origin) {
        return blocked("cross_site");
    }
    let Some(a) = approver::session(&state, &headers) else {
        return blocked("no_session");
    };
    if !csrf_ok(&a, form.csrf.as_deref()) {
        return blocked("csrf");
    }
    let (r, p) = match load(&state, &id).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let now = state.clock.now();
    if let Err(n) = r.may_decide(&state, &decider(&a), &p, now) {
        let status = match n {
            NoDecision::Own | NoDecision::NotApprover => StatusCode::FORBIDDEN,
            _ => StatusCode::CONFLICT,
        };
        return message(status, "Not decided", &format!("{}.", capitalized(&n)));
    }
    let approve = action == "approve";
    let who = rows::Decider {
        by: a.email.as_deref().unwrap_or(&a.sub),
        client_ip: ctx.ip.as_deref(),
    };
    match r.decide(&state, approve, who, now).await {
        Ok(Some(text)) => message(
            StatusCode::OK,
            if approve { "Approved" } else { "Denied" },
            &text,
        ),
        Ok(None) => message(
            StatusCode::CONFLICT,
            "Already decided",
            "This request was decided in the meantime.",
        ),
        Err(e) => {
            tracing::error!("agent access store: {e}");
            unavailable()
        }
    }
}
