//! The shape of a request body, checked before it is parsed: how deep it nests and how many
//! values it holds. One pass over the bytes, no allocation, so a hostile body costs no more to
//! refuse than to read.

/// Deepest nesting of arrays and objects a request body may have. Real requests, tool schemas
/// included, stay far below this; serde_json's own recursion limit (128) is above it, so the
/// client gets this clear refusal instead of a parse error.
pub const MAX_DEPTH: usize = 100;

/// Most array elements and object members (counted as separators and openers) a request body may
/// hold. A long conversation with hundreds of messages and large tool definitions holds a few tens
/// of thousands.
pub const MAX_VALUES: usize = 250_000;

/// Why a body's shape is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeError {
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_VALUES`] values.
    TooManyValues,
}

/// Scans `bytes` as JSON text (strings and their escapes respected; anything else is left for the
/// parser to judge) and refuses a body nested deeper than `max_depth` or holding more than
/// `max_values` values.
pub fn check(bytes: &[u8], max_depth: usize, max_values: usize) -> Result<(), ShapeError> {
    let mut depth = 0usize;
    let mut values = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(ShapeError::TooDeep);
                }
                values += 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => values += 1,
            _ => continue,
        }
        if values > max_values {
            return Err(ShapeError::TooManyValues);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert_eq!(check(b"[[[1]]]", 3, 100), Ok(()));
        assert_eq!(check(b"[[[[1]]]]", 3, 100), Err(ShapeError::TooDeep));
        // Brackets, braces and escaped quotes inside strings are text.
        assert_eq!(check(br#"[["[[[[{{{{\"[[[["]]"#, 2, 100), Ok(()));
        assert_eq!(
            check(br#"{"a\\":[[[]]]}"#, 3, 100),
            Err(ShapeError::TooDeep)
        );
        // Closing more than was opened cannot buy depth.
        assert_eq!(check(b"]]]]][[[[", 3, 100), Err(ShapeError::TooDeep));
    }

    #[test]
    fn values_are_counted_across_the_whole_body() {
        assert_eq!(check(b"[1,2,3]", 10, 3), Ok(()));
        assert_eq!(check(b"[1,2,3,4]", 10, 3), Err(ShapeError::TooManyValues));
        assert_eq!(check(br#"{"a":1,"b":[2,3]}"#, 10, 4), Ok(()));
        assert_eq!(
            check(br#"{"a":1,"b":[2,3],"c":{}}"#, 10, 4),
            Err(ShapeError::TooManyValues)
        );
        assert_eq!(check(br#"{"a":",,,,,,,,"}"#, 10, 1), Ok(()));
    }

    #[test]
    fn real_requests_fit_with_room_to_spare() {
        // 1,000 messages of tool use and results, and 100 tools with nested schemas.
        let block = r#"{"role":"assistant","content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"t","name":"Bash","input":{"command":"ls -la","description":"list"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"a\nb"}]}]}"#;
        let messages = vec![block; 500].join(",");
        let schema = r#"{"name":"T","description":"d","input_schema":{"type":"object","properties":{"a":{"type":"array","items":{"type":"object","properties":{"b":{"type":"array","items":{"type":"object","properties":{"c":{"type":"string"}}}}}}}},"required":["a"]}}"#;
        let tools = vec![schema; 100].join(",");
        let body = format!(
            r#"{{"model":"m","max_tokens":32000,"messages":[{messages}],"tools":[{tools}]}}"#
        );
        assert_eq!(check(body.as_bytes(), MAX_DEPTH, MAX_VALUES / 10), Ok(()));
    }
}
