//! The binary event-stream encoding (`application/vnd.amazon.eventstream`), written here by hand
//! so that the SDK's own decoder is checked against an independent encoder.
//!
//! A message is a prelude (total length, headers length, both u32 big-endian, then a CRC32 of
//! those 8 bytes), the headers, the payload, and a CRC32 of everything before it. A header is a
//! name length (u8), the name, a value type (u8) and the value; every header written here is a
//! string (type 7) with a u16 big-endian length.

use axum::body::Bytes;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;

/// Value type of a string header.
pub const HEADER_STRING: u8 = 7;

/// Padding Bedrock adds to each chunk's payload (`"p"`), so that chunk sizes do not reveal the
/// length of the text. Its length here varies with the event's position, as it does upstream.
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Encodes one message. Header names longer than 255 bytes and values longer than 65535 bytes
/// are cut to fit: every header this crate writes is far shorter.
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let headers_len: usize = headers
        .iter()
        .map(|(n, v)| 1 + n.len().min(255) + 1 + 2 + v.len().min(65535))
        .sum();
    let total = 12 + headers_len + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(255)];
        let value = &value.as_bytes()[..value.len().min(65535)];
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.push(HEADER_STRING);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// The payload of a `chunk` event: the Anthropic event's JSON, base64-encoded, plus padding.
pub fn chunk_payload(event_json: &[u8], position: usize) -> Vec<u8> {
    let pad = &PADDING[..1 + (position * 7) % (PADDING.len() - 1)];
    let mut p = Vec::with_capacity(event_json.len() * 4 / 3 + pad.len() + 24);
    p.extend_from_slice(b"{\"bytes\":\"");
    p.extend_from_slice(B64.encode(event_json).as_bytes());
    p.extend_from_slice(b"\",\"p\":\"");
    p.extend_from_slice(pad.as_bytes());
    p.extend_from_slice(b"\"}");
    p
}

/// An event's JSON as the model writes it: on one line, each object's `type` member first (the
/// other members follow in key order), so a relay may read an event's type from its first bytes.
pub fn wire_json(v: &Value) -> String {
    let mut out = String::new();
    write_wire(v, &mut out);
    out
}

