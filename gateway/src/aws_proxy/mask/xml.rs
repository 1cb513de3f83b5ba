//! The XML walker, for the AWS Query and REST-XML answers: a small tokenizer (no DTDs) that
//! copies the body through and rewrites only character data and attribute values. Text inside an
//! element with a secret-holding name (or below one, or at a configured path) becomes one token
//! per run; other text and attribute values are masked by value. Entities (the five predefined
//! and character references) and CDATA are read before scanning, and masked text is written
//! back escaped; a document type declaration, an unknown entity, a mismatched or unclosed tag,
//! or nesting deeper than [`MAX_DEPTH`] makes the body not XML, to be masked as text.

use super::budget::Budget;
use super::keys::{kind_for_key, path_kind};
use super::kind::{is_token, token, Counts, Kind};
use super::{text, Rules, WalkError, MAX_DEPTH};

/// `body` masked as XML, `None` when nothing is masked.
pub(crate) fn mask(
    body: &str,
    rules: &Rules,
    budget: &mut Budget,
    counts: &mut Counts,
) -> Result<Option<String>, WalkError> {
    budget.spend(body.len())?;
    let mut xml = Xml {
        body,
        pos: 0,
        out: String::with_capacity(body.len()),
        stack: Vec::new(),
        names: Vec::new(),
        run: None,
        rules,
        budget,
        counts,
        changed: false,
    };
    xml.document()?;
    Ok(xml.changed.then_some(xml.out))
}

struct Element<'a> {
    name: &'a str,
    masked_as: Option<Kind>,
}

/// Character data between two pieces of markup: where it starts, and its text with entities
/// and CDATA read.
struct Run {
    start: usize,
    text: String,
}

struct Xml<'a, 'r> {
    body: &'a str,
    pos: usize,
    out: String,
    stack: Vec<Element<'a>>,
    /// The local names of the open elements, for key paths.
    names: Vec<&'a str>,
    run: Option<Run>,
    rules: &'r Rules,
    budget: &'r mut Budget,
    counts: &'r mut Counts,
    changed: bool,
}

fn not_xml<T>() -> Result<T, WalkError> {
    Err(WalkError::NotThisFormat)
}

