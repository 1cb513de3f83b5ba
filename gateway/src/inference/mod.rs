//! The Anthropic Messages API, served from the configured upstreams: `POST /v1/messages`,
//! `POST /v1/messages/count_tokens` and `GET /v1/models`.

mod admit;
mod count;
mod dispatch;
pub mod guard;
mod messages;
mod models;
mod policy_gate;
mod record;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The inference routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(count::count_tokens))
        .route("/v1/models", get(models::list))
}
