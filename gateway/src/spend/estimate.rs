//! What the worst case of a request is priced from: the body read once, in one pass without
//! building a tree, for what can make its input cost more tokens than its bytes (images, PDFs,
//! content by URL or file id, server tools) and for the prompt-cache writes it asks for.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::api::body::RawObject;

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
            max_tokens: body.max_tokens(),
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
    Source,
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
            "source" => Key::Source,
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
    /// `type: "image"`: an image block.
    image: bool,
    /// `type: "base64"`, `media_type: "image/…"`: an image's source.
    base64: bool,
    image_media: bool,
    /// Length of its `data`.
    data_len: u64,
    /// What its `source` reported: the length of base64 image data.
    source_image_bytes: u64,
}

/// A value under a known key, kept for the object it belongs to.
enum Seen {
    Nothing,
    /// `type: "image"`.
    Image,
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

/// A walked value answers with the length of its base64 image data when it is an image's
/// source, else 0.
impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
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
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_i64<E>(self, _: i64) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_u64<E>(self, _: u64) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_f64<E>(self, _: f64) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_unit<E>(self) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_str<E>(mut self, s: &str) -> Result<u64, E> {
        self.string(s);
        Ok(0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        while seq
            .next_element_seed(Node {
                scan: &mut *self.scan,
                key: Key::Other,
            })?
            .is_some()
        {}
        Ok(0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut obj = Object::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Other | Key::CacheControl | Key::Source => {
                    if key == Key::CacheControl {
                        self.scan.note_cache(CacheWrite::FiveMinutes);
                    }
                    let inner = map.next_value_seed(Node {
                        scan: &mut *self.scan,
                        key,
                    })?;
                    if key == Key::Source {
                        obj.source_image_bytes = inner;
                    }
                }
                _ => match map.next_value_seed(Leaf {
                    scan: &mut *self.scan,
                    key,
                })? {
                    Seen::Image => obj.image = true,
                    Seen::Base64 => obj.base64 = true,
                    Seen::ImageMedia => obj.image_media = true,
                    Seen::Len(n) => obj.data_len = n,
                    Seen::Nothing => {}
                },
            }
        }
        if obj.image {
            // An image block's base64 bytes are priced as an image, not as text. Base64 data
            // anywhere else (a tool's input, say) stays text.
            self.scan.image_data_bytes = self
                .scan
                .image_data_bytes
                .saturating_add(obj.source_image_bytes);
        }
        Ok(if obj.base64 && obj.image_media {
            obj.data_len
        } else {
            0
        })
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
            Key::Type if s == "image" => Seen::Image,
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