impl<'a> Xml<'a, '_> {
    fn rest(&self) -> &'a str {
        self.body.get(self.pos..).unwrap_or_default()
    }

    fn slice(&self, start: usize, end: usize) -> Result<&'a str, WalkError> {
        self.body.get(start..end).ok_or(WalkError::NotThisFormat)
    }

    /// The position of `pattern` at or after `from`.
    fn find(&self, from: usize, pattern: &str) -> Result<usize, WalkError> {
        self.body
            .get(from..)
            .and_then(|rest| rest.find(pattern))
            .map(|r| from + r)
            .ok_or(WalkError::NotThisFormat)
    }

    fn document(&mut self) -> Result<(), WalkError> {
        while self.pos < self.body.len() {
            let rest = self.rest();
            if !rest.starts_with('<') {
                self.text()?;
            } else if rest.starts_with("<![CDATA[") {
                self.cdata()?;
            } else {
                self.flush()?;
                if rest.starts_with("<!--") {
                    self.comment()?;
                } else if rest.starts_with("<?") {
                    let end = self.find(self.pos + 2, "?>")? + 2;
                    self.out.push_str(self.slice(self.pos, end)?);
                    self.pos = end;
                } else if rest.starts_with("<!") {
                    return not_xml();
                } else if rest.starts_with("</") {
                    self.end_tag()?;
                } else {
                    self.start_tag()?;
                }
            }
        }
        self.flush()?;
        if self.stack.is_empty() {
            Ok(())
        } else {
            not_xml()
        }
    }

    fn run(&mut self) -> &mut Run {
        let start = self.pos;
        self.run.get_or_insert_with(|| Run {
            start,
            text: String::new(),
        })
    }

    fn text(&mut self) -> Result<(), WalkError> {
        let end = self
            .rest()
            .find('<')
            .map_or(self.body.len(), |r| self.pos + r);
        let raw = self.slice(self.pos, end)?;
        decode(raw, &mut self.run().text)?;
        self.pos = end;
        Ok(())
    }

    fn cdata(&mut self) -> Result<(), WalkError> {
        let start = self.pos + "<![CDATA[".len();
        let end = self.find(start, "]]>")?;
        let inner = self.slice(start, end)?;
        self.run().text.push_str(inner);
        self.pos = end + 3;
        Ok(())
    }

    /// Writes the pending character data, masked.
    fn flush(&mut self) -> Result<(), WalkError> {
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        let raw = self.slice(run.start, self.pos)?;
        let trimmed = run.text.trim();
        match self.stack.last().and_then(|e| e.masked_as) {
            Some(_) if trimmed.is_empty() || is_token(trimmed) => self.out.push_str(raw),
            Some(kind) => {
                self.out.push_str(&token(kind));
                self.counts.add(kind);
                self.changed = true;
            }
            None => match text::mask(&run.text, self.rules, self.budget, self.counts)? {
                Some(masked) => {
                    escape_into(&masked, &mut self.out, false);
                    self.changed = true;
                }
                None => self.out.push_str(raw),
            },
        }
        Ok(())
    }

    fn comment(&mut self) -> Result<(), WalkError> {
        let start = self.pos + 4;
        let end = self.find(start, "-->")?;
        let inner = self.slice(start, end)?;
        self.out.push_str("<!--");
        match text::mask(inner, self.rules, self.budget, self.counts)? {
            Some(masked) => {
                self.out.push_str(&masked);
                self.changed = true;
            }
            None => self.out.push_str(inner),
        }
        self.out.push_str("-->");
        self.pos = end + 3;
        Ok(())
    }

    fn end_tag(&mut self) -> Result<(), WalkError> {
        let close = self.find(self.pos + 2, ">")?;
        let name = self.slice(self.pos + 2, close)?.trim_end();
        match self.stack.pop() {
            Some(open) if open.name == name => {
                self.names.pop();
            }
            _ => return not_xml(),
        }
        self.out.push_str(self.slice(self.pos, close + 1)?);
        self.pos = close + 1;
        Ok(())
    }

    fn start_tag(&mut self) -> Result<(), WalkError> {
        let b = self.body.as_bytes();
        let name_start = self.pos + 1;
        let name_len = b[name_start..]
            .iter()
            .take_while(|c| is_name_char(**c))
            .count();
        let name_end = name_start + name_len;
        if name_len == 0 || self.stack.len() >= MAX_DEPTH {
            return not_xml();
        }
        let name = self.slice(name_start, name_end)?;
        let local = local_name(name);
        let masked_as = self.element_kind(local)?;
        self.out.push_str(self.slice(self.pos, name_end)?);
        let mut j = name_end;
        loop {
            let space_start = j;
            while b.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            match b.get(j) {
                Some(b'>') => {
                    self.out.push_str(self.slice(space_start, j + 1)?);
                    self.stack.push(Element { name, masked_as });
                    self.names.push(local);
                    j += 1;
                    break;
                }
                Some(b'/') if b.get(j + 1) == Some(&b'>') => {
                    self.out.push_str(self.slice(space_start, j + 2)?);
                    j += 2;
                    break;
                }
                Some(_) if j > space_start => j = self.attribute(space_start, j)?,
                _ => return not_xml(),
            }
        }
        self.pos = j;
        Ok(())
    }

    /// Copies the attribute starting at `j` (after blanks from `space_start`), its value masked;
    /// returns the position after it.
    fn attribute(&mut self, space_start: usize, mut j: usize) -> Result<usize, WalkError> {
        let b = self.body.as_bytes();
        let name_start = j;
        while b.get(j).is_some_and(|c| is_name_char(*c)) {
            j += 1;
        }
        let name = self.slice(name_start, j)?;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if name.is_empty() || b.get(j) != Some(&b'=') {
            return not_xml();
        }
        j += 1;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        let quote = match b.get(j) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return not_xml(),
        };
        let value_start = j + 1;
        let value_end = self.find(value_start, if quote == b'"' { "\"" } else { "'" })?;
        let raw = self.slice(value_start, value_end)?;
        if raw.contains('<') {
            return not_xml();
        }
        self.out.push_str(self.slice(space_start, value_start)?);
        let mut value = String::new();
        decode(raw, &mut value)?;
        let trimmed = value.trim();
        match kind_for_key(local_name(name)) {
            Some(_) if trimmed.is_empty() || is_token(trimmed) => self.out.push_str(raw),
            Some(kind) => {
                self.out.push_str(&token(kind));
                self.counts.add(kind);
                self.changed = true;
            }
            None => match text::mask(&value, self.rules, self.budget, self.counts)? {
                Some(masked) => {
                    escape_into(&masked, &mut self.out, true);
                    self.changed = true;
                }
                None => self.out.push_str(raw),
            },
        }
        self.out.push(char::from(quote));
        Ok(value_end + 1)
    }

    /// The kind an element's text is masked as: its parent's, its name's, or a path's.
    fn element_kind(&mut self, local: &'a str) -> Result<Option<Kind>, WalkError> {
        self.budget.spend(local.len())?;
        if let Some(kind) = self
            .stack
            .last()
            .and_then(|e| e.masked_as)
            .or_else(|| kind_for_key(local))
        {
            return Ok(Some(kind));
        }
        if self.rules.paths().is_empty() {
            return Ok(None);
        }
        self.names.push(local);
        let kind = path_kind(self.rules.paths(), &self.names, self.budget);
        self.names.pop();
        Ok(kind?)
    }
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'-' | b'.') || c >= 0x80
}

fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Appends `raw` with its entities read; an unknown or malformed entity is not XML.
fn decode(raw: &str, out: &mut String) -> Result<(), WalkError> {
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.bytes().take(12).position(|c| c == b';') else {
            return not_xml();
        };
        let name = &after[..semi];
        let c = match name {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => name
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => out.push(c),
            None => return not_xml(),
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(())
}

fn escape_into(text: &str, out: &mut String, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, rules: &Rules) -> Result<(Option<String>, Counts), WalkError> {
        let mut counts = Counts::default();
        let out = mask(body, rules, &mut Budget::for_body(body.len()), &mut counts)?;
        Ok((out, counts))
    }

    #[test]
    fn text_of_secret_elements_and_below_them_becomes_tokens() {
        let body = "<?xml version=\"1.0\"?>\n<R xmlns=\"urn:x\"><Password>p&amp;w</Password><ApiKey><Id>k</Id><V><![CDATA[v]]></V></ApiKey><Name>n</Name></R>";
        let (out, counts) = run(body, &Rules::default()).unwrap();
        assert_eq!(
            out.unwrap(),
            "<?xml version=\"1.0\"?>\n<R xmlns=\"urn:x\"><Password>[MASKED:password]</Password><ApiKey><Id>[MASKED:secret]</Id><V>[MASKED:secret]</V></ApiKey><Name>n</Name></R>"
        );
        assert_eq!(counts.total(), 3);
    }

    #[test]
    fn other_text_attributes_and_comments_are_masked_by_value_and_escaped() {
        let body = "<a note='AKIAIOSFODNN7EXAMPLE &amp; x' token=\"t\"><!-- AKIAIOSFODNN7EXAMPLE --><b>url postgres://u:p&#33;w@h/ &amp; more</b></a>";
        let (out, counts) = run(body, &Rules::default()).unwrap();
        assert_eq!(
            out.unwrap(),
            "<a note='[MASKED:aws_access_key_id] &amp; x' token=\"[MASKED:token]\"><!-- [MASKED:aws_access_key_id] --><b>url postgres://u:[MASKED:password]@h/ &amp; more</b></a>"
        );
        assert_eq!(counts.total(), 4);
    }

    #[test]
    fn configured_paths_count_the_root_element() {
        let rules = Rules::default().with_paths(["$.R.Item.Value"]).unwrap();
        let body = "<R><Item><Value>v</Value></Item><Value>w</Value></R>";
        let (out, _) = run(body, &rules).unwrap();
        assert_eq!(
            out.unwrap(),
            "<R><Item><Value>[MASKED:secret]</Value></Item><Value>w</Value></R>"
        );
    }

    #[test]
    fn clean_xml_is_reported_unchanged() {
        let (out, counts) = run("<a b=\"c\">d<e/></a>", &Rules::default()).unwrap();
        assert_eq!(out, None);
        assert_eq!(counts.total(), 0);
    }

    #[test]
    fn malformed_xml_and_dtds_are_not_this_format() {
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        for body in [
            "<a>",
            "<a></b>",
            "</a>",
            "<a>&unknown;</a>",
            "<a>& x</a>",
            "<a>&#xD800;</a>",
            "<!DOCTYPE a [<!ENTITY e \"AKIAIOSFODNN7EXAMPLE\">]><a>&e;</a>",
            "<a b=c></a>",
            "<a b=\"<\"></a>",
            "<a><![CDATA[x</a>",
            "<a><!-- x</a>",
            "< a></a>",
            deep.as_str(),
        ] {
            assert_eq!(
                run(body, &Rules::default()).err(),
                Some(WalkError::NotThisFormat),
                "{body}"
            );
        }
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(run(&ok, &Rules::default()).is_ok());
    }
}
