//! Messages request bodies (`RawObject`): any bytes give Ok or an error; an accepted object
//! round-trips with the last of a repeated key winning; `get`/`set`/`remove` behave as a map.

use std::collections::BTreeMap;
use std::fmt;

use claude_gateway::api::body::RawObject;
use proptest::prelude::*;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// A small JSON value; `depth` levels of arrays and objects at most.
fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys from a small alphabet, so repeats are common.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-c]{1,2}",
        1 => "model|messages|stream|max_tokens",
        1 => any::<String>(),
    ]
}

/// A key as JSON text: plainly escaped, or every character as `\uXXXX` (the same key).
fn key_text(key: &str, spelled_out: bool) -> String {
    if !spelled_out {
        return serde_json::to_string(key).unwrap();
    }
    let mut s = String::from("\"");
    for unit in key.encode_utf16() {
        s.push_str(&format!("\\u{unit:04x}"));
    }
    s.push('"');
    s
}

/// An object's text with its fields in order (repeats kept), and the map it means.
fn object_text(fields: &[(String, bool, Value, bool)]) -> (String, BTreeMap<String, Value>) {
    let mut text = String::from("{");
    let mut meaning = BTreeMap::new();
    for (i, (k, spelled, v, pretty)) in fields.iter().enumerate() {
        if i > 0 {
            text.push_str(if *pretty { " ,\n\t" } else { "," });
        }
        text.push_str(&key_text(k, *spelled));
        text.push(':');
        let value = if *pretty {
            serde_json::to_string_pretty(v).unwrap()
        } else {
            serde_json::to_string(v).unwrap()
        };
        text.push_str(&value);
        meaning.insert(k.clone(), reread(v));
    }
    text.push('}');
    (text, meaning)
}

fn fields() -> impl Strategy<Value = Vec<(String, bool, Value, bool)>> {
    prop::collection::vec((key(), any::<bool>(), json_value(3), any::<bool>()), 0..24)
}

