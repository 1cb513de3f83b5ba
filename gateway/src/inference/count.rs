//! `POST /v1/messages/count_tokens`: counted by the upstream (Bedrock's CountTokens, or the
//! Anthropic API), holding one of the replica's upstream slots. When no upstream can count,
//! `501 not_supported` tells the client to fall back.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::{HeaderMap, Uri};

use super::dispatch::candidates;
use crate::api::body::RawObject;
use crate::auth::caller::Caller;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::upstream::bedrock::translate::betas;
use crate::upstream::Call;

/// The handler.
pub async fn count_tokens(
    State(state): State<AppState>,
    Caller(who): Caller,
    axum::Extension(rid): axum::Extension<crate::http::edge::RequestId>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut obj = RawObject::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // The parsed fields are copies; the request's bytes are not held while the upstream answers.
    drop(body);
    let model = obj
        .model()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    super::policy_gate::apply(&state, &who, &rid, &model, &mut obj)?;
    let betas = betas(headers.get("anthropic-beta").and_then(|v| v.to_str().ok()));
    let path_and_query = uri
        .path_and_query()
        .map_or("/v1/messages/count_tokens", |p| p.as_str());
    // A count is an upstream call like any other: it waits for one of the replica's slots, so
    // counts cannot pile up beyond the replica's limit of requests in flight.
    let _slot = super::messages::upstream_slot(&state).await?;
    for (index, provider_model) in candidates(&state.config, &model)? {
        let Some(client) = state.upstreams.clients.get(index) else {
            continue;
        };
        let call = Call {
            body: obj.clone_fields(),
            model: provider_model,
            betas: &betas,
            stream: false,
            headers: &headers,
            path_and_query,
            tool_uses: false,
        };
        match client.count_tokens(call).await {
            Ok(Some(n)) => return Ok(Json(serde_json::json!({"input_tokens": n})).into_response()),
            Ok(None) => continue,
            Err(f) => {
                tracing::warn!(upstream = %state.config.upstreams[index].name(), "count_tokens failed: {}", f.detail);
                if let Some(relay) = f.relay.clone() {
                    if !f.failover {
                        let mut f = f;
                        f.relay = Some(relay);
                        return Err(ApiError::Upstream(Box::new(f)));
                    }
                }
            }
        }
    }
    Err(ApiError::NotSupported(format!(
        "token counting is not available for model {model} on this gateway"
    )))
}
