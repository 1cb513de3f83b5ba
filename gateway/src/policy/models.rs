//! `availableModels` as the gateway enforces it: an entry admits the exact id, any spelling of the
//! same built-in model (dated, Bedrock, `[1m]`), or a whole family by its alias (`opus`).

use crate::api::catalog::{built_in, normalize};

const FAMILIES: &[&str] = &["opus", "sonnet", "haiku", "fable"];

/// Whether `list` admits `model`.
pub fn allows(list: &[String], model: &str) -> bool {
    let wanted = normalize(model);
    let wanted_builtin = built_in(wanted).map(|b| b.id);
    list.iter().any(|entry| {
        let entry = normalize(entry);
        if entry == wanted {
            return true;
        }
        if FAMILIES.contains(&entry) {
            let family = format!("-{entry}-");
            return wanted_builtin.is_some_and(|id| id.contains(&family))
                || wanted.contains(&family);
        }
        wanted_builtin.is_some() && built_in(entry).map(|b| b.id) == wanted_builtin
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn spellings_and_families() {
        let l = list(&["claude-sonnet-4-5", "haiku"]);
        assert!(allows(&l, "claude-sonnet-4-5"));
        assert!(allows(&l, "claude-sonnet-4-5-20250929"));
        assert!(allows(&l, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"));
        assert!(allows(&l, "claude-sonnet-4-5[1m]"));
        assert!(allows(&l, "claude-haiku-4-5"));
        assert!(allows(&l, "claude-haiku-5-5"));
        assert!(!allows(&l, "claude-opus-4-8"));
        assert!(!allows(&l, "claude-sonnet-4-6"));
        assert!(!allows(&list(&[]), "claude-haiku-4-5"));
        assert!(allows(&list(&["team-model"]), "team-model"));
    }
}
