//! The JSON walker: the body parsed with serde_json, every string value under a secret-named
//! key or a configured path replaced by a token, every other string value masked by value.
//! Object keys, numbers, booleans and nulls are kept, and the structure with them; a body with
//! nothing masked is returned as it came (the walker reports no change), a masked one is
//! written back compactly.

use serde_json::Value;

use super::budget::Budget;
use super::keys::{kind_for_key, path_kind};
use super::kind::{is_token, token, Counts, Kind};
use super::{text, Rules, WalkError, MAX_DEPTH};

/// `body` masked as JSON, `None` when nothing is masked; `NotThisFormat` when it does not
/// parse or nests deeper than [`MAX_DEPTH`].
pub(crate) fn mask(
    body: &str,
    rules: &Rules,
    budget: &mut Budget,
    counts: &mut Counts,
) -> Result<Option<String>, WalkError> {
    if depth(body) > MAX_DEPTH {
        return Err(WalkError::NotThisFormat);
    }
    let mut value: Value = serde_json::from_str(body).map_err(|_| WalkError::NotThisFormat)?;
    budget.spend(body.len())?;
    let mut walk = Walk {
        rules,
        budget,
        counts,
        stack: Vec::new(),
        changed: false,
    };
    walk.value(&mut value, None)?;
    if !walk.changed {
        return Ok(None);
    }
    serde_json::to_string(&value)
        .map(Some)
        .map_err(|_| WalkError::NotThisFormat)
}

/// The deepest nesting of arrays and objects in `body`, read without parsing.
fn depth(body: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for c in body.bytes() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

struct Walk<'a> {
    rules: &'a Rules,
    budget: &'a mut Budget,
    counts: &'a mut Counts,
    /// The keys from the top down to the current value; arrays add none.
    stack: Vec<String>,
    changed: bool,
}

impl Walk<'_> {
    fn value(&mut self, value: &mut Value, masked_as: Option<Kind>) -> Result<(), WalkError> {
        match value {
            Value::String(s) => match masked_as {
                Some(kind) if !s.is_empty() && !is_token(s) => {
                    *s = token(kind);
                    self.counts.add(kind);
                    self.changed = true;
                }
                Some(_) => {}
                None => {
                    if let Some(masked) = text::mask(s, self.rules, self.budget, self.counts)? {
                        *s = masked;
                        self.changed = true;
                    }
                }
            },
            Value::Array(items) => {
                for item in items {
                    self.value(item, masked_as)?;
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    self.budget.spend(key.len())?;
                    self.stack.push(key.clone());
                    let walked = match masked_as.or_else(|| kind_for_key(key)) {
                        Some(kind) => Ok(Some(kind)),
                        None => self.path_kind(),
                    }
                    .and_then(|kind| self.value(item, kind));
                    self.stack.pop();
                    walked?;
                }
            }
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
        }
        Ok(())
    }

    fn path_kind(&mut self) -> Result<Option<Kind>, WalkError> {
        Ok(path_kind(self.rules.paths(), &self.stack, self.budget)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, rules: &Rules) -> (Option<String>, Counts) {
        let mut counts = Counts::default();
        let out = mask(body, rules, &mut Budget::for_body(body.len()), &mut counts).unwrap();
        (out, counts)
    }

    #[test]
    fn values_under_secret_keys_become_tokens_and_the_rest_is_kept() {
        let body = r#"{"Name":"db","SecretString":"{\"password\":\"p\"}","VersionStages":["AWSCURRENT"],"Size":3,"On":true,"Credentials":{"SessionToken":"FwoG","Expiration":null}}"#;
        let (out, counts) = run(body, &Rules::default());
        let out: Value = serde_json::from_str(&out.unwrap()).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"Name":"db","SecretString":"[MASKED:secret]","VersionStages":["AWSCURRENT"],"Size":3,"On":true,"Credentials":{"SessionToken":"[MASKED:token]","Expiration":null}})
        );
        assert_eq!(counts.get(Kind::Secret), 1);
        assert_eq!(counts.get(Kind::Token), 1);
    }

    #[test]
    fn everything_under_a_secret_key_is_masked_leaf_by_leaf() {
        let body = r#"{"ClientSecret":{"a":"x","b":["y",""],"n":7}}"#;
        let (out, counts) = run(body, &Rules::default());
        assert_eq!(
            out.unwrap(),
            r#"{"ClientSecret":{"a":"[MASKED:secret]","b":["[MASKED:secret]",""],"n":7}}"#
        );
        assert_eq!(counts.get(Kind::Secret), 2);
    }

    #[test]
    fn configured_paths_mask_through_arrays() {
        let rules = Rules::default().with_paths(["Parameters.Value"]).unwrap();
        let body = r#"{"Parameters":[{"Name":"a","Value":"v1"},{"Name":"b","Value":"v2"}]}"#;
        let (out, counts) = run(body, &rules);
        assert_eq!(
            out.unwrap(),
            r#"{"Parameters":[{"Name":"a","Value":"[MASKED:secret]"},{"Name":"b","Value":"[MASKED:secret]"}]}"#
        );
        assert_eq!(counts.get(Kind::Secret), 2);
    }

    #[test]
    fn a_body_with_nothing_to_mask_is_reported_unchanged() {
        let (out, counts) = run(
            r#"{ "NextToken": "abc", "Items": [1, 2] }"#,
            &Rules::default(),
        );
        assert_eq!(out, None);
        assert_eq!(counts.total(), 0);
    }

    #[test]
    fn broken_or_too_deep_json_is_not_this_format() {
        let mut counts = Counts::default();
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        for body in ["{\"a\":", "nope", deep.as_str()] {
            let out = mask(
                body,
                &Rules::default(),
                &mut Budget::for_body(body.len()),
                &mut counts,
            );
            assert_eq!(out, Err(WalkError::NotThisFormat), "{body}");
        }
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let out = mask(
            &ok,
            &Rules::default(),
            &mut Budget::for_body(ok.len()),
            &mut counts,
        );
        assert_eq!(out, Ok(None));
        assert_eq!(depth(r#"{"a":"[[[[\"]]"}"#), 1);
    }
}
