//! Properties of the masker over generated bodies: it never panics, its ranges are sound,
//! masking twice changes nothing, no secret from a corpus survives wherever it is embedded,
//! and output grows by a bounded factor.

use proptest::prelude::*;
use serde_json::Value;

use super::detect::detect;
use super::*;

/// Output is at most this many times the input, plus [`GROWTH_SLACK`]: the longest token is 30
/// bytes and the shortest masked JSON string, `"a"`, is 3.
const GROWTH_FACTOR: usize = 11;
const GROWTH_SLACK: usize = 64;

const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("application/json"),
    Some("application/x-amz-json-1.0"),
    Some("text/xml"),
    Some("text/plain"),
    Some("binary/octet-stream"),
];

fn all_on() -> Rules {
    Rules::default()
        .with_emails(true)
        .with_phones(true)
        .with_paths(["Parameter.Value", "$.*.Secret"])
        .unwrap()
}

/// Strings that look like what detectors look for, so generated text reaches their inner paths.
fn texty() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("AKIA".to_owned()),
        Just("ASIA".to_owned()),
        Just("secret".to_owned()),
        Just("Password=".to_owned()),
        Just("token: ".to_owned()),
        Just("\"".to_owned()),
        Just("\\\"".to_owned()),
        Just("://".to_owned()),
        Just("@".to_owned()),
        Just("+1".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("eyJ".to_owned()),
        Just("-----BEGIN RSA PRIVATE KEY-----".to_owned()),
        Just("-----END RSA PRIVATE KEY-----".to_owned()),
        Just("[MASKED:jwt]".to_owned()),
        Just("<".to_owned()),
        Just("&amp;".to_owned()),
        "[A-Z0-9]{1,20}",
        "[a-zA-Z0-9/+]{36,44}",
        "[0-9 .()-]{1,16}",
        "[a-z.]{1,10}",
        "[ ;=:,\n]",
        any::<String>(),
    ];
    prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        texty().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[A-Za-z_]{1,12}",
                    Just("Password".to_owned()),
                    Just("Secret".to_owned()),
                    Just("Parameter".to_owned()),
                    Just("Value".to_owned()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Element(String, Vec<Node>),
}

fn xml_node() -> impl Strategy<Value = Node> {
    let leaf = texty().prop_map(Node::Text);
    leaf.prop_recursive(4, 30, 5, |inner| {
        (
            prop_oneof![
                "[A-Za-z][A-Za-z0-9]{0,8}",
                Just("SessionToken".to_owned()),
                Just("Value".to_owned())
            ],
            prop::collection::vec(inner, 0..5),
        )
            .prop_map(|(name, children)| Node::Element(name, children))
    })
}

fn render(node: &Node, out: &mut String) {
    match node {
        Node::Text(text) => out.push_str(&escape(text)),
        Node::Element(name, children) => {
            out.push_str(&format!("<{name}>"));
            for child in children {
                render(child, out);
            }
            out.push_str(&format!("</{name}>"));
        }
    }
}

fn xml_document() -> impl Strategy<Value = String> {
    prop::collection::vec(xml_node(), 0..4).prop_map(|children| {
        let mut out = String::from("<?xml version=\"1.0\"?>");
        render(&Node::Element("Root".to_owned(), children), &mut out);
        out
    })
}

/// Each secret as it appears, and the part of it that must not survive.
fn corpus() -> Vec<(String, &'static str)> {
    let id = "AKIA3XFRBF535PLBQWER";
    let key = "k9XbQe2uVr7T/aNw4LmPz8Hs+Dc1Yf6Go3JtRiEq";
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    vec![
        (id.to_owned(), id),
        (format!("{id} {key}"), key),
        (format!("aws_secret_access_key = {key}"), key),
        (
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5\n-----END EC PRIVATE KEY-----".to_owned(),
            "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5",
        ),
        (jwt.to_owned(), "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
        ("postgres://app:Tr0ub4dor3@db.internal:5432/app".to_owned(), "Tr0ub4dor3"),
        ("DB_PASSWORD=hunter2-horse".to_owned(), "hunter2-horse"),
        ("Server=db;User Id=app;Password=Adm1n Pass;".to_owned(), "Adm1n Pass"),
        ("ana.lopez+aws@example.com".to_owned(), "ana.lopez+aws@example.com"),
        ("+14155552671".to_owned(), "4155552671"),
        ("(415) 555-2671".to_owned(), "555-2671"),
    ]
}

fn filler() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.:_-]{0,40}"
}

