//! `GET /managed/settings` (the CLI's managed settings, with ETag and 304) and `GET /user/bootstrap`
//! (Claude Desktop's configuration, for policies that opt in with a `desktop` block).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::auth::caller::Caller;
use crate::http::edge::RequestId;
use crate::http::error::ApiError;
use crate::state::AppState;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut res = (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response();
    res.headers_mut()
        .insert("x-cc-gateway-version", HeaderValue::from_static(VERSION));
    res
}

/// Whether an `If-None-Match` value names `checksum` (quoted, weak or bare; not `*`).
fn matches_etag(headers: &HeaderMap, checksum: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == checksum)
}

/// The handler for `/managed/settings`.
pub async fn managed_settings(
    State(state): State<AppState>,
    Caller(who): Caller,
    axum::Extension(rid): axum::Extension<RequestId>,
    headers: HeaderMap,
) -> Response {
    let Some(policies) = &state.policies else {
        return plain(StatusCode::NOT_FOUND, "not configured");
    };
    let Some(eff) = policies.effective(&who) else {
        tracing::warn!(sub = ?who.sub, groups = ?who.groups, "no managed policy matched");
        return plain(StatusCode::NOT_FOUND, "no policy matched");
    };
    let etag = format!("\"{}\"", eff.checksum);
    let audit = |result: &str| {
        state.audit.emit(
            "managed.serve",
            state.clock.now(),
            json!({"request_id": rid.as_str(), "sub": who.sub, "email": who.email, "groups": who.groups, "policy_index": eff.indices.last(), "policies": eff.indices, "checksum": eff.checksum, "result": result}),
        )
    };
    let mut res = if matches_etag(&headers, &eff.checksum) {
        audit("not_modified");
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        audit("served");
        Json(json!({"uuid": eff.checksum, "checksum": eff.checksum, "settings": eff.settings}))
            .into_response()
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    h.insert("x-cc-gateway-version", HeaderValue::from_static(VERSION));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    res
}

/// The handler for `/user/bootstrap`.
pub async fn bootstrap(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Response, ApiError> {
    let deny = |reason: &str| {
        state.audit.emit(
            "desktop_bootstrap.denied",
            state.clock.now(),
            json!({"reason": reason, "sub": who.sub, "email": who.email}),
        );
        ApiError::Upstream(Box::new(crate::upstream::Failure::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "Claude Desktop is not configured on this gateway: add a \"desktop:\" block to a managed policy",
            String::new(),
        )))
    };
    let Some(policies) = &state.policies else {
        return Err(deny("not_configured"));
    };
    let Some(eff) = policies.effective(&who) else {
        return Err(deny("no_policy_matched"));
    };
    let Some(desktop) = &eff.desktop else {
        return Err(deny("policy_not_opted_in"));
    };
    let mut disabled: Vec<Value> = desktop
        .get("disabledBuiltinTools")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for name in eff
        .settings
        .pointer("/permissions/deny")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if name.as_str().is_some_and(|n| !n.contains('(')) && !disabled.contains(name) {
            disabled.push(name.clone());
        }
    }
    let mut body = serde_json::Map::new();
    for (k, v) in desktop {
        body.insert(k.clone(), v.clone());
    }
    body.insert("inferenceProvider".into(), "gateway".into());
    body.insert(
        "inferenceGatewayBaseUrl".into(),
        state.origin.clone().into(),
    );
    body.insert("inferenceCredentialKind".into(), "interactive".into());
    body.insert("disabledBuiltinTools".into(), disabled.into());
    if let Some(models) = &eff.available_models {
        body.insert("models".into(), json!(models));
    }
    if !body.contains_key("coworkEgressAllowedHosts") {
        if let Some(hosts) = eff.settings.pointer("/sandbox/network/allowedDomains") {
            body.insert("coworkEgressAllowedHosts".into(), hosts.clone());
        }
    }
    if let Some(endpoint) = eff.settings.pointer("/env/OTEL_EXPORTER_OTLP_ENDPOINT") {
        body.insert("otlpEndpoint".into(), endpoint.clone());
        body.insert("otlpProtocol".into(), "http/protobuf".into());
    }
    let ttl = (state.config.session.ttl_hours * 3600.0) as i64;
    let expires = state.clock.now() + time::Duration::seconds(ttl);
    body.insert(
        "expiresAt".into(),
        expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
            .into(),
    );
    state.audit.emit(
        "desktop_bootstrap.serve",
        state.clock.now(),
        json!({"sub": who.sub, "email": who.email, "checksum": eff.checksum}),
    );
    let mut res = Json(Value::Object(body)).into_response();
    let admin = state
        .config
        .admin
        .as_ref()
        .is_some_and(|a| a.admin_groups.iter().any(|g| who.groups.contains(g)));
    res.headers_mut().insert(
        "x-gateway-spend-admin",
        HeaderValue::from_static(if admin { "true" } else { "false" }),
    );
    Ok(res)
}
