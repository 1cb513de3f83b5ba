//! The policy stage of an inference request: the caller's model allowlist, then (when the
//! operator turned it on) the tool denials, applied to the body before it goes upstream.

use serde_json::json;

use crate::api::body::RawObject;
use crate::auth::token::Identity;
use crate::http::edge::RequestId;
use crate::http::error::ApiError;
use crate::policy::models::allows;
use crate::policy::tools::{enforce, Verdict};
use crate::state::AppState;

/// At most this many stripped tools of one request are audited.
const AUDITED_TOOLS: usize = 32;
/// A tool name in the audit is cut to this many bytes (tool names are 64 characters at most).
const AUDITED_NAME_BYTES: usize = 128;

/// `name` as the audit shows it.
fn audited_name(name: &str) -> &str {
    crate::telemetry::audit::clip(name, AUDITED_NAME_BYTES)
}

/// Refuses a model outside the caller's allowlist; strips or refuses denied tools.
pub fn apply(
    state: &AppState,
    who: &Identity,
    rid: &RequestId,
    model: &str,
    body: &mut RawObject,
) -> Result<(), ApiError> {
    let Some(eff) = state.policies.as_ref().and_then(|p| p.effective(who)) else {
        // No policy matches: served without limits, unless `managed.unmatched: deny`.
        if state.policies.as_ref().is_some_and(|p| p.deny_unmatched) {
            state.audit.emit(
                "policy.blocked",
                state.clock.now(),
                json!({"request_id": rid.as_str(), "sub": who.sub, "email": who.email, "groups": who.groups, "model": model, "reason": "no_policy"}),
            );
            return Err(ApiError::Forbidden(
                "no policy of this gateway applies to your account; ask your administrator for access"
                    .into(),
            ));
        }
        return Ok(());
    };
    let audit = |evt: &str, fields: serde_json::Value| {
        let mut f = json!({"request_id": rid.as_str(), "sub": who.sub, "email": who.email, "groups": who.groups, "model": model});
        if let (Some(o), serde_json::Value::Object(more)) = (f.as_object_mut(), fields) {
            o.extend(more);
        }
        state.audit.emit(evt, state.clock.now(), f);
    };
    if let Some(list) = &eff.available_models {
        if !allows(list, model) {
            audit(
                "policy.blocked",
                json!({"reason": "model_not_allowed", "policies": eff.indices}),
            );
            return Err(ApiError::BadRequest(format!(
                "model {model} is not in your role's availableModels allowlist"
            )));
        }
    }
    if state.policies.as_ref().is_some_and(|p| p.enforce_tools) {
        match enforce(body, &eff.denials) {
            Verdict::Clean => {}
            Verdict::Stripped(tools) => {
                // One line per denied tool (the dashboards count them by name), for a bounded
                // number of tools: a client picks how many it offers.
                let named: Vec<&str> = tools
                    .iter()
                    .take(AUDITED_TOOLS)
                    .map(|t| audited_name(t))
                    .collect();
                let omitted = tools.len() - named.len();
                for tool in &named {
                    audit(
                        "policy.tool_denied",
                        json!({"action": "stripped", "tool": tool, "tools": named, "tools_omitted": omitted}),
                    );
                }
            }
            Verdict::Refused(tool) => {
                let tool = audited_name(&tool);
                audit(
                    "policy.tool_denied",
                    json!({"action": "refused", "tool": tool, "tools": [tool]}),
                );
                return Err(ApiError::BadRequest(format!(
                    "tool {tool} is denied by your organization's policy"
                )));
            }
        }
    }
    Ok(())
}
