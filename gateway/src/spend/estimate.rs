//! What the worst case of a request is priced from: the body read once, in one pass without
//! building a tree, for what can make its input cost more tokens than its bytes (images, PDFs,
//! content by URL or file id, server tools) and for the prompt-cache writes it asks for.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::inference::body::RawObject;

/// The fields of a Messages request that carry input or ask for cache writes.
const INPUT_FIELDS: &[&str] = &[
    "system",
    "messages",
    "tools",
    "tool_choice",
    "cache_control",
];

/// Fields whose presence brings in input the body does not hold (remote MCP tools, a code
/// execution container and its files).
const OPAQUE_FIELDS: &[&str] = &["mcp_servers", "container"];

/// Block and source `type`s whose tokens the body's bytes do not bound: a PDF's pages (text
/// compressed, each page also read as an image), content by URL or by file id, uploads to a
/// container, and results fetched by server tools.
const OPAQUE_TYPES: &[&str] = &["url", "file", "container_upload"];
const SERVER_TOOL_PREFIXES: &[&str] = &["web_search", "web_fetch", "code_execution"];

/// The prompt-cache lifetime a request asks for at most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheWrite {
    /// No `cache_control`.
    #[default]
    None,
    /// `cache_control` with the default 5-minute lifetime.
    FiveMinutes,
    /// `cache_control` with `ttl: "1h"`.
    OneHour,
}

/// What [`crate::spend::prices::PriceBook::worst_case_micros`] needs to know about a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Bytes of the body other than base64 image data (a token is never less than a byte of
    /// text, so these bound the text's tokens).
    pub text_bytes: u64,
    /// Image blocks (each costs a bounded number of tokens whatever its bytes).
    pub images: u64,
    /// Whether the request declares tools (the API then adds a tool-use system prompt).
    pub tools: bool,
    /// Anthropic-defined tools (`bash_20250124`, `computer_…`): a short declaration that the API
    /// expands into a long definition.
    pub typed_tools: u64,
    /// The body holds input whose tokens its bytes do not bound (see `OPAQUE_TYPES`), or could
    /// not be read: its input is bounded by a context window only.
    pub opaque: bool,
    /// `max_tokens`, when the body has a usable one.
    pub max_tokens: Option<u64>,
    /// The longest cache lifetime asked for.
    pub cache_write: CacheWrite,
}

impl Estimate {
    /// Reads a request body (`body_len` bytes as received).
    pub fn of(body: &RawObject, body_len: usize) -> Self {
        let mut scan = Scan::default();
        let mut readable = true;
        for field in INPUT_FIELDS {
            if let Some(raw) = body.get(field) {
                if *field == "cache_control" {
                    scan.note_cache(CacheWrite::FiveMinutes);
                }
                let mut de = serde_json::Deserializer::from_str(raw);
                readable &= Node {
                    scan: &mut scan,
                    key: Key::Other,
                }
                .deserialize(&mut de)
                .is_ok();
            }
        }
        let opaque =
            !readable || scan.opaque || OPAQUE_FIELDS.iter().any(|f| body.get(f).is_some());
        Estimate {
            text_bytes: (body_len as u64).saturating_sub(scan.image_data_bytes),
            images: scan.images,
            tools: body.get("tools").is_some_and(|t| t.trim() != "[]"),
            typed_tools: scan.typed_tools,
            opaque,
            max_tokens: body.get_as::<u64>("max_tokens"),
            cache_write: scan.cache_write,
        }
    }
}

#[derive(Default)]
struct Scan {
    images: u64,
    typed_tools: u64,
    image_data_bytes: u64,
    opaque: bool,
    cache_write: CacheWrite,
}

impl Scan {
    fn note_cache(&mut self, c: CacheWrite) {
        self.cache_write = self.cache_write.max(c);
    }
}

/// The key a value sits under, where it matters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Type,
    MediaType,
    Data,
    Ttl,
    CacheControl,
    Other,
}

