//! The Admin API of call recordings, beside agent access's and with its authentication
//! ([`Admin`]: an `x-api-key`, or the session token of an `admin_groups` member):
//! `GET /v1/organizations/aws_access/calls` lists calls newest first without their bodies,
//! narrowed by user, project, session, decision and the model turn that made them; `…/calls/{id}` reads one with its body.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::record::Decision;
use crate::aws_access::admin::{limit, section};
use crate::spend::admin::{after_id, internal, page, Admin, AdminError};
use crate::state::AppState;
use crate::store::aws_proxy::calls::CallFilter;

const BASE: &str = "/v1/organizations/aws_access/calls";

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list))
        .route(&format!("{BASE}/{{id}}"), get(one))
}

/// A list's query.
#[derive(Debug, Deserialize)]
pub struct CallsQuery {
    user: Option<String>,
    project: Option<String>,
    session_id: Option<String>,
    decision: Option<String>,
    turn_request_id: Option<String>,
    after_id: Option<String>,
    limit: Option<i64>,
}

/// An empty parameter is no filter.
fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

async fn list(
    State(state): State<AppState>,
    _a: Admin,
    Query(q): Query<CallsQuery>,
) -> Result<Json<Value>, AdminError> {
    section(&state)?;
    let limit = limit(q.limit)?;
    let decision = match given(&q.decision) {
        None => None,
        Some(d) => Some(Decision::parse(d).ok_or_else(|| {
            AdminError::bad(
                "decision must be allowed, approved, denied, throttled, held, refused or failed",
            )
        })?),
    };
    let filter = CallFilter {
        user: given(&q.user),
        project: given(&q.project),
        session_id: given(&q.session_id),
        decision: decision.map(Decision::as_str),
        turn_request_id: given(&q.turn_request_id),
        after_id: after_id(given(&q.after_id))?,
    };
    let rows = state
        .store
        .aws_calls(&filter, limit + 1)
        .await
        .map_err(internal)?;
    Ok(page(rows, limit))
}

async fn one(
    State(state): State<AppState>,
    _a: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    section(&state)?;
    let not_found = || AdminError::new(StatusCode::NOT_FOUND, "not_found_error", "no such call");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let call = state
        .store
        .aws_call(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    Ok(Json(call))
}
