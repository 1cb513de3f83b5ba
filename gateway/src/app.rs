//! The gateway's one router: every subsystem's routes, and the layers in front of them
//! ([`crate::http`]).

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;

use crate::auth::bearer::bearer;
use crate::http::error::ApiError;
use crate::http::{access, edge, health, limits, pages};
use crate::state::AppState;

/// Builds the gateway's router over `state`.
pub fn router(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config.limits.max_request_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/", get(pages::landing))
        .route("/protocol", get(pages::protocol))
        .merge(crate::auth::routes())
        .route(
            "/managed/settings",
            get(crate::policy::routes::managed_settings),
        )
        .route("/user/bootstrap", get(crate::policy::routes::bootstrap))
        .route("/v1/metrics", post(crate::telemetry::ingest::metrics))
        .route("/v1/logs", post(crate::telemetry::ingest::logs))
        .route("/v1/traces", post(crate::telemetry::ingest::traces))
        .merge(crate::inference::routes())
        .merge(crate::spend::admin::routes())
        .merge(crate::aws_access::routes())
        .merge(crate::aws_proxy::proxy::routes())
        .merge(crate::mcp::routes())
        .route("/api/oauth/usage", get(crate::spend::usage_route::usage))
        .fallback(unknown_route)
        .layer(from_fn_with_state(
            state.clone(),
            crate::aws_proxy::proxy::signed_to_proxy,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(from_fn_with_state(
            state.clone(),
            crate::telemetry::track::track,
        ))
        .layer(from_fn_with_state(state.clone(), limits::limits))
        .layer(from_fn_with_state(state.access.clone(), access::access))
        .layer(from_fn_with_state(
            edge::TlsOn(state.config.listen.tls.is_some()),
            edge::edge,
        ))
        .with_state(state)
}

/// No route: 404 for a caller with a valid session, 401 for anyone else, so the route table is not
/// discoverable without signing in.
async fn unknown_route(State(state): State<AppState>, headers: HeaderMap) -> ApiError {
    match bearer(&headers).map(|t| state.keys.verify(t, state.clock.now())) {
        Some(Ok(_)) => ApiError::NotFound,
        _ => ApiError::InvalidToken,
    }
}
