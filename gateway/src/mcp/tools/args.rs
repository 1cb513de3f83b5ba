//! A tool's arguments checked against its own input schema, on the server: the client may or may
//! not check them, and the model may send anything. The schema a tool lists is the one checked
//! (one value, never two copies that could drift), in the subset of JSON Schema the tools use:
//! an object of named properties, some required, no others; each a string (length, `enum`), an
//! integer (range), a boolean, an array of strings (count), or an object (string values, or any).
//! A failure is a sentence naming the argument, for a tool error the model can act on.

use serde_json::{json, Map, Value};

/// The longest string argument taken unless a property says otherwise.
pub const MAX_STRING: usize = 4096;

/// A string property.
pub fn string(description: &str) -> Value {
    json!({"type": "string", "description": description, "maxLength": MAX_STRING})
}

/// A string property of at most `max` characters.
pub fn string_max(description: &str, max: usize) -> Value {
    json!({"type": "string", "description": description, "maxLength": max})
}

/// A string property that is one of `values`.
pub fn one_of(description: &str, values: &[&str]) -> Value {
    json!({"type": "string", "description": description, "enum": values})
}

/// An integer property from `min` to `max`.
pub fn integer(description: &str, min: i64, max: i64) -> Value {
    json!({"type": "integer", "description": description, "minimum": min, "maximum": max})
}

/// A boolean property.
pub fn boolean(description: &str) -> Value {
    json!({"type": "boolean", "description": description})
}

/// An array of at most `max` strings.
pub fn strings(description: &str, max: usize) -> Value {
    json!({"type": "array", "description": description, "items": {"type": "string", "maxLength": MAX_STRING}, "maxItems": max})
}

/// An object of at most `max` string values.
pub fn string_map(description: &str, max: usize) -> Value {
    json!({"type": "object", "description": description, "additionalProperties": {"type": "string", "maxLength": MAX_STRING}, "maxProperties": max})
}

/// An object of any values.
pub fn object(description: &str) -> Value {
    json!({"type": "object", "description": description})
}

