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
        let Some(semi) = tail.find(';').filter(|n| *n <= 10) else {
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

#[cfg(test)]
mod tests {
    use super::*;

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
