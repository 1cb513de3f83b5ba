//! Reads a profile file: `KEY=value` lines that a POSIX shell can also `source`.
//!
//! Accepted: blank lines, `#` comments, an optional `export ` prefix, values bare, in single
//! quotes (taken literally) or in double quotes (with `\"`, `\\`, `\$` and `` \` `` escapes).
//! Refused, with the line number: anything a shell would expand (`$VAR`, `$(...)`, backticks) in
//! a bare or double-quoted value, a key that is not a shell name, and a key given twice.

use std::collections::BTreeMap;

/// One `KEY=value` assignment and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value, unquoted.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// Parses the text of a profile into its assignments, in key order.
pub fn parse(text: &str) -> Result<BTreeMap<String, Entry>, String> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed
            .strip_prefix("export ")
            .unwrap_or(trimmed)
            .trim_start();
        let Some((key, rest)) = body.split_once('=') else {
            return Err(format!(
                "line {line}: expected KEY=value, found {trimmed:?}"
            ));
        };
        if !is_name(key) {
            return Err(format!("line {line}: {key:?} is not a valid variable name"));
        }
        let value = unquote(rest).map_err(|e| format!("line {line} ({key}): {e}"))?;
        if let Some(prev) = out.insert(key.to_owned(), Entry { value, line }) {
            return Err(format!(
                "line {line}: {key} is already set on line {}",
                prev.line
            ));
        }
    }
    Ok(out)
}

fn is_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(rest: &str) -> Result<String, String> {
    if let Some(inner) = rest.strip_prefix('\'') {
        let end = inner.find('\'').ok_or("unterminated single quote")?;
        trailing_comment_only(&inner[end + 1..])?;
        return Ok(inner[..end].to_owned());
    }
    if let Some(inner) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\' | '$' | '`'))) => out.push(e),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => return Err("unterminated double quote".into()),
                },
                '"' => {
                    trailing_comment_only(&inner[i + 1..])?;
                    return Ok(out);
                }
                '$' | '`' => return Err(shell_expansion()),
                c => out.push(c),
            }
        }
        return Err("unterminated double quote".into());
    }
    let value = match rest.find(" #") {
        Some(i) => &rest[..i],
        None => rest,
    }
    .trim_end();
    if value.contains(['$', '`']) {
        return Err(shell_expansion());
    }
    if value.contains(char::is_whitespace) || value.contains([';', '&', '|', '<', '>', '(', ')']) {
        return Err("a value with spaces or shell characters must be quoted".into());
    }
    Ok(value.to_owned())
}

fn trailing_comment_only(after: &str) -> Result<(), String> {
    let t = after.trim();
    if t.is_empty() || t.starts_with('#') {
        Ok(())
    } else {
        Err(format!("unexpected text after the closing quote: {t:?}"))
    }
}

fn shell_expansion() -> String {
    "the value would be expanded by a shell ($ or `); use single quotes for a literal".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let p = parse("# c\nA=1\nexport B='x y $z'\nC=\"q \\\"w\\\"\" # note\nD=bare # note\nE=\n")
            .unwrap();
        assert_eq!(p["A"].value, "1");
        assert_eq!(p["B"].value, "x y $z");
        assert_eq!(p["C"].value, "q \"w\"");
        assert_eq!(p["D"].value, "bare");
        assert_eq!(p["E"].value, "");
        assert_eq!(p["C"].line, 4);
    }

    #[test]
    fn refusals() {
        assert!(parse("A=$HOME").unwrap_err().contains("line 1"));
        assert!(parse("A=1\nA=2")
            .unwrap_err()
            .contains("already set on line 1"));
        assert!(parse("1A=x").is_err());
        assert!(parse("A=two words").is_err());
        assert!(parse("A='open").is_err());
        assert!(parse("just text").is_err());
    }
}
