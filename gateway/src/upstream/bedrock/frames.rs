//! Bedrock's binary event stream (`application/vnd.amazon.eventstream`), decoded as bytes arrive.
//!
//! A message is a prelude (total length and headers length, u32 big-endian, then a CRC32 of those
//! eight bytes), the headers, the payload, and a CRC32 of everything before it. A header is a name
//! length (u8), the name, a value type (u8) and a value whose size the type gives. Only string
//! headers are kept; the others are skipped by their size. Both checksums are verified, and a
//! message may not be larger than the format allows, so a hostile answer costs bounded memory.

use bytes::{Buf, Bytes, BytesMut};

/// The largest message the format allows (16 MiB of payload, and its framing).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024 + 128 * 1024;
/// The largest headers section the format allows.
const MAX_HEADERS: usize = 128 * 1024;
/// Prelude (12 bytes) and message checksum (4 bytes).
const OVERHEAD: usize = 16;

/// One decoded message: its string headers that matter here, and its payload.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Message {
    /// `:message-type`: `event`, `exception` or `error`.
    pub message_type: String,
    /// `:event-type` of an event (`chunk`).
    pub event_type: String,
    /// `:exception-type` of an exception (`throttlingException`, ...).
    pub exception_type: String,
    /// `:error-code` of an error message.
    pub error_code: String,
    /// `:error-message` of an error message.
    pub error_message: String,
    /// The payload.
    pub payload: Bytes,
}

/// Why the stream cannot be decoded further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length out of the format's bounds.
    #[error("event stream message of {0} bytes is out of bounds")]
    Length(usize),
    /// A checksum does not match.
    #[error("event stream {0} checksum mismatch")]
    Checksum(&'static str),
    /// The headers do not parse.
    #[error("event stream headers malformed")]
    Headers,
}