/// Checks `args` against `schema` (an object schema as [`crate::mcp::tool::InputSchema`] makes).
pub fn check(schema: &Value, args: &Map<String, Value>) -> Result<(), String> {
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for name in args.keys() {
        if !props.contains_key(name) {
            let known: Vec<&str> = props.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown argument `{}`; this tool takes: {}",
                shown(name),
                if known.is_empty() {
                    "no arguments".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if args.get(name).is_none_or(Value::is_null) {
            return Err(format!("argument `{name}` is required"));
        }
    }
    for (name, value) in args {
        if value.is_null() {
            // An optional argument given as null is an argument not given.
            continue;
        }
        if let Some(p) = props.get(name) {
            value_matches(name, p, value)?;
        }
    }
    Ok(())
}

/// An argument name as it may be shown: cut, without control characters.
fn shown(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn value_matches(name: &str, p: &Value, v: &Value) -> Result<(), String> {
    let kind = p.get("type").and_then(Value::as_str).unwrap_or_default();
    let max_len = |p: &Value| {
        p.get("maxLength")
            .and_then(Value::as_u64)
            .map_or(MAX_STRING, |m| usize::try_from(m).unwrap_or(usize::MAX))
    };
    match kind {
        "string" => {
            let Some(s) = v.as_str() else {
                return Err(format!("argument `{name}` must be a string"));
            };
            if let Some(values) = p.get("enum").and_then(Value::as_array) {
                if !values.iter().any(|e| e.as_str() == Some(s)) {
                    let list: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                    return Err(format!(
                        "argument `{name}` must be one of: {}",
                        list.join(", ")
                    ));
                }
            }
            let max = max_len(p);
            if s.chars().count() > max {
                return Err(format!("argument `{name}` is longer than {max} characters"));
            }
            if s.is_empty() {
                return Err(format!("argument `{name}` must not be empty"));
            }
        }
        "integer" => {
            let n = v.as_i64().or_else(|| {
                // 10.0 is an integer too.
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            });
            let min = p.get("minimum").and_then(Value::as_i64).unwrap_or(i64::MIN);
            let max = p.get("maximum").and_then(Value::as_i64).unwrap_or(i64::MAX);
            match n {
                Some(n) if (min..=max).contains(&n) => {}
                _ => {
                    return Err(format!(
                        "argument `{name}` must be an integer from {min} to {max}"
                    ))
                }
            }
        }
        "boolean" if !v.is_boolean() => {
            return Err(format!("argument `{name}` must be true or false"));
        }
        "array" => {
            let Some(items) = v.as_array() else {
                return Err(format!("argument `{name}` must be an array"));
            };
            let max = p
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            if items.len() as u64 > max {
                return Err(format!("argument `{name}` has more than {max} items"));
            }
            let item = p.get("items").cloned().unwrap_or(Value::Null);
            for (i, x) in items.iter().enumerate() {
                value_matches(&format!("{name}[{i}]"), &item, x)?;
            }
        }
        "object" => {
            let Some(o) = v.as_object() else {
                return Err(format!("argument `{name}` must be an object"));
            };
            let max = p
                .get("maxProperties")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            if o.len() as u64 > max {
                return Err(format!("argument `{name}` has more than {max} entries"));
            }
            if let Some(each) = p.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, x) in o {
                    value_matches(&format!("{name}.{}", shown(k)), each, x)?;
                }
            }
        }
        // A property without a type takes anything.
        _ => {}
    }
    Ok(())
}

/// The string argument `name`, if given.
pub fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

/// The integer argument `name`, if given (checked by [`check`] first).
pub fn int_arg(args: &Map<String, Value>, name: &str) -> Option<i64> {
    let v = args.get(name)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// The boolean argument `name`, if given.
pub fn bool_arg(args: &Map<String, Value>, name: &str) -> Option<bool> {
    args.get(name).and_then(Value::as_bool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::tool::InputSchema;

    fn schema() -> Value {
        let mut p = Map::new();
        p.insert("bucket".into(), string("The bucket."));
        p.insert("limit".into(), integer("How many.", 1, 100));
        p.insert("recursive".into(), boolean("Deep."));
        p.insert("stat".into(), one_of("Which.", &["Average", "Sum"]));
        p.insert("types".into(), strings("Types.", 2));
        p.insert("tags".into(), string_map("Tags.", 2));
        p.insert("params".into(), object("Anything."));
        p.insert("short".into(), string_max("Short.", 3));
        InputSchema::object(p, &["bucket"]).as_value().clone()
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn good_arguments_pass() {
        let s = schema();
        assert_eq!(check(&s, &args(json!({"bucket": "b"}))), Ok(()));
        assert_eq!(
            check(
                &s,
                &args(
                    json!({"bucket": "b", "limit": 10.0, "recursive": true, "stat": "Sum",
                    "types": ["a", "b"], "tags": {"team": "x"}, "params": {"A": [1, {"b": null}]},
                    "short": "abc"})
                )
            ),
            Ok(())
        );
        // An optional argument given as null is not given.
        assert_eq!(
            check(&s, &args(json!({"bucket": "b", "limit": null}))),
            Ok(())
        );
    }

    #[test]
    fn each_failure_names_the_argument() {
        let s = schema();
        let cases = [
            (json!({}), "argument `bucket` is required"),
            (json!({"bucket": null}), "argument `bucket` is required"),
            (json!({"bucket": 3}), "argument `bucket` must be a string"),
            (json!({"bucket": ""}), "argument `bucket` must not be empty"),
            (
                json!({"bucket": "b", "Bucket": "c"}),
                "unknown argument `Bucket`",
            ),
            (
                json!({"bucket": "b", "limit": 0}),
                "argument `limit` must be an integer from 1 to 100",
            ),
            (
                json!({"bucket": "b", "limit": 1.5}),
                "argument `limit` must be an integer",
            ),
            (
                json!({"bucket": "b", "limit": "5"}),
                "argument `limit` must be an integer",
            ),
            (
                json!({"bucket": "b", "recursive": "yes"}),
                "argument `recursive` must be true or false",
            ),
            (
                json!({"bucket": "b", "stat": "Median"}),
                "argument `stat` must be one of: Average, Sum",
            ),
            (
                json!({"bucket": "b", "types": ["a", "b", "c"]}),
                "argument `types` has more than 2 items",
            ),
            (
                json!({"bucket": "b", "types": ["a", 1]}),
                "argument `types[1]` must be a string",
            ),
            (
                json!({"bucket": "b", "tags": {"team": 1}}),
                "argument `tags.team` must be a string",
            ),
            (
                json!({"bucket": "b", "params": []}),
                "argument `params` must be an object",
            ),
            (
                json!({"bucket": "b", "short": "abcd"}),
                "argument `short` is longer than 3 characters",
            ),
        ];
        for (a, want) in cases {
            let got = check(&s, &args(a.clone())).unwrap_err();
            assert!(got.starts_with(want), "{a}: {got}");
        }
    }

    #[test]
    fn an_unknown_argument_lists_the_known_ones() {
        let s = schema();
        let got = check(&s, &args(json!({"bucket": "b", "prefx": "a"}))).unwrap_err();
        assert!(got.contains("prefx") && got.contains("limit"), "{got}");
        let none = InputSchema::object(Map::new(), &[]).as_value().clone();
        let got = check(&none, &args(json!({"x": 1}))).unwrap_err();
        assert!(got.ends_with("no arguments"), "{got}");
    }
}
