//! Env profiles (`config/*.env`): reading, checking and typing them.
//!
//! A profile is a plain `KEY=value` file that also `source`s cleanly in a shell. Every key is
//! known ([`keys::KEYS`]); unknown keys, keys whose mode is off, bad values and contradictory
//! settings are all reported at once, each with the key it concerns.

pub mod envfile;
mod fit;
pub use fit::{stand_in_parameters, StackParameters};
pub mod keys;
mod model;
mod parse;
mod reader;

use std::path::Path;

pub use model::*;
pub use parse::{host_in_zone, valid_region, PLANNED_WEBHOOK_URL, WEBHOOK_VAR};

use crate::error::{Error, Result};

/// Parses and validates profile text; `source` names it in messages, and files the profile names
/// by a relative path (`AWS_ACCESS_CONFIG`) are found in the folder of `source`.
pub fn from_text(text: &str, source: &str) -> Result<Profile> {
    let map = envfile::parse(text).map_err(|e| Error::usage(format!("{source}: {e}")))?;
    let mut reader = reader::Reader::new(&map);
    let dir = Path::new(source).parent().unwrap_or(Path::new(""));
    let profile = parse::build(&mut reader, source, dir);
    if let Some(p) = &profile {
        fit::check(p, &mut reader);
    }
    match profile {
        Some(p) if reader.issues.is_empty() => Ok(p),
        _ => {
            let mut msg = format!(
                "{source}: the profile has {} problem(s):",
                reader.issues.len()
            );
            for i in &reader.issues {
                msg.push_str("\n  ");
                msg.push_str(i);
            }
            Err(Error::usage(msg))
        }
    }
}

/// Reads and validates a profile file.
pub fn load(path: &Path) -> Result<Profile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read profile {}: {e}", path.display())))?;
    from_text(&text, &path.display().to_string())
}
