//! Keyed fingerprints of what was asked, for the audit log: HMAC-SHA-256 of the prompt text (the
//! text of the request's last user message) and of each tool input the request carries in its
//! last assistant message (as canonical JSON). The key stays with the operator; the log holds only
//! the fingerprints, and `claude-gateway hash-prompt` recomputes one for an investigator.

use aws_lc_rs::hmac;
use serde_json::Value;

use crate::api::body::RawObject;
use crate::config::hex;
use crate::policy::canonical;

/// Fingerprints of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    /// HMAC of the prompt text, if the request has one.
    pub prompt: Option<String>,
    /// HMAC of each tool input, in order.
    pub tool_inputs: Vec<String>,
}

/// HMAC-SHA-256 of `data` under `key`, hex.
pub fn hmac_hex(key: &str, data: &[u8]) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    hex(hmac::sign(&k, data).as_ref())
}

/// The prompt text of a request: the text of its last user message, blocks joined by newlines.
pub fn prompt_text(messages: &[Value]) -> Option<String> {
    let last = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    match last.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// Fingerprints of a request body under `key`.
pub fn fingerprints(key: &str, body: &RawObject) -> Fingerprints {
    let messages = body.messages().unwrap_or_default();
    let prompt = prompt_text(messages).map(|t| hmac_hex(key, t.as_bytes()));
    let tool_inputs = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .and_then(|m| m.get("content").and_then(Value::as_array))
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .map(|b| {
            hmac_hex(
                key,
                canonical(b.get("input").unwrap_or(&Value::Null)).as_bytes(),
            )
        })
        .collect();
    Fingerprints {
        prompt,
        tool_inputs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "investigation-key-0123456789abcdef";

    #[test]
    fn the_same_prompt_gives_the_same_fingerprint() {
        let a = RawObject::parse(br#"{"messages":[{"role":"user","content":"old"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"Bash","input":{"command":"ls","b":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"x"},{"type":"text","text":"deploy it"}]}]}"#).unwrap();
        let f = fingerprints(KEY, &a);
        assert_eq!(f.prompt, Some(hmac_hex(KEY, b"deploy it")));
        assert_eq!(
            f.tool_inputs,
            vec![hmac_hex(KEY, br#"{"b":1,"command":"ls"}"#)]
        );
        assert_ne!(
            f.prompt,
            Some(hmac_hex("another-key-0123456789abcdef0123", b"deploy it"))
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_hex("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