/// A body of `format` (0 text, 1 JSON, 2 XML) with `secret` embedded in one string among
/// generated ones, nested `depth` deep.
fn embed(
    format: u8,
    secret: &str,
    pre: &str,
    post: &str,
    others: &[String],
    depth: usize,
) -> (String, &'static str) {
    let value = format!("{pre} {secret} {post}");
    match format {
        0 => (
            format!("{}\n{value}\n{}", others.join("\n"), others.join(" ")),
            "text/plain",
        ),
        1 => {
            let mut inner = Value::String(value);
            for (n, other) in others.iter().enumerate().take(depth) {
                inner = if n % 2 == 0 {
                    Value::Array(vec![Value::String(other.clone()), inner])
                } else {
                    serde_json::json!({ "filler": other, "item": inner })
                };
            }
            (serde_json::to_string(&inner).unwrap(), "application/json")
        }
        _ => {
            let mut inner = format!("<Item>{}</Item>", escape(&value));
            for other in others.iter().take(depth) {
                inner = format!("<Group><Note>{}</Note>{inner}</Group>", escape(other));
            }
            (format!("<Root>{inner}</Root>"), "application/xml")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_walker_panics_on_arbitrary_bytes(
        body in prop::collection::vec(any::<u8>(), 0..300),
        ct in 0..CONTENT_TYPES.len(),
    ) {
        let _ = mask(&body, CONTENT_TYPES[ct], &all_on());
    }

    #[test]
    fn detector_ranges_are_sound(text in texty()) {
        let hits = detect(&text, &all_on());
        let mut last_end = 0;
        for hit in hits {
            prop_assert!(hit.start >= last_end && hit.start < hit.end && hit.end <= text.len());
            prop_assert!(text.is_char_boundary(hit.start) && text.is_char_boundary(hit.end));
            last_end = hit.end;
        }
    }

    #[test]
    fn masking_text_twice_changes_nothing(text in texty(), ct in 0..CONTENT_TYPES.len()) {
        let rules = all_on();
        let once = mask(text.as_bytes(), CONTENT_TYPES[ct], &rules).unwrap();
        let twice = mask(&once.body, CONTENT_TYPES[ct], &rules).unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&twice.body), String::from_utf8_lossy(&once.body));
        prop_assert!(!twice.changed());
        prop_assert!(once.body.len() <= GROWTH_FACTOR * text.len() + GROWTH_SLACK);
    }

    #[test]
    fn masking_json_twice_changes_nothing(value in json_value()) {
        let body = serde_json::to_string(&value).unwrap();
        let rules = all_on();
        let once = mask(body.as_bytes(), Some("application/json"), &rules).unwrap();
        prop_assert_eq!(once.format, Format::Json);
        let twice = mask(&once.body, Some("application/json"), &rules).unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&twice.body), String::from_utf8_lossy(&once.body));
        prop_assert!(!twice.changed());
        prop_assert!(once.body.len() <= GROWTH_FACTOR * body.len() + GROWTH_SLACK);
    }

    #[test]
    fn masking_xml_twice_changes_nothing(body in xml_document()) {
        let rules = all_on();
        let once = mask(body.as_bytes(), Some("text/xml"), &rules).unwrap();
        prop_assert_eq!(once.format, Format::Xml);
        let twice = mask(&once.body, Some("text/xml"), &rules).unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&twice.body), String::from_utf8_lossy(&once.body));
        prop_assert!(!twice.changed());
        prop_assert!(once.body.len() <= GROWTH_FACTOR * body.len() + GROWTH_SLACK);
    }

    #[test]
    fn no_secret_from_the_corpus_survives(
        which in 0..corpus().len(),
        format in 0u8..3,
        pre in filler(),
        post in filler(),
        others in prop::collection::vec(filler(), 0..5),
        depth in 0usize..5,
    ) {
        let (secret, core) = corpus().swap_remove(which);
        let (body, content_type) = embed(format, &secret, &pre, &post, &others, depth);
        let out = mask(body.as_bytes(), Some(content_type), &all_on()).unwrap();
        let out = String::from_utf8(out.body.into_owned()).unwrap();
        prop_assert!(!out.contains(core), "{} survives in {}", core, out);
    }
}
