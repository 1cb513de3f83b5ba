//! The gateway's one router: every subsystem's routes, and the layers in front of them
//! ([`crate::http`]).

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::HeaderMap;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::auth::bearer::bearer;
use crate::auth::callback::Callback;
use crate::auth::context::Ctx;
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
        .route("/oauth/callback", get(sign_in_callback))
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

/// `GET /oauth/callback`: the IdP sends every browser sign-in back here. An approver's sign-in for
/// the approval page and a sign-in for the MCP server's authorization each take their own; the
/// rest complete a device grant.
async fn sign_in_callback(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    if let Some(res) = crate::aws_access::approver::callback(&state, &ctx, &headers, &q).await {
        return res;
    }
    if let Some(res) = crate::mcp::oauth::signin::callback(&state, &ctx, &headers, &q).await {
        return res;
    }
    crate::auth::callback::device(&state, &ctx, &headers, q).await
}
