//! Scalars that may arrive as text: `port: ${PORT}` expands to the string "8080", and the gateway
//! must read it as the number it names.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

/// A number or boolean written natively or as a string that parses to one.
pub fn de<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + DeserializeOwned,
    T::Err: Display,
{
    let v = Value::deserialize(d)?;
    from_value(v).map_err(D::Error::custom)
}

/// Like [`de`], for an optional field (`null` reads as absent).
pub fn de_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + DeserializeOwned,
    T::Err: Display,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => from_value(v).map(Some).map_err(D::Error::custom),
    }
}

fn from_value<T>(v: Value) -> Result<T, String>
where
    T: FromStr + DeserializeOwned,
    T::Err: Display,
{
    match v {
        Value::String(s) => s
            .trim()
            .parse::<T>()
            .map_err(|e| format!("invalid value {s:?}: {e}")),
        other => serde_yaml::from_value(other).map_err(|e| e.to_string()),
    }
}