fn write_wire(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            out.push('{');
            let typed = map.get_key_value("type");
            for (i, (k, x)) in typed
                .into_iter()
                .chain(map.iter().filter(|(k, _)| *k != "type"))
                .enumerate()
            {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_wire(x, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_wire(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// One Anthropic stream event as Bedrock sends it: a `chunk` event message.
pub fn chunk_frame(event: &Value, position: usize) -> Bytes {
    let payload = chunk_payload(wire_json(event).as_bytes(), position);
    Bytes::from(frame(
        &[
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        &payload,
    ))
}

/// An exception inside the stream (`modelStreamErrorException`, `throttlingException`, ...).
pub fn exception_frame(exception_type: &str, message: &str) -> Bytes {
    let payload = serde_json::json!({ "message": message }).to_string();
    Bytes::from(frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A decoded message: string headers and payload.
    #[derive(Debug, PartialEq)]
    struct Decoded {
        headers: Vec<(String, String)>,
        payload: Vec<u8>,
    }

    /// A deliberately small decoder, written from the format description alone, that checks
    /// every length and both CRCs.
    fn decode(buf: &[u8]) -> Result<(Decoded, usize), String> {
        let be32 = |at: usize| -> Result<u32, String> {
            buf.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("short read at {at}"))
        };
        let total = be32(0)? as usize;
        let headers_len = be32(4)? as usize;
        if be32(8)? != crc32fast::hash(&buf[..8]) {
            return Err("prelude crc".into());
        }
        if buf.len() < total || total < 16 + headers_len {
            return Err("lengths".into());
        }
        if be32(total - 4)? != crc32fast::hash(&buf[..total - 4]) {
            return Err("message crc".into());
        }
        let mut headers = Vec::new();
        let mut at = 12;
        while at < 12 + headers_len {
            let n = buf[at] as usize;
            let name =
                String::from_utf8(buf[at + 1..at + 1 + n].to_vec()).map_err(|e| e.to_string())?;
            at += 1 + n;
            if buf[at] != HEADER_STRING {
                return Err(format!("header type {}", buf[at]));
            }
            let len = u16::from_be_bytes([buf[at + 1], buf[at + 2]]) as usize;
            let value =
                String::from_utf8(buf[at + 3..at + 3 + len].to_vec()).map_err(|e| e.to_string())?;
            at += 3 + len;
            headers.push((name, value));
        }
        if at != 12 + headers_len {
            return Err("headers overrun".into());
        }
        Ok((
            Decoded {
                headers,
                payload: buf[at..total - 4].to_vec(),
            },
            total,
        ))
    }

    #[test]
    fn crc32_is_the_ieee_polynomial() {
        // The standard CRC-32 check value.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn encodes_the_published_vector_without_headers() {
        // aws-c-event-stream's test vector: no headers, payload {'foo':'bar'}.
        let expected: &[u8] = &[
            0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27,
            0x66, 0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39,
            0x36,
        ];
        assert_eq!(frame(&[], b"{'foo':'bar'}"), expected);
    }

    #[test]
    fn encodes_the_published_vector_with_one_string_header() {
        // aws-c-event-stream's test vector: content-type: application/json, payload {'foo':'bar'}.
        let mut expected: Vec<u8> = vec![
            0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C,
        ];
        expected.extend_from_slice(b"content-type");
        expected.extend_from_slice(&[0x07, 0x00, 0x10]);
        expected.extend_from_slice(b"application/json");
        expected.extend_from_slice(b"{'foo':'bar'}");
        expected.extend_from_slice(&[0x8D, 0x9C, 0x08, 0xB1]);
        assert_eq!(
            frame(&[("content-type", "application/json")], b"{'foo':'bar'}"),
            expected
        );
    }

    #[test]
    fn empty_message_is_sixteen_bytes() {
        let f = frame(&[], b"");
        assert_eq!(f.len(), 16);
        let (d, used) = decode(&f).unwrap();
        assert_eq!(used, 16);
        assert!(d.headers.is_empty() && d.payload.is_empty());
    }

    #[test]
    fn chunk_frames_decode_to_the_event() {
        let event = serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo \"world\"\n"}});
        let mut stream = Vec::new();
        stream.extend_from_slice(&chunk_frame(&event, 0));
        stream.extend_from_slice(&chunk_frame(&event, 5));
        let (first, used) = decode(&stream).unwrap();
        let (second, used2) = decode(&stream[used..]).unwrap();
        assert_eq!(used + used2, stream.len());
        for d in [&first, &second] {
            assert_eq!(
                d.headers,
                vec![
                    (":event-type".to_string(), "chunk".to_string()),
                    (":content-type".to_string(), "application/json".to_string()),
                    (":message-type".to_string(), "event".to_string()),
                ]
            );
            let payload: Value = serde_json::from_slice(&d.payload).unwrap();
            let bytes = B64.decode(payload["bytes"].as_str().unwrap()).unwrap();
            let decoded: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(decoded, event);
            assert!(!payload["p"].as_str().unwrap().is_empty());
        }
        assert_ne!(first.payload.len(), second.payload.len(), "padding varies");
        let bytes = B64
            .decode(
                serde_json::from_slice::<Value>(&first.payload).unwrap()["bytes"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert!(
            bytes.starts_with(br#"{"type":"content_block_delta","#),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn wire_json_puts_type_first_at_every_level_and_round_trips() {
        let event = serde_json::json!({"type": "message_delta", "delta": {"type": "x", "a": [{"z": 1, "type": "t"}]}, "usage": {"output_tokens": 3}});
        let wire = wire_json(&event);
        assert_eq!(
            wire,
            r#"{"type":"message_delta","delta":{"type":"x","a":[{"type":"t","z":1}]},"usage":{"output_tokens":3}}"#
        );
        assert_eq!(serde_json::from_str::<Value>(&wire).unwrap(), event);
    }

    #[test]
    fn exception_frames_carry_the_type_and_message() {
        let f = exception_frame("modelStreamErrorException", "boom");
        let (d, _) = decode(&f).unwrap();
        assert_eq!(
            d.headers[0],
            (
                ":exception-type".to_string(),
                "modelStreamErrorException".to_string()
            )
        );
        assert_eq!(
            d.headers[2],
            (":message-type".to_string(), "exception".to_string())
        );
        let payload: Value = serde_json::from_slice(&d.payload).unwrap();
        assert_eq!(payload, serde_json::json!({"message": "boom"}));
    }

    #[test]
    fn a_corrupted_byte_breaks_the_message_crc() {
        let mut f = frame(&[(":event-type", "chunk")], b"{}");
        let last_payload_byte = f.len() - 5;
        f[last_payload_byte] ^= 1;
        assert_eq!(decode(&f).unwrap_err(), "message crc");
    }
}