/// A value as it reads back from its JSON text (floats print and parse with their shortest form).
fn reread(v: &Value) -> Value {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

/// The keys of a JSON object in order, repeats included.
fn keys_of(json: &[u8]) -> Vec<String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((k, _)) = map.next_entry::<String, IgnoredAny>()? {
                keys.push(k);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    de.deserialize_map(Keys).unwrap()
}

/// What `obj` holds for `key`, parsed.
fn field(obj: &RawObject, key: &str) -> Option<Value> {
    obj.get(key).map(|raw| serde_json::from_str(raw).unwrap())
}

/// Checks that `obj` holds exactly `meaning`, and that its serialized form does too.
fn holds_exactly(obj: &RawObject, meaning: &BTreeMap<String, Value>) -> Result<(), TestCaseError> {
    for (k, v) in meaning {
        let got = field(obj, k);
        prop_assert_eq!(got.as_ref(), Some(v), "key {:?}", k);
    }
    let out = obj.to_vec();
    let mut keys = keys_of(&out);
    keys.sort();
    let expected: Vec<String> = meaning.keys().cloned().collect();
    prop_assert_eq!(&keys, &expected, "serialized keys, each once");
    let again = RawObject::parse(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (k, v) in meaning {
        let got = field(&again, k);
        prop_assert_eq!(got.as_ref(), Some(v));
    }
    prop_assert_eq!(again.to_vec(), out, "serializing is stable");
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Set(String, Value),
    Remove(String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (key(), json_value(2)).prop_map(|(k, v)| Op::Set(k, v)),
        key().prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(obj) = RawObject::parse(&bytes) {
            // Whatever is accepted is an object that serializes back to JSON.
            let out = obj.to_vec();
            prop_assert!(serde_json::from_slice::<serde_json::Map<String, Value>>(&out).is_ok());
        }
    }

    #[test]
    fn json_like_text_parses_or_fails_cleanly(
        parts in prop::collection::vec(
            prop_oneof![
                Just("{".to_owned()), Just("}".to_owned()), Just("[".to_owned()),
                Just("]".to_owned()), Just(",".to_owned()), Just(":".to_owned()),
                Just("\"".to_owned()), Just("\\".to_owned()), Just("\\u00".to_owned()),
                Just("\\ud800".to_owned()), Just("1e999".to_owned()), Just("-0".to_owned()),
                Just("null".to_owned()), Just(" ".to_owned()), "\"[a-c]{0,3}\"",
            ],
            0..64,
        )
    ) {
        let text = parts.concat();
        let _ = RawObject::parse(text.as_bytes());
        let _ = RawObject::parse(format!("{{\"a\":{text}}}").as_bytes());
    }

    #[test]
    fn objects_round_trip_and_the_last_repeat_wins(fields in fields()) {
        let (text, meaning) = object_text(&fields);
        let obj = RawObject::parse(text.as_bytes());
        // A body this small and shallow is within any shape limit.
        prop_assert!(obj.is_ok(), "refused {}", text);
        let obj = obj.unwrap();
        holds_exactly(&obj, &meaning)?;
        prop_assert_eq!(obj.get("never-a-generated-key"), None);
        // Values pass through as written.
        if let Some((k, _, v, pretty)) = fields.last() {
            let written = if *pretty {
                serde_json::to_string_pretty(v).unwrap()
            } else {
                serde_json::to_string(v).unwrap()
            };
            prop_assert_eq!(obj.get(k), Some(written.as_str()));
        }
    }

    #[test]
    fn get_set_remove_behave_like_a_map(fields in fields(), ops in prop::collection::vec(op(), 0..24)) {
        let (text, mut model) = object_text(&fields);
        let mut obj = RawObject::parse(text.as_bytes()).unwrap();
        for op in ops {
            match op {
                Op::Set(k, v) => {
                    obj.set(&k, &v);
                    model.insert(k, reread(&v));
                }
                Op::Remove(k) => {
                    let removed = obj.remove(&k).map(|raw| serde_json::from_str::<Value>(raw.get()).unwrap());
                    prop_assert_eq!(removed, model.remove(&k), "remove {:?}", k);
                    prop_assert_eq!(obj.get(&k), None);
                }
            }
        }
        holds_exactly(&obj, &model)?;
        holds_exactly(&obj.clone_fields(), &model)?;
    }

    #[test]
    fn deep_nesting_is_refused_or_kept_without_overflow(depth in 0usize..5_000, object in any::<bool>()) {
        let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
        let text = format!("{{\"model\":\"m\",\"x\":{}0{}}}", open.repeat(depth), close.repeat(depth));
        if let Ok(obj) = RawObject::parse(text.as_bytes()) {
            // Kept as written, never re-nested.
            prop_assert_eq!(obj.to_vec(), text.into_bytes());
        }
    }

    #[test]
    fn invalid_utf8_is_refused(fields in fields(), at in any::<prop::sample::Index>(), bad in prop_oneof![Just(vec![0xff]), Just(vec![0xc3]), Just(vec![0xed, 0xa0, 0x80]), Just(vec![0xf4, 0x90, 0x80, 0x80])]) {
        let (text, _) = object_text(&fields);
        // Put the bad bytes inside a string, where JSON would otherwise accept anything.
        let quotes: Vec<usize> = text.match_indices('"').map(|(i, _)| i + 1).collect();
        let mut bytes = text.into_bytes();
        let pos = if quotes.is_empty() { 1 } else { quotes[at.index(quotes.len())] };
        bytes.splice(pos..pos, bad);
        prop_assert!(RawObject::parse(&bytes).is_err());
    }
}

proptest! {
    // Bodies of thousands of keys or megabytes: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn many_keys_parse_or_fail_cleanly(n in 0usize..4_000, distinct in 1usize..4_000) {
        let mut text = String::from("{");
        for i in 0..n {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!("\"k{}\":{i}", i % distinct));
        }
        text.push('}');
        if let Ok(obj) = RawObject::parse(text.as_bytes()) {
            // Every key holds its last value.
            let last = n.checked_sub(1).map(|l| l % distinct);
            if let Some(k) = last {
                let last_value = (n - 1).to_string();
                prop_assert_eq!(obj.get(&format!("k{k}")), Some(last_value.as_str()));
            }
            prop_assert_eq!(keys_of(&obj.to_vec()).len(), n.min(distinct));
        }
    }


    #[test]
    fn huge_strings_round_trip(len in 0usize..200_000, at in 0usize..3) {
        let big = "x\u{e9}\"\\".repeat(len / 4);
        let mut fields = vec![
            ("model".to_owned(), false, Value::from("m"), false),
            ("messages".to_owned(), false, Value::Array(vec![]), false),
        ];
        fields.insert(at.min(fields.len()), ("system".to_owned(), false, Value::from(big), false));
        let (text, meaning) = object_text(&fields);
        let obj = RawObject::parse(text.as_bytes()).unwrap();
        holds_exactly(&obj, &meaning)?;
    }

}
