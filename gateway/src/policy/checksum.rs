//! The managed-settings checksum the client computes: `sha256:` and the hex SHA-256 of the
//! settings as JSON with keys sorted at every level and no whitespace. Written out here rather
//! than left to a map type's ordering, so it cannot drift.

use aws_lc_rs::digest;
use serde_json::Value;

use crate::config::hex;

/// Canonical JSON: sorted keys, no whitespace.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(k) {
                    write(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `sha256:<hex>` of the canonical form.
pub fn checksum(settings: &Value) -> String {
    format!(
        "sha256:{}",
        hex(digest::digest(&digest::SHA256, canonical(settings).as_bytes()).as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_at_every_level_without_whitespace() {
        let v = json!({"b": {"z": 1, "a": [true, null, "x"]}, "a": "é"});
        assert_eq!(
            canonical(&v),
            r#"{"a":"é","b":{"a":[true,null,"x"],"z":1}}"#
        );
        // Python: hashlib.sha256(json.dumps({"a":1}, sort_keys=True, separators=(",",":")).encode()).hexdigest()
        assert_eq!(
            checksum(&json!({"a": 1})),
            "sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
    }
}
