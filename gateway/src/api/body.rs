//! A Messages API request body, read only one level deep: top-level keys are parsed, their values
//! kept as raw JSON text, so a large prompt is never deep-parsed on the hot path and every field
//! the gateway does not know passes through byte for byte. Its shape (depth, value count) is
//! checked first, and parsing is linear in the body.

pub mod shape;

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

/// The top-level fields of a JSON object, in their original order.
///
/// Fields live in a vector (removed ones leave a hole, so positions never shift) with an index
/// from key to position: `get`, `set` and `remove` are one hash lookup each.
///
/// `messages` and `tools`, which several stages read (policy, prompt fingerprints, rate limits),
/// are parsed at most once, on first use; changing either field drops its parsed view.
#[derive(Debug, Default)]
pub struct RawObject {
    fields: Vec<Option<(String, Box<RawValue>)>>,
    index: HashMap<String, usize>,
    messages: OnceLock<Option<Vec<Value>>>,
    tools: OnceLock<Option<Vec<Value>>>,
}

/// Why a body is not a Messages request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON.
    #[error("invalid JSON")]
    InvalidJson,
    /// JSON, but not an object.
    #[error("request body must be a JSON object")]
    NotObject,
    /// No `model`.
    #[error("model is required")]
    ModelRequired,
    /// `model` is not a string.
    #[error("model must be a string")]
    ModelNotString,
    /// Nested deeper than [`shape::MAX_DEPTH`].
    #[error(
        "request body is nested too deeply (at most {} levels)",
        shape::MAX_DEPTH
    )]
    TooDeep,
    /// More than [`shape::MAX_VALUES`] values.
    #[error("request body holds too many values (at most {})", shape::MAX_VALUES)]
    TooManyValues,
}

impl RawObject {
    /// Parses a body that must be a JSON object, after checking its shape.
    pub fn parse(bytes: &[u8]) -> Result<Self, BodyError> {
        shape::check(bytes, shape::MAX_DEPTH, shape::MAX_VALUES).map_err(|e| match e {
            shape::ShapeError::TooDeep => BodyError::TooDeep,
            shape::ShapeError::TooManyValues => BodyError::TooManyValues,
        })?;
        let raw: &RawValue = serde_json::from_slice(bytes).map_err(|_| BodyError::InvalidJson)?;
        if !raw.get().starts_with('{') {
            return Err(BodyError::NotObject);
        }
        serde_json::from_str(raw.get()).map_err(|_| BodyError::InvalidJson)
    }

