//! The size of gateway.yaml once its aliases are expanded, counted before the document is built:
//! a few kilobytes of nested or repeated aliases ("billion laughs") would otherwise expand to
//! gigabytes.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// The largest gateway.yaml accepted, in bytes.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// The most values (scalars, lists and mappings) gateway.yaml may hold once its aliases are
/// expanded.
pub const MAX_CONFIG_VALUES: usize = 100_000;

/// The most flow collections (`[` and `{`, counted anywhere in the text, quoted or not) a
/// gateway.yaml may open. The YAML reader takes time quadratic in how deeply flow collections
/// nest; no real config comes near this, and at this many the worst nesting reads in well under a
/// second.
pub const MAX_FLOW_OPENERS: usize = 10_000;

/// Why a config is too large to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TooLarge {
    /// More than [`MAX_CONFIG_BYTES`] of text.
    Bytes(usize),
    /// More than [`MAX_FLOW_OPENERS`] `[` and `{`.
    Brackets(usize),
    /// More than [`MAX_CONFIG_VALUES`] values once aliases are expanded.
    Values,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TooLarge::Bytes(n) => write!(
                f,
                "the config is {n} bytes; at most {MAX_CONFIG_BYTES} are read"
            ),
            TooLarge::Brackets(n) => write!(
                f,
                "the config opens {n} flow collections ([ and {{); at most {MAX_FLOW_OPENERS} are read"
            ),
            TooLarge::Values => write!(
                f,
                "the config holds more than {MAX_CONFIG_VALUES} values once its YAML aliases are expanded"
            ),
        }
    }
}

/// Refuses text past the size limits. Text that is not valid YAML passes: the parse that follows
/// reports it with its location.
pub fn check(text: &str) -> Result<(), TooLarge> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(TooLarge::Bytes(text.len()));
    }
    // Counted everywhere, even inside quotes: a scanner that tried to skip quoted text could be
    // misled about where a quote starts, and so about the nesting the reader will see.
    let openers = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if openers > MAX_FLOW_OPENERS {
        return Err(TooLarge::Brackets(openers));
    }
    let left = Cell::new(MAX_CONFIG_VALUES);
    let over = Cell::new(false);
    let counted = Count {
        left: &left,
        over: &over,
    }
    .deserialize(serde_yaml::Deserializer::from_str(text));
    match counted {
        Err(_) if over.get() => Err(TooLarge::Values),
        _ => Ok(()),
    }
}

/// Walks a document as its aliases expand, one unit of budget per value, without keeping any.
#[derive(Clone, Copy)]
struct Count<'a> {
    left: &'a Cell<usize>,
    over: &'a Cell<bool>,
}

impl Count<'_> {
    fn take<E: de::Error>(self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => {
                self.over.set(true);
                Err(E::custom("too many values"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.take()?;
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.take()?;
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.take()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag value`): the tag, then the value.
        self.take()?;
        let (IgnoredAny, value) = data.variant::<IgnoredAny>()?;
        value.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `width` scalars under an anchor, then `aliases` references to it.
    fn wide(width: usize, aliases: usize) -> String {
        format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["0"; width].join(","),
            vec!["*a"; aliases].join(",")
        )
    }

    #[test]
    fn aliases_count_as_what_they_expand_to() {
        // 400 x 400: 160,000 values from 4 KB of text.
        assert_eq!(check(&wide(400, 400)), Err(TooLarge::Values));
        // The same text without the repetition is small.
        assert_eq!(check(&wide(400, 10)), Ok(()));
    }

    #[test]
    fn text_past_the_limit_is_refused_unread() {
        let big = format!("# {}\n", "x".repeat(MAX_CONFIG_BYTES));
        assert_eq!(check(&big), Err(TooLarge::Bytes(big.len())));
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_the_reader_sees_it() {
        let deep = format!("a: {}{}\n", "[".repeat(40_000), "]".repeat(40_000));
        assert_eq!(check(&deep), Err(TooLarge::Brackets(40_000)));
        // Quotes do not hide brackets.
        let quoted = format!("a: '{}'\n", "{".repeat(MAX_FLOW_OPENERS + 1));
        assert_eq!(
            check(&quoted),
            Err(TooLarge::Brackets(MAX_FLOW_OPENERS + 1))
        );
        let fine = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert_eq!(check(&fine), Ok(()));
    }

    #[test]
    fn invalid_yaml_is_left_to_the_parser() {
        assert_eq!(check("a: [1, 2"), Ok(()));
        assert_eq!(check("a: *nope"), Ok(()));
        assert_eq!(check("a: !tag {b: 1}\nc: !!str 2"), Ok(()));
    }
}
