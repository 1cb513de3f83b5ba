//! Server-sent events in the Anthropic API's shape: `event: <type>\ndata: <json>\n\n`.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

/// One event frame.
pub fn frame(event_type: &str, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(event_type.len() + data.len() + 16);
    b.put_slice(b"event: ");
    b.put_slice(event_type.as_bytes());
    b.put_slice(b"\ndata: ");
    b.put_slice(data);
    b.put_slice(b"\n\n");
    b.freeze()
}

/// The keep-alive sent during long upstream silences.
pub fn ping() -> Bytes {
    frame("ping", br#"{"type": "ping"}"#)
}

/// An in-band error: after the first byte, failures are events and the stream then ends.
pub fn error(kind: &str, message: &str) -> Bytes {
    let data = serde_json::json!({"type": "error", "error": {"type": kind, "message": message}});
    frame("error", data.to_string().as_bytes())
}

/// The `type` of an event's JSON without parsing the whole of it, when it comes first (as it does
/// from every Claude upstream); `None` when it does not.
pub fn leading_type(json: &[u8]) -> Option<&str> {
    let rest = json.strip_prefix(br#"{"type":""#)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// The `type` of an event, parsing when it is not leading.
pub fn event_type(json: &[u8], parsed: Option<&Value>) -> Option<String> {
    leading_type(json).map(str::to_owned).or_else(|| {
        parsed
            .and_then(|v| v.get("type"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_api() {
        assert_eq!(
            &frame("message_stop", br#"{"type":"message_stop"}"#)[..],
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        assert_eq!(
            leading_type(br#"{"type":"content_block_delta","index":0}"#),
            Some("content_block_delta")
        );
        assert_eq!(leading_type(br#"{"index":0,"type":"x"}"#), None);
        let e = error("overloaded_error", "Overloaded");
        assert!(e.starts_with(b"event: error\ndata: {"));
    }
}