/// Reads an object key without keeping it.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, k: &str) -> Result<Key, E> {
        Ok(match k {
            "type" => Key::Type,
            "media_type" => Key::MediaType,
            "data" => Key::Data,
            "ttl" => Key::Ttl,
            "cache_control" => Key::CacheControl,
            _ => Key::Other,
        })
    }
}

/// One JSON value, walked.
struct Node<'a> {
    scan: &'a mut Scan,
    key: Key,
}

/// What one object says about itself, judged when it closes.
#[derive(Default)]
struct Object {
    base64: bool,
    image_media: bool,
    data_len: u64,
}

/// A value under a known key, kept for the object it belongs to.
enum Seen {
    Nothing,
    /// `type: "base64"`.
    Base64,
    /// `media_type: "image/…"`.
    ImageMedia,
    /// The length of a `data` string.
    Len(u64),
}

struct Leaf<'a> {
    scan: &'a mut Scan,
    key: Key,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> DeserializeSeed<'de> for Leaf<'_> {
    type Value = Seen;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_any(self)
    }
}

impl Node<'_> {
    fn string(&mut self, s: &str) {
        match self.key {
            Key::Type => {
                if s == "image" {
                    self.scan.images = self.scan.images.saturating_add(1);
                }
                if is_versioned(s) {
                    self.scan.typed_tools = self.scan.typed_tools.saturating_add(1);
                }
                if OPAQUE_TYPES.contains(&s)
                    || SERVER_TOOL_PREFIXES.iter().any(|p| s.starts_with(p))
                {
                    self.scan.opaque = true;
                }
            }
            Key::MediaType if s == "application/pdf" => self.scan.opaque = true,
            Key::Ttl if s == "1h" => self.scan.note_cache(CacheWrite::OneHour),
            _ => {}
        }
    }
}

/// A versioned type name (`bash_20250124`): an Anthropic-defined tool.
fn is_versioned(s: &str) -> bool {
    s.rsplit_once('_').is_some_and(|(name, date)| {
        !name.is_empty() && date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit())
    })
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(mut self, s: &str) -> Result<(), E> {
        self.string(s);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Node {
                scan: &mut *self.scan,
                key: Key::Other,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut obj = Object::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Other | Key::CacheControl => {
                    if key == Key::CacheControl {
                        self.scan.note_cache(CacheWrite::FiveMinutes);
                    }
                    map.next_value_seed(Node {
                        scan: &mut *self.scan,
                        key,
                    })?;
                }
                _ => match map.next_value_seed(Leaf {
                    scan: &mut *self.scan,
                    key,
                })? {
                    Seen::Base64 => obj.base64 = true,
                    Seen::ImageMedia => obj.image_media = true,
                    Seen::Len(n) => obj.data_len = n,
                    Seen::Nothing => {}
                },
            }
        }
        if obj.base64 && obj.image_media {
            // The image's bytes are priced as an image, not as text.
            self.scan.image_data_bytes = self.scan.image_data_bytes.saturating_add(obj.data_len);
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Leaf<'_> {
    type Value = Seen;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Seen, E> {
        Ok(Seen::Nothing)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Seen, E> {
        Ok(Seen::Nothing)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Seen, E> {
        Ok(Seen::Nothing)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Seen, E> {
        Ok(Seen::Nothing)
    }
    fn visit_unit<E>(self) -> Result<Seen, E> {
        Ok(Seen::Nothing)
    }
    fn visit_str<E>(self, s: &str) -> Result<Seen, E> {
        let mut node = Node {
            scan: self.scan,
            key: self.key,
        };
        node.string(s);
        Ok(match self.key {
            Key::Data => Seen::Len(s.len() as u64),
            Key::Type if s == "base64" => Seen::Base64,
            Key::MediaType if s.starts_with("image/") => Seen::ImageMedia,
            _ => Seen::Nothing,
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Seen, A::Error> {
        Node {
            scan: self.scan,
            key: Key::Other,
        }
        .visit_seq(seq)?;
        Ok(Seen::Nothing)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Seen, A::Error> {
        Node {
            scan: self.scan,
            key: Key::Other,
        }
        .visit_map(map)?;
        Ok(Seen::Nothing)
    }
}
