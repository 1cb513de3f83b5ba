//! Finance's cost report, `GET /v1/organizations/analytics/cost`: metered cost in daily buckets
//! over at most 31 days, optionally grouped by user (`actor`), IdP group or model, in the shape of
//! Anthropic's cost report.

use axum::extract::State;
use axum::Json;
use http::StatusCode;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, Time};

use super::admin::{Admin, AdminError};
use crate::state::AppState;
use crate::store::spend::MICROS_PER_CENT;

fn bad(m: &str) -> AdminError {
    AdminError::bad(m)
}

/// The handler.
pub async fn cost(
    State(state): State<AppState>,
    _a: Admin,
    uri: http::Uri,
) -> Result<Json<Value>, AdminError> {
    let q: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let parse = |k: &str| -> Result<Option<OffsetDateTime>, AdminError> {
        get(k).map(|v| OffsetDateTime::parse(v, &Rfc3339).map_err(|_| bad("must be an RFC 3339 timestamp with a time zone offset, such as 2026-11-01T00:00:00Z"))).transpose()
    };
    let start = parse("starting_at")?.ok_or_else(|| bad("starting_at: Required"))?;
    let end = parse("ending_at")?.unwrap_or_else(|| state.clock.now());
    // A partial last day counts whole; the last representable day has no day after it.
    let to = if end.time() == Time::MIDNIGHT {
        Some(end.date())
    } else {
        end.date().next_day()
    };
    let (from, to) = (
        start.date(),
        to.ok_or_else(|| bad("ending_at is past the last date this gateway can report"))?,
    );
    if to <= from {
        return Err(bad("ending_at must be after starting_at"));
    }
    if to - from > Duration::days(31) {
        return Err(bad("the range may cover at most 31 days"));
    }
    if let Some(w) = get("time_bucket_width") {
        if w != "1d" {
            return Err(bad("time_bucket_width must be 1d"));
        }
    }
    let by = q
        .iter()
        .find(|(k, _)| k == "group_by[]" || k == "group_by")
        .map(|(_, v)| v.as_str())
        .unwrap_or("none");
    if !["none", "actor", "rbac_group_id", "model"].contains(&by) {
        return Err(bad("group_by must be actor, rbac_group_id or model"));
    }
    let rows = state.store.cost_by_day(from, to, by).await.map_err(|e| {
        tracing::error!("cost report: {e}");
        AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal error",
        )
    })?;
    let mut data = Vec::new();
    let mut day = from;
    // The rows come ordered by day: each day takes the run of rows that is its own.
    let mut rows = rows.iter().peekable();
    while day < to {
        let mut results = Vec::new();
        while let Some((_, key, micros, requests)) = rows.next_if(|r| r.0 <= day) {
            let group = match by {
                "actor" => json!({"actor": {"type": "user_actor", "user_id": key}}),
                "rbac_group_id" => {
                    json!({"rbac_group_id": if key.is_empty() { Value::Null } else { key.clone().into() }})
                }
                "model" => json!({"model": key}),
                _ => json!({}),
            };
            let cents = format!("{:.6}", *micros as f64 / MICROS_PER_CENT as f64);
            results.push(json!({"group": group, "cost": {"currency": "USD", "amount": cents, "requests": requests}}));
        }
        let s = day.with_time(Time::MIDNIGHT).assume_utc();
        data.push(json!({"starting_at": s.format(&Rfc3339).unwrap_or_default(), "ending_at": (s + Duration::days(1)).format(&Rfc3339).unwrap_or_default(), "results": results}));
        day += Duration::days(1);
    }
    let refreshed = state.clock.now().format(&Rfc3339).unwrap_or_default();
    Ok(Json(
        json!({"data": data, "has_more": false, "next_page": null, "data_refreshed_at": refreshed}),
    ))
}
