//! `GET /v1/models`: the operator's models first, then the built-in catalog, in the Anthropic
//! models-list shape.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::api::catalog::BUILT_IN;
use crate::auth::caller::Caller;
use crate::state::AppState;

/// The handler.
pub async fn list(State(state): State<AppState>, Caller(who): Caller) -> Json<Value> {
    let allowed = state
        .policies
        .as_ref()
        .and_then(|p| p.effective(&who))
        .and_then(|e| e.available_models.clone());
    let mut all = catalog(&state.config);
    if let Some(list) = allowed {
        if let Some(data) = all.get_mut("data").and_then(Value::as_array_mut) {
            data.retain(|m| {
                m.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| crate::policy::models::allows(&list, id))
            });
            let first = data
                .first()
                .and_then(|d| d.get("id"))
                .cloned()
                .unwrap_or(Value::Null);
            let last = data
                .last()
                .and_then(|d| d.get("id"))
                .cloned()
                .unwrap_or(Value::Null);
            all["first_id"] = first;
            all["last_id"] = last;
        }
    }
    Json(all)
}

/// The list as served (pure, for tests).
pub fn catalog(cfg: &crate::config::Config) -> Value {
    let mut data: Vec<Value> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for m in cfg.models.iter().flatten() {
        let mut entry = json!({"type": "model", "id": m.id, "display_name": m.label.clone().unwrap_or_else(|| m.id.clone())});
        if let Some(d) = &m.description {
            entry["description"] = d.clone().into();
        }
        seen.push(m.id.clone());
        data.push(entry);
    }
    if cfg.auto_include_builtin_models {
        for b in BUILT_IN
            .iter()
            .filter(|b| b.listed && !seen.iter().any(|s| s == b.id))
        {
            data.push(json!({"type": "model", "id": b.id, "display_name": b.id, "max_input_tokens": b.max_input_tokens}));
        }
    }
    let first = data
        .first()
        .and_then(|d| d.get("id"))
        .cloned()
        .unwrap_or(Value::Null);
    let last = data
        .last()
        .and_then(|d| d.get("id"))
        .cloned()
        .unwrap_or(Value::Null);
    json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
}
