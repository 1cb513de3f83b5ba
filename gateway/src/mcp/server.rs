//! The MCP endpoint: `POST /mcp` (one JSON-RPC message a request), `DELETE /mcp` (the session
//! ends) and `GET /mcp` (405: the server pushes nothing).

use axum::routing::post;
use axum::Router;

use crate::state::AppState;

/// The MCP endpoint's routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/mcp", post(|| async { http::StatusCode::NOT_FOUND }))
}
