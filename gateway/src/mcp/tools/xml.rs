//! Reading the few fields the tools show out of AWS's XML answers (S3 listings, CloudWatch
//! datapoints, error codes). Not a parser: the answers are AWS's own, flat where read, and
//! already masked; what does not look as expected is simply not found.

/// The inner text of each `<tag>…</tag>` in `doc`, in order (elements of that name do not nest
/// in the answers read).
pub fn elements<'a>(doc: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// The text of the first `<tag>` in `doc`, its entities decoded.
pub fn first(doc: &str, tag: &str) -> Option<String> {
    elements(doc, tag).first().map(|s| unescape(s))
}

/// XML's five entities and numeric references decoded.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        // The `;` is looked for only where an entity could end: a search of the whole tail at
        // every `&` would make a run of bare `&` quadratic.
        let Some(semi) = entity_end(tail) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e => e
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The longest entity read, `&` to `;` (`&#x10FFFF;` is 10 bytes).
const MAX_ENTITY: usize = 10;

/// Where the entity starting `tail` (at its `&`) ends: its `;`, within [`MAX_ENTITY`] bytes.
fn entity_end(tail: &str) -> Option<usize> {
    let window = &tail.as_bytes()[..tail.len().min(MAX_ENTITY + 1)];
    #[cfg(test)]
    SCANNED.with(|n| n.set(n.get() + window.len()));
    window.iter().position(|b| *b == b';')
}

#[cfg(test)]
thread_local! {
    /// Bytes looked at for the ends of entities, in this thread.
    static SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ampersands_cost_a_bounded_look_each() {
        // AWS's answer is not trusted to be well-formed: a long run of `&` without `;` must not
        // make every `&` look at the rest of the text.
        let n = 100_000;
        let s = "&".repeat(n);
        SCANNED.with(|c| c.set(0));
        assert_eq!(unescape(&s), s);
        let scanned = SCANNED.with(std::cell::Cell::get);
        assert!(scanned <= n * (MAX_ENTITY + 1), "{scanned} bytes looked at");
        // An entity right at the bound is still read; one past it is text.
        assert_eq!(unescape("&#x10FFFF;"), "\u{10FFFF}");
        assert_eq!(unescape("&#x0010FFFF;"), "&#x0010FFFF;");
    }

    #[test]
    fn elements_and_entities_are_read() {
        let doc = "<R><Contents><Key>a&amp;b</Key></Contents><Contents><Key>c&#x41;&#66;</Key></Contents><Contents><Key>broken";
        let c = elements(doc, "Contents");
        assert_eq!(c.len(), 2);
        assert_eq!(first(c[0], "Key").as_deref(), Some("a&b"));
        assert_eq!(first(c[1], "Key").as_deref(), Some("cAB"));
        assert_eq!(first(doc, "Nothing"), None);
        assert_eq!(unescape("x & y &bogus; &lt;"), "x & y &bogus; <");
    }
}
