//! A tool's result held to `aws_access.mcp.max_result_bytes`: text past the limit is cut at a
//! character boundary and ends with a line saying so, and what to do to see the rest, so the
//! model knows it did not see everything.

use crate::mcp::tool::ToolResult;

/// The marker's first words; the rest says how much there was.
pub const MARKER: &str = "[result cut:";

/// The line that ends a cut result.
fn marker(total: usize, max: usize) -> String {
    format!(
        "\n{MARKER} {total} bytes, over the limit of {max}; narrow the call (a smaller limit, a prefix, a filter, a shorter time range) to see the rest]"
    )
}

/// `text` cut to at most `max` bytes, marker included.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mark = marker(text.len(), max);
    let mut end = max.saturating_sub(mark.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text.get(..end).unwrap_or_default().to_owned();
    out.push_str(&mark);
    if out.len() > max {
        // A limit smaller than the marker: the marker alone, cut.
        let mut end = max;
        while end > 0 && !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// `result` with its text blocks, together, held to `max` bytes.
pub fn bound(result: ToolResult, max: usize) -> ToolResult {
    let total: usize = result.text.iter().map(String::len).sum();
    if total <= max {
        return result;
    }
    let joined = result.text.join("\n");
    ToolResult {
        text: vec![cut(&joined, max)],
        is_error: result.is_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_within_the_limit_is_untouched() {
        assert_eq!(cut("abc", 3), "abc");
        let r = ToolResult::text("x".repeat(100));
        assert_eq!(bound(r.clone(), 100), r);
    }

    #[test]
    fn text_over_the_limit_is_cut_with_a_marker_within_the_limit() {
        let text = "é".repeat(2000);
        let out = cut(&text, 1000);
        assert!(out.len() <= 1000, "{}", out.len());
        assert!(out.contains(MARKER), "{out}");
        assert!(out.contains("4000 bytes, over the limit of 1000"), "{out}");
        assert!(out.starts_with("éé"));
        // A limit below the marker's size still holds.
        assert!(cut(&text, 10).len() <= 10);
        let r = bound(
            ToolResult {
                text: vec!["a".repeat(600), "b".repeat(600)],
                is_error: true,
            },
            1000,
        );
        assert_eq!(r.text.len(), 1);
        assert!(r.is_error && r.text[0].len() <= 1000 && r.text[0].contains(MARKER));
    }
}
