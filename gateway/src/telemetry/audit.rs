//! The audit stream: one JSON object per line on stdout, `{"ts","evt",...}`, for security and
//! finance to query. Callers pass identifiers, never tokens, secrets or prompt text.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where audit lines go.
#[derive(Clone)]
pub struct Audit {
    sink: Arc<Sink>,
}

enum Sink {
    Stdout,
    Memory(Mutex<Vec<String>>),
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match *self.sink {
            Sink::Stdout => "Audit(stdout)",
            Sink::Memory(_) => "Audit(memory)",
        })
    }
}

impl Audit {
    /// Audit lines to the process's stdout.
    pub fn stdout() -> Self {
        Self {
            sink: Arc::new(Sink::Stdout),
        }
    }

    /// Audit lines kept in memory, for tests.
    pub fn memory() -> Self {
        Self {
            sink: Arc::new(Sink::Memory(Mutex::new(Vec::new()))),
        }
    }

    /// The lines written so far (memory sink only).
    pub fn lines(&self) -> Vec<String> {
        match &*self.sink {
            Sink::Memory(m) => m.lock().map(|v| v.clone()).unwrap_or_default(),
            Sink::Stdout => Vec::new(),
        }
    }

    /// Writes one event. `fields` should be a JSON object; its keys follow `ts` and `evt`.
    pub fn emit(&self, evt: &str, at: OffsetDateTime, fields: Value) {
        let line = render(evt, at, fields);
        match &*self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                // A closed stdout must not take the gateway down; there is nowhere left to report it.
                let _ = out.write_all(line.as_bytes());
                let _ = out.write_all(b"\n");
                let _ = out.flush();
            }
            Sink::Memory(m) => {
                if let Ok(mut v) = m.lock() {
                    v.push(line);
                }
            }
        }
    }
}

/// `text` cut at a character boundary to at most `max` bytes: for a value a client chose (a
/// path, a tool name) in an audit line, which must stay a line of bounded size.
pub fn clip(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `{"ts":...,"evt":...,<fields>}`: `ts` and `evt` first, so the lines read well in a terminal.
fn render(evt: &str, at: OffsetDateTime, fields: Value) -> String {
    let mut line = String::with_capacity(128);
    line.push_str("{\"ts\":");
    line.push_str(&Value::from(at.format(&Rfc3339).unwrap_or_default()).to_string());
    line.push_str(",\"evt\":");
    line.push_str(&Value::from(evt).to_string());
    if let Value::Object(mut extra) = fields {
        extra.remove("ts");
        extra.remove("evt");
        if !extra.is_empty() {
            let rest = Value::Object(extra).to_string();
            line.push(',');
            line.push_str(&rest[1..rest.len() - 1]);
        }
    }
    line.push('}');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_at_a_character_boundary() {
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip("abcdef", 3), "abc");
        // "é" is two bytes: a cut inside it keeps the whole character out.
        assert_eq!(clip("aé", 2), "a");
        assert_eq!(clip("", 0), "");
    }

    #[test]
    fn one_object_per_line_with_ts_and_evt_first() {
        let a = Audit::memory();
        let at = OffsetDateTime::from_unix_timestamp(0).unwrap();
        a.emit(
            "config.load",
            at,
            serde_json::json!({"sha256": "ab", "evt": "spoof"}),
        );
        let lines = a.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0],
            r#"{"ts":"1970-01-01T00:00:00Z","evt":"config.load","sha256":"ab"}"#
        );
    }
}
