//! A Messages API request body, read only one level deep: top-level keys are parsed, their values
//! kept as raw JSON text, so a large prompt is never deep-parsed on the hot path and every field
//! the gateway does not know passes through byte for byte.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level fields of a JSON object, in their original order.
#[derive(Debug, Default)]
pub struct RawObject {
    fields: Vec<(String, Box<RawValue>)>,
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
}

impl RawObject {
    /// Parses a body that must be a JSON object.
    pub fn parse(bytes: &[u8]) -> Result<Self, BodyError> {
        let raw: &RawValue = serde_json::from_slice(bytes).map_err(|_| BodyError::InvalidJson)?;
        if !raw.get().starts_with('{') {
            return Err(BodyError::NotObject);
        }
        serde_json::from_str(raw.get()).map_err(|_| BodyError::InvalidJson)
    }

    /// The raw JSON of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.get())
    }

    /// A field parsed as `T`.
    pub fn get_as<'a, T: Deserialize<'a>>(&'a self, key: &str) -> Option<T> {
        self.get(key).and_then(|raw| serde_json::from_str(raw).ok())
    }

    /// Removes a field.
    pub fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        let i = self.fields.iter().position(|(k, _)| k == key)?;
        Some(self.fields.remove(i).1)
    }

    /// Sets a field to a JSON value (replacing it in place, or appending).
    pub fn set(&mut self, key: &str, value: &impl serde::Serialize) {
        let Ok(raw) = serde_json::value::to_raw_value(value) else {
            return;
        };
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = raw,
            None => self.fields.push((key.to_owned(), raw)),
        }
    }

    /// Serializes the object back to JSON.
    pub fn to_vec(&self) -> Vec<u8> {
        let len: usize = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(len + 2);
        out.push(b'{');
        for (i, (k, v)) in self.fields.iter().enumerate() {
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
        RawObject {
            fields: self
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
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
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    // A repeated key: the last one wins, as in most JSON readers.
                    fields.retain(|(existing, _): &(String, Box<RawValue>)| existing != &k);
                    fields.push((k, v));
                }
                Ok(RawObject { fields })
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
}
