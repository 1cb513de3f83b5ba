//! `${VAR}` and `${file:/absolute/path}` expansion over a parsed YAML tree, before typed parsing.
//!
//! `${VAR}` may sit anywhere inside a string value; `${file:...}` must be the whole value and names
//! an absolute path whose trimmed contents replace it. Keys are never expanded.

use std::path::Path;

use serde_yaml::Value;

use super::env::Env;
use super::error::Issue;

/// Expands every string value in `value`, collecting one issue per bad reference.
pub fn expand(value: &mut Value, env: &dyn Env, issues: &mut Vec<Issue>) {
    walk(value, &mut Vec::new(), env, issues);
}

fn walk(value: &mut Value, path: &mut Vec<String>, env: &dyn Env, issues: &mut Vec<Issue>) {
    match value {
        Value::String(s) => match expand_str(s, env) {
            Ok(Some(expanded)) => *s = expanded,
            Ok(None) => {}
            Err((location, message)) => issues.push(Issue::new(location, message)),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, path, env, issues);
                path.pop();
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                };
                path.push(key);
                walk(v, path, env, issues);
                path.pop();
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, env, issues),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Expands one string. `Ok(None)` means it holds no reference.
/// On error, returns the location to name (the reference itself) and a message.
fn expand_str(s: &str, env: &dyn Env) -> Result<Option<String>, (String, String)> {
    if !s.contains("${") {
        return Ok(None);
    }
    if let Some(inner) = s.strip_prefix("${file:").and_then(|r| r.strip_suffix('}')) {
        return read_file_ref(s, inner, env).map(Some);
    }
    if s.contains("${file:") {
        return Err((
            s.to_owned(),
            "a ${file:...} reference must be the field's entire value".to_owned(),
        ));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            match env.var(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err((
                        name.to_owned(),
                        format!("undefined environment variable {name}"),
                    ))
                }
            }
            rest = &after[name_len + 1..];
        } else {
            // Not a reference (for example a literal "${" in a password): keep it as written.
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

fn read_file_ref(whole: &str, path: &str, env: &dyn Env) -> Result<String, (String, String)> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err((
            whole.to_owned(),
            format!("${{file:}} path must be absolute, got {path}"),
        ));
    }
    env.read_file(p)
        .map(|text| text.trim().to_owned())
        .map_err(|e| (whole.to_owned(), format!("cannot read {path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::MapEnv;

    fn run(yaml: &str, env: &MapEnv) -> (Value, Vec<Issue>) {
        let mut v: Value = serde_yaml::from_str(yaml).unwrap();
        let mut issues = Vec::new();
        expand(&mut v, env, &mut issues);
        (v, issues)
    }

    #[test]
    fn expands_variables_inside_strings() {
        let env = MapEnv::new()
            .with_var("TOKEN", "abc")
            .with_var("PORT", "9000");
        let (v, issues) = run("a: Bearer ${TOKEN}\nb: [\"${PORT}\"]\nc: plain", &env);
        assert!(issues.is_empty());
        assert_eq!(v["a"], Value::String("Bearer abc".into()));
        assert_eq!(v["b"][0], Value::String("9000".into()));
        assert_eq!(v["c"], Value::String("plain".into()));
    }

    #[test]
    fn undefined_variable_names_it() {
        let (_, issues) = run("a: ${NOPE_X}", &MapEnv::new());
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "NOPE_X");
        assert!(issues[0].message.contains("NOPE_X"));
    }

    #[test]
    fn file_reference_is_trimmed_and_must_be_absolute() {
        let env = MapEnv::new().with_file("/s/key", "  secret\n");
        let (v, issues) = run("a: ${file:/s/key}", &env);
        assert!(issues.is_empty());
        assert_eq!(v["a"], Value::String("secret".into()));

        let (_, issues) = run("a: ${file:run/keyfile}", &env);
        assert_eq!(issues[0].path, "${file:run/keyfile}");
        assert!(issues[0].message.contains("absolute"));

        let (_, issues) = run("a: x${file:/s/key}", &env);
        assert!(issues[0].message.contains("entire value"));
    }

    #[test]
    fn keys_and_non_references_are_left_alone() {
        let env = MapEnv::new();
        let (v, issues) = run("\"${K}\": pa$${word\nb: $HOME", &env);
        assert!(issues.is_empty());
        assert_eq!(v["${K}"], Value::String("pa$${word".into()));
        assert_eq!(v["b"], Value::String("$HOME".into()));
    }
}
