//! `GET /api/oauth/usage`: the caller's own caps, percent used and reset times, which the client
//! shows for `/usage` and in its status line.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::caps;
use super::periods::Period;
use crate::auth::caller::Caller;
use crate::state::AppState;
use crate::store::spend::MICROS_PER_CENT;

/// The handler.
pub async fn usage(State(state): State<AppState>, Caller(who): Caller) -> Response {
    if state.config.admin.is_none() {
        return (StatusCode::NOT_FOUND, "not configured").into_response();
    }
    let now = state.clock.now();
    let buckets: Vec<String> = Period::ALL.iter().map(|p| p.bucket(now)).collect();
    let (limits, totals) = match (
        state.store.limits().await,
        state.store.totals(&who.sub, &buckets).await,
    ) {
        (Ok(l), Ok(t)) => (l, t),
        _ => return (StatusCode::SERVICE_UNAVAILABLE, "usage unavailable").into_response(),
    };
    let limits = caps::from_rows(limits);
    let mode = state
        .config
        .admin
        .as_ref()
        .map(|a| a.group_limit_mode)
        .unwrap_or_default();
    let eff = caps::effective(&limits, &who.sub, &who.groups, mode);
    let mut rows = Vec::new();
    for e in eff.iter().filter(|e| e.amount_cents.is_some()) {
        let i = Period::ALL.iter().position(|p| *p == e.period).unwrap_or(0);
        let spent_cents =
            totals.get(i).map(|t| t.settled).unwrap_or(0) as f64 / MICROS_PER_CENT as f64;
        let cap = e.amount_cents.unwrap_or(0) as f64;
        let percent = if cap > 0.0 {
            (spent_cents / cap * 100.0).round() as i64
        } else {
            100
        };
        rows.push((e.period, percent, spent_cents, cap));
    }
    let fullest = rows.iter().max_by_key(|r| r.1).map(|r| r.0);
    let limits_json: Vec<serde_json::Value> = rows
        .iter()
        .map(|(p, percent, _, _)| {
            let severity = if *percent >= 95 { "critical" } else if *percent >= 75 { "warning" } else { "normal" };
            json!({"kind": "spend", "group": p.as_str(), "percent": percent, "resets_at": p.reset(now).format(&Rfc3339).unwrap_or_default(), "severity": severity, "is_active": Some(*p) == fullest})
        })
        .collect();
    let extra = rows.iter().find(|r| Some(r.0) == fullest).map(|(_, percent, spent, cap)| {
        json!({"is_enabled": true, "monthly_limit": cap, "used_credits": spent.round(), "utilization": percent, "currency": "USD"})
    });
    Json(json!({"extra_usage": extra, "limits": limits_json})).into_response()
}