/// Decodes messages from bytes fed as they arrive.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    /// Adds bytes read from the answer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received that are not yet a whole message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, `Ok(None)` until one has arrived.
    pub fn next(&mut self) -> Result<Option<Message>, FrameError> {
        if self.buf.len() < 12 {
            return Ok(None);
        }
        let total = be32(&self.buf[0..4]) as usize;
        let headers_len = be32(&self.buf[4..8]) as usize;
        if !(OVERHEAD..=MAX_MESSAGE).contains(&total)
            || headers_len > MAX_HEADERS
            || headers_len > total - OVERHEAD
        {
            return Err(FrameError::Length(total));
        }
        if be32(&self.buf[8..12]) != crc32fast::hash(&self.buf[0..8]) {
            return Err(FrameError::Checksum("prelude"));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame = self.buf.split_to(total).freeze();
        if be32(&frame[total - 4..]) != crc32fast::hash(&frame[..total - 4]) {
            return Err(FrameError::Checksum("message"));
        }
        let mut msg = Message {
            payload: frame.slice(12 + headers_len..total - 4),
            ..Message::default()
        };
        read_headers(&frame[12..12 + headers_len], &mut msg)?;
        Ok(Some(msg))
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads the headers, keeping the string ones this gateway looks at.
fn read_headers(mut h: &[u8], msg: &mut Message) -> Result<(), FrameError> {
    while h.has_remaining() {
        let name_len = usize::from(h.get_u8());
        if h.remaining() < name_len + 1 {
            return Err(FrameError::Headers);
        }
        let (name, rest) = h.split_at(name_len);
        h = rest;
        let size = match h.get_u8() {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                if h.remaining() < 2 {
                    return Err(FrameError::Headers);
                }
                usize::from(h.get_u16())
            }
            _ => return Err(FrameError::Headers),
        };
        if h.remaining() < size {
            return Err(FrameError::Headers);
        }
        let slot = match name {
            b":message-type" => Some(&mut msg.message_type),
            b":event-type" => Some(&mut msg.event_type),
            b":exception-type" => Some(&mut msg.exception_type),
            b":error-code" => Some(&mut msg.error_code),
            b":error-message" => Some(&mut msg.error_message),
            _ => None,
        };
        if let Some(slot) = slot {
            *slot = String::from_utf8_lossy(&h[..size]).into_owned();
        }
        h.advance(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(bytes: &[u8], piece: usize) -> Result<Vec<Message>, FrameError> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for part in bytes.chunks(piece.max(1)) {
            d.push(part);
            while let Some(m) = d.next()? {
                out.push(m);
            }
        }
        assert_eq!(d.pending(), 0, "bytes left over");
        Ok(out)
    }

    #[test]
    fn the_doubles_chunks_and_exceptions_decode_in_any_pieces() {
        let event = serde_json::json!({"type": "message_stop"});
        let mut bytes = testkit::eventstream::chunk_frame(&event, 3).to_vec();
        bytes.extend_from_slice(&testkit::eventstream::exception_frame(
            "throttlingException",
            "slow down",
        ));
        for piece in [1, 7, 64, bytes.len()] {
            let msgs = decode_all(&bytes, piece).unwrap_or_default();
            assert_eq!(msgs.len(), 2, "piece {piece}");
            assert_eq!(msgs[0].message_type, "event");
            assert_eq!(msgs[0].event_type, "chunk");
            assert!(msgs[0].payload.starts_with(b"{\"bytes\":\""));
            assert_eq!(msgs[1].message_type, "exception");
            assert_eq!(msgs[1].exception_type, "throttlingException");
            assert_eq!(&msgs[1].payload[..], br#"{"message":"slow down"}"#);
        }
    }

    #[test]
    fn headers_of_every_type_are_skipped_by_their_size() {
        // A frame by hand: a bool, a long, a uuid and bytes before the string that matters.
        let mut headers = Vec::new();
        for (name, kind, value) in [
            ("a", 0u8, vec![]),
            ("b", 5, vec![0; 8]),
            ("c", 9, vec![0; 16]),
            ("d", 6, vec![0, 2, 1, 2]),
            (":event-type", 7, [&[0u8, 5][..], b"chunk"].concat()),
        ] {
            headers.push(name.len() as u8);
            headers.extend_from_slice(name.as_bytes());
            headers.push(kind);
            headers.extend_from_slice(&value);
        }
        let total = 16 + headers.len() + 2;
        let mut f = Vec::new();
        f.extend_from_slice(&(total as u32).to_be_bytes());
        f.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&f);
        f.extend_from_slice(&crc.to_be_bytes());
        f.extend_from_slice(&headers);
        f.extend_from_slice(b"{}");
        let crc = crc32fast::hash(&f);
        f.extend_from_slice(&crc.to_be_bytes());
        let msgs = decode_all(&f, 5).unwrap_or_default();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].event_type, "chunk");
        assert_eq!(&msgs[0].payload[..], b"{}");
    }

    #[test]
    fn forgeries_are_refused() {
        let good = testkit::eventstream::chunk_frame(&serde_json::json!({"type": "ping"}), 0);
        // A flipped payload byte: the message checksum.
        let mut bad = good.to_vec();
        let at = bad.len() - 6;
        bad[at] ^= 1;
        assert_eq!(
            decode_all(&bad, 1000).err(),
            Some(FrameError::Checksum("message"))
        );
        // A flipped length: the prelude checksum.
        let mut bad = good.to_vec();
        bad[3] ^= 1;
        assert_eq!(
            decode_all(&bad, 1000).err(),
            Some(FrameError::Checksum("prelude"))
        );
        // A length past the bound is refused from the prelude, before any wait for the body.
        let mut d = Decoder::default();
        let mut f = (u32::MAX).to_be_bytes().to_vec();
        f.extend_from_slice(&0u32.to_be_bytes());
        d.push(&f);
        d.push(&crc32fast::hash(&f).to_be_bytes());
        assert_eq!(d.next(), Err(FrameError::Length(u32::MAX as usize)));
        // Headers longer than the message.
        let mut d = Decoder::default();
        let mut f = 20u32.to_be_bytes().to_vec();
        f.extend_from_slice(&10u32.to_be_bytes());
        d.push(&f);
        d.push(&crc32fast::hash(&f).to_be_bytes());
        assert_eq!(d.next(), Err(FrameError::Length(20)));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut d = Decoder::default();
            d.push(&bytes);
            while let Ok(Some(_)) = d.next() {}
        }

        #[test]
        fn any_event_survives_any_split(text in ".{0,200}", piece in 1usize..50) {
            let event = serde_json::json!({"type": "content_block_delta", "delta": {"text": text}});
            let bytes = testkit::eventstream::chunk_frame(&event, 1);
            let msgs = decode_all(&bytes, piece).unwrap_or_default();
            prop_assert_eq!(msgs.len(), 1);
            prop_assert_eq!(msgs[0].event_type.as_str(), "chunk");
        }
    }
}