    /// The raw JSON of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = *self.index.get(key)?;
        self.fields
            .get(i)
            .and_then(Option::as_ref)
            .map(|(_, v)| v.get())
    }

    /// A field parsed as `T`.
    pub fn get_as<'a, T: Deserialize<'a>>(&'a self, key: &str) -> Option<T> {
        self.get(key).and_then(|raw| serde_json::from_str(raw).ok())
    }

    /// `messages` as JSON values when it is an array, parsed once however often it is read.
    pub fn messages(&self) -> Option<&[Value]> {
        self.messages
            .get_or_init(|| self.get_as("messages"))
            .as_deref()
    }

    /// `tools` as JSON values when it is an array, parsed once however often it is read.
    pub fn tools(&self) -> Option<&[Value]> {
        self.tools.get_or_init(|| self.get_as("tools")).as_deref()
    }

    /// Drops the parsed view of `key`, when it has one, because the field changes.
    fn changed(&mut self, key: &str) {
        match key {
            "messages" => self.messages = OnceLock::new(),
            "tools" => self.tools = OnceLock::new(),
            _ => {}
        }
    }

    /// Removes a field.
    pub fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        self.changed(key);
        let i = self.index.remove(key)?;
        self.fields.get_mut(i)?.take().map(|(_, v)| v)
    }

    /// Sets a field to a JSON value (replacing it in place, or appending).
    pub fn set(&mut self, key: &str, value: &impl serde::Serialize) {
        let Ok(raw) = serde_json::value::to_raw_value(value) else {
            return;
        };
        self.insert(key.to_owned(), raw);
    }

    /// Sets `key` to `value`: in place when present, else appended.
    fn insert(&mut self, key: String, value: Box<RawValue>) {
        self.changed(&key);
        if let Some(Some((_, v))) = self.index.get(&key).and_then(|&i| self.fields.get_mut(i)) {
            *v = value;
            return;
        }
        self.index.insert(key.clone(), self.fields.len());
        self.fields.push(Some((key, value)));
    }

    /// The fields present, in order.
    fn present(&self) -> impl Iterator<Item = &(String, Box<RawValue>)> {
        self.fields.iter().flatten()
    }

    /// Serializes the object back to JSON.
    pub fn to_vec(&self) -> Vec<u8> {
        let len: usize = self
            .present()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(len + 2);
        out.push(b'{');
        for (i, (k, v)) in self.present().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Keys came from valid JSON; re-escaping them keeps that true.
            out.extend(serde_json::to_vec(k).unwrap_or_default());
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
        }
        out.push(b'}');
        out
    }

    /// A copy, for a second upstream attempt.
    pub fn clone_fields(&self) -> RawObject {
        let mut copy = RawObject::default();
        for (k, v) in self.present() {
            copy.insert(k.clone(), v.clone());
        }
        copy
    }

    /// The `model` field, checked the way the reference checks it.
    pub fn model(&self) -> Result<String, BodyError> {
        match self.get("model") {
            None | Some("null") => Err(BodyError::ModelRequired),
            Some(raw) => match serde_json::from_str::<String>(raw) {
                Ok(m) if m.trim().is_empty() => Err(BodyError::ModelRequired),
                Ok(m) => Ok(m),
                Err(_) => Err(BodyError::ModelNotString),
            },
        }
    }

    /// `max_tokens` when it is a number, saturating: past `u64::MAX`, or written as a float, it
    /// reads as the next whole number up to `u64::MAX` (negative as 0), never as missing.
    pub fn max_tokens(&self) -> Option<u64> {
        let raw = self.get("max_tokens")?;
        if let Ok(n) = serde_json::from_str::<u64>(raw) {
            return Some(n);
        }
        // `as` from f64 saturates; JSON has no NaN or infinity.
        serde_json::from_str::<f64>(raw)
            .ok()
            .map(|f| f.ceil().max(0.0) as u64)
    }

    /// `stream: true`.
    pub fn stream(&self) -> bool {
        self.get("stream") == Some("true")
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut obj = RawObject::default();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    // A repeated key: the last one wins, at its own position, as in most JSON
                    // readers. One lookup per key keeps parsing linear.
                    if let Some(i) = obj.index.remove(&k) {
                        if let Some(slot) = obj.fields.get_mut(i) {
                            *slot = None;
                        }
                    }
                    obj.insert(k, v);
                }
                Ok(obj)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_unknown_fields_byte_for_byte() {
        let body = br#"{"model":"claude-x","messages":[{"role":"user","content":"h\u00e9"}],"future_field":{"a":[1,2.50]},"stream":true}"#;
        let obj = RawObject::parse(body).unwrap();
        assert_eq!(obj.to_vec(), body.to_vec());
        assert_eq!(obj.model().unwrap(), "claude-x");
        assert!(obj.stream());
    }

    #[test]
    fn edits_in_place() {
        let mut obj = RawObject::parse(br#"{"model":"m","max_tokens":5}"#).unwrap();
        obj.remove("model");
        obj.set("anthropic_version", &"bedrock-2023-05-31");
        obj.set("max_tokens", &7);
        assert_eq!(
            obj.to_vec(),
            br#"{"max_tokens":7,"anthropic_version":"bedrock-2023-05-31"}"#.to_vec()
        );
    }

    #[test]
    fn refuses_what_the_reference_refuses() {
        assert_eq!(
            RawObject::parse(b"nope").unwrap_err(),
            BodyError::InvalidJson
        );
        assert_eq!(RawObject::parse(b"[1]").unwrap_err(), BodyError::NotObject);
        assert_eq!(
            RawObject::parse(b"{}").unwrap().model().unwrap_err(),
            BodyError::ModelRequired
        );
        assert_eq!(
            RawObject::parse(br#"{"model":""}"#)
                .unwrap()
                .model()
                .unwrap_err(),
            BodyError::ModelRequired
        );
        assert_eq!(
            RawObject::parse(br#"{"model":3}"#)
                .unwrap()
                .model()
                .unwrap_err(),
            BodyError::ModelNotString
        );
    }

    #[test]
    fn repeated_keys_keep_the_last_value_at_its_position() {
        let obj = RawObject::parse(br#"{"a":1,"b":2,"a":3,"c":4,"b":5}"#).unwrap();
        assert_eq!(obj.to_vec(), br#"{"a":3,"c":4,"b":5}"#.to_vec());
        assert_eq!(obj.get("a"), Some("3"));
        let mut copy = obj.clone_fields();
        copy.remove("c");
        copy.set("c", &6);
        copy.set("a", &7);
        assert_eq!(copy.to_vec(), br#"{"a":7,"b":5,"c":6}"#.to_vec());
    }

    #[test]
    fn many_top_level_keys_parse_in_one_pass() {
        // Just under the value limit: every key distinct, then every key repeated once. A reader
        // that compares each key with all earlier ones does ~10^10 comparisons here.
        let n = shape::MAX_VALUES / 2 - 1;
        let mut body = String::from("{");
        for round in 0..2 {
            for i in 0..n {
                body.push_str(&format!("\"k{i}\":{round},"));
            }
        }
        body.push_str("\"model\":\"m\"}");
        let obj = RawObject::parse(body.as_bytes()).unwrap();
        assert_eq!(obj.model().unwrap(), "m");
        for i in (0..n).step_by(997) {
            assert_eq!(obj.get(&format!("k{i}")), Some("1"));
        }
        assert_eq!(obj.index.len(), n + 1);
    }

    #[test]
    fn pathological_shapes_are_refused_before_parsing() {
        let deep = format!(
            "{{\"model\":\"m\",\"x\":{}{}}}",
            "[".repeat(110),
            "]".repeat(110)
        );
        assert_eq!(
            RawObject::parse(deep.as_bytes()).unwrap_err(),
            BodyError::TooDeep
        );
        let wide = format!(
            "{{\"model\":\"m\",\"x\":[{}0]}}",
            "0,".repeat(shape::MAX_VALUES)
        );
        assert_eq!(
            RawObject::parse(wide.as_bytes()).unwrap_err(),
            BodyError::TooManyValues
        );
        // Just inside both limits still parses.
        let ok = format!(
            "{{\"model\":\"m\",\"x\":{}{}}}",
            "[".repeat(shape::MAX_DEPTH - 1),
            "]".repeat(shape::MAX_DEPTH - 1)
        );
        assert!(RawObject::parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn messages_and_tools_are_parsed_once_until_they_change() {
        let mut obj = RawObject::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"Read"}]}"#,
        )
        .unwrap();
        // Every reader gets the same parsed values, not a parse of its own.
        let first = obj.messages().unwrap().as_ptr();
        assert_eq!(obj.messages().unwrap().as_ptr(), first);
        let tools = obj.tools().unwrap().as_ptr();
        assert_eq!(obj.tools().unwrap().as_ptr(), tools);
        assert_eq!(obj.tools().unwrap()[0]["name"], "Read");
        // A change is seen by the next reader.
        obj.set(
            "tools",
            &serde_json::json!([{"name": "Edit"}, {"name": "Bash"}]),
        );
        assert_eq!(obj.tools().unwrap().len(), 2);
        assert_eq!(obj.tools().unwrap()[0]["name"], "Edit");
        obj.remove("messages");
        assert!(obj.messages().is_none());
        obj.set("messages", &"not an array");
        assert!(obj.messages().is_none());
        assert!(obj.clone_fields().tools().is_some_and(|t| t.len() == 2));
    }

    #[test]
    fn max_tokens_saturates_instead_of_reading_as_missing() {
        let read = |v: &str| {
            RawObject::parse(format!("{{\"max_tokens\":{v}}}").as_bytes())
                .unwrap()
                .max_tokens()
        };
        assert_eq!(read("4096"), Some(4096));
        assert_eq!(read("18446744073709551616"), Some(u64::MAX));
        assert_eq!(read("1e30"), Some(u64::MAX));
        assert_eq!(read("100.5"), Some(101));
        assert_eq!(read("-1"), Some(0));
        assert_eq!(read("\"many\""), None);
        assert_eq!(RawObject::parse(b"{}").unwrap().max_tokens(), None);
    }
}
