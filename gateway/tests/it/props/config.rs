//! gateway.yaml (`config::load`): any text, and any small mutation of the example config, gives a
//! config or a `ConfigError` with at least one issue, never a panic; YAML aliases cannot make a
//! small file expand without bound.

use claude_gateway::config::{self, MapEnv};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../../config/gateway.example.yaml");

fn env() -> MapEnv {
    MapEnv::new()
        .with_var("OIDC_CLIENT_SECRET", "oidc-secret")
        .with_var(
            "GATEWAY_JWT_SECRET",
            "0123456789abcdef0123456789abcdef-props",
        )
        .with_var("GATEWAY_POSTGRES_URL", "postgres://gw@db.internal/gateway")
}

/// Loads `text`; an error must say something.
fn load_cleanly(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = config::load(text, &env()) {
        prop_assert!(!e.issues.is_empty(), "an error without an issue");
        for issue in &e.issues {
            prop_assert!(
                !issue.message.is_empty(),
                "an issue without a message at {}",
                issue.path
            );
        }
        prop_assert!(!e.to_string().is_empty());
    }
    Ok(())
}

/// Pieces of YAML syntax, values and references.
fn yaml_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("- ".to_owned()),
        Just(": ".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(", ".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: *a".to_owned()),
        Just("!tag ".to_owned()),
        Just("? ".to_owned()),
        Just("|\n".to_owned()),
        Just("---\n".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("~".to_owned()),
        Just("${GATEWAY_JWT_SECRET}".to_owned()),
        Just("${NOPE}".to_owned()),
        Just("${file:/nope}".to_owned()),
        Just("${".to_owned()),
        Just("listen".to_owned()),
        Just("upstreams".to_owned()),
        Just("session".to_owned()),
        Just("store".to_owned()),
        Just("managed".to_owned()),
        Just("port".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("1e400".to_owned()),
        Just(".nan".to_owned()),
        "[a-z_]{1,8}",
        any::<String>(),
    ]
}

/// The example config with one line dropped, duplicated, re-indented or given a new value.
fn mutated_example() -> impl Strategy<Value = String> {
    let lines: Vec<String> = EXAMPLE.lines().map(str::to_owned).collect();
    let n = lines.len();
    (0..n, 0usize..5, yaml_piece()).prop_map(move |(i, how, piece)| {
        let mut l = lines.clone();
        match how {
            0 => {
                l.remove(i);
            }
            1 => {
                let dup = l[i].clone();
                l.insert(i, dup);
            }
            2 => l[i] = format!("  {}", l[i]),
            3 => {
                // A new scalar after the key, or a whole new line.
                l[i] = match l[i].split_once(": ") {
                    Some((k, _)) => format!("{k}: {piece}"),
                    None => piece,
                };
            }
            _ => l[i] = l[i].trim_start().to_owned(),
        }
        l.join("\n")
    })
}

/// Anchored lists that reference the level below: `l0` holds `width` scalars, each next level
/// `refs[i]` aliases of the one before. Returns the text and the values it expands to.
fn alias_levels(width: usize, refs: &[usize]) -> (String, u128) {
    let mut text = format!("l0: &l0 [{}]\n", vec!["x"; width].join(", "));
    let mut level: u128 = 1 + width as u128;
    // The top mapping, and each level's key and list.
    let mut total: u128 = 1 + 1 + level;
    for (i, n) in refs.iter().enumerate() {
        let aliases = vec![format!("*l{i}"); *n].join(", ");
        text.push_str(&format!("l{}: &l{} [{aliases}]\n", i + 1, i + 1));
        level = 1 + *n as u128 * level;
        total += 1 + level;
    }
    (text, total)
}

#[test]
fn the_example_loads() {
    config::load(EXAMPLE, &env()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_loads_or_names_its_issues(text in any::<String>()) {
        load_cleanly(&text)?;
    }

    #[test]
    fn yaml_like_text_loads_or_names_its_issues(pieces in prop::collection::vec(yaml_piece(), 0..48)) {
        load_cleanly(&pieces.concat())?;
    }

    #[test]
    fn a_mutated_example_loads_or_names_its_issues(text in mutated_example()) {
        load_cleanly(&text)?;
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow(depth in 0usize..1_000, flow in 0usize..3) {
        let text = match flow {
            0 => format!("listen: {}1{}", "[".repeat(depth), "]".repeat(depth)),
            1 => format!("listen: {}1{}", "{a: ".repeat(depth), "}".repeat(depth)),
            _ => {
                let mut t = String::new();
                for d in 0..depth.min(400) {
                    t.push_str(&" ".repeat(d));
                    t.push_str("a:\n");
                }
                t
            }
        };
        load_cleanly(&text)?;
    }
}

proptest! {
    // Up to tens of kilobytes of YAML each: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn aliases_never_expand_past_the_limit(
        width in 0usize..2_000,
        refs in prop::collection::vec(0usize..2_000, 0..6),
        under_example in any::<bool>(),
    ) {
        let (bomb, values) = alias_levels(width, &refs);
        let text = if under_example { format!("{EXAMPLE}\n{bomb}") } else { bomb };
        let loaded = config::load(&text, &env());
        if values > config::MAX_CONFIG_VALUES as u128 {
            // Refused before the document is built, by this limit or the YAML reader's own.
            let e = loaded.err();
            prop_assert!(e.is_some(), "{} values accepted", values);
            let message = &e.unwrap().issues[0].message;
            prop_assert!(
                message.contains("YAML aliases") || message.contains("repetition limit"),
                "{} values: {}", values, message
            );
        } else if let Err(e) = loaded {
            prop_assert!(!e.issues.is_empty());
        }
    }
}
