//! Anthropic Messages body → Bedrock InvokeModel body: no `model` or `stream` (the operation
//! decides), `anthropic_version: bedrock-2023-05-31`, the `anthropic-beta` header moved into the
//! body as `anthropic_beta`, and request tags left out (Bedrock refuses them). Everything else
//! passes through unchanged.

use crate::api::body::RawObject;

/// The Bedrock Messages API version.
pub const BEDROCK_VERSION: &str = "bedrock-2023-05-31";

/// Splits an `anthropic-beta` header value into its entries.
pub fn betas(header: Option<&str>) -> Vec<String> {
    header
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect()
}

fn drop_beta(b: &str) -> bool {
    b.starts_with("request-tags-")
}

/// Rewrites `body` in place for Bedrock.
pub fn to_bedrock(body: &mut RawObject, header_betas: &[String]) {
    body.remove("model");
    body.remove("stream");
    body.remove("tags");
    body.set("anthropic_version", &BEDROCK_VERSION);
    let mut all: Vec<String> = body
        .get_as::<Vec<String>>("anthropic_beta")
        .unwrap_or_default();
    for b in header_betas {
        if !all.contains(b) {
            all.push(b.clone());
        }
    }
    all.retain(|b| !drop_beta(b));
    if all.is_empty() {
        body.remove("anthropic_beta");
    } else {
        body.set("anthropic_beta", &all);
    }
}

/// Rewrites a `count_tokens` body into the InvokeModel body Bedrock's CountTokens takes: as for
/// inference, plus a `max_tokens` above any thinking budget and no empty `tools`.
pub fn to_bedrock_count(body: &mut RawObject, header_betas: &[String]) {
    to_bedrock(body, header_betas);
    let budget = body
        .get_as::<serde_json::Value>("thinking")
        .and_then(|t| t.get("budget_tokens").and_then(serde_json::Value::as_u64))
        .unwrap_or(0);
    let max = body.get_as::<u64>("max_tokens").unwrap_or(0);
    if max <= budget || max == 0 {
        body.set("max_tokens", &(budget + 1).max(1));
    }
    if body.get("tools").is_some_and(|t| t.trim() == "[]") {
        body.remove("tools");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, header: Option<&str>) -> serde_json::Value {
        let mut obj = RawObject::parse(body.as_bytes()).unwrap();
        to_bedrock(&mut obj, &betas(header));
        serde_json::from_slice(&obj.to_vec()).unwrap()
    }

    #[test]
    fn moves_model_out_and_betas_in() {
        let out = run(
            r#"{"model":"claude-sonnet-4-5","stream":true,"max_tokens":10,"messages":[],"safeguards":{"x":1},"tags":{"a":"b"}}"#,
            Some("claude-code-20250219, interleaved-thinking-2025-05-14,request-tags-2026-08-21"),
        );
        assert_eq!(
            out,
            serde_json::json!({
                "max_tokens": 10,
                "messages": [],
                "safeguards": {"x": 1},
                "anthropic_version": "bedrock-2023-05-31",
                "anthropic_beta": ["claude-code-20250219", "interleaved-thinking-2025-05-14"]
            })
        );
    }

    #[test]
    fn no_betas_no_field_and_body_betas_merge() {
        let out = run(r#"{"model":"m","anthropic_version":"x"}"#, None);
        assert_eq!(
            out,
            serde_json::json!({"anthropic_version": "bedrock-2023-05-31"})
        );
        let out = run(r#"{"model":"m","anthropic_beta":["a"]}"#, Some("a,b"));
        assert_eq!(out["anthropic_beta"], serde_json::json!(["a", "b"]));
    }

    #[test]
    fn count_bodies_get_a_usable_max_tokens() {
        let mut obj = RawObject::parse(br#"{"model":"m","messages":[],"tools":[],"thinking":{"type":"enabled","budget_tokens":2048}}"#).unwrap();
        to_bedrock_count(&mut obj, &[]);
        let v: serde_json::Value = serde_json::from_slice(&obj.to_vec()).unwrap();
        assert_eq!(v["max_tokens"], 2049);
        assert!(v.get("tools").is_none());
    }
}
