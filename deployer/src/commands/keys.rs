//! `deployer keys`: the profile keys, their defaults and meaning.

use crate::profile::keys::{Applies, KEYS};

/// Prints the table.
pub fn run() {
    for k in KEYS {
        let when = match k.applies {
            Applies::Always => String::new(),
            Applies::When(key, values) => format!(" [when {key}={}]", values.join("|")),
        };
        let default = if k.default.is_empty() {
            String::new()
        } else {
            format!(" (default {})", k.default)
        };
        println!("{}{default}{when}\n    {}", k.name, k.help);
    }
}
