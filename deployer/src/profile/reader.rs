//! Typed access to the raw assignments of a profile, collecting one message per bad key.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use super::envfile::Entry;
use super::keys::{self, Applies};
use crate::constraints;

/// Reads keys with their defaults and records every problem, each naming its key.
pub struct Reader<'a> {
    map: &'a BTreeMap<String, Entry>,
    /// Problems found so far, each starting with the key it concerns.
    pub issues: Vec<String>,
}

impl<'a> Reader<'a> {
    /// Starts reading `map`, first checking for unknown keys and keys whose mode is off.
    pub fn new(map: &'a BTreeMap<String, Entry>) -> Self {
        let mut r = Self {
            map,
            issues: Vec::new(),
        };
        for (name, entry) in map {
            let Some(key) = keys::find(name) else {
                let hint = keys::closest(name)
                    .map(|c| format!(" (did you mean {c}?)"))
                    .unwrap_or_default();
                r.issues.push(format!(
                    "{name}: unknown key on line {}{hint}; `deployer keys` lists them all",
                    entry.line
                ));
                continue;
            };
            if let Applies::When(mode, values) = key.applies {
                let current = r.raw(mode);
                if !entry.value.is_empty() && !values.contains(&current.as_str()) {
                    r.issues.push(format!(
                        "{name}: set on line {}, but it applies only when {mode} is {} ({mode} is {:?})",
                        entry.line,
                        values.join(" or "),
                        current
                    ));
                }
            }
        }
        r
    }

    /// Records a problem with `key`.
    pub fn err(&mut self, key: &str, msg: impl AsRef<str>) {
        self.issues.push(format!("{key}: {}", msg.as_ref()));
    }

    /// The value of `key`, or its default when absent or empty.
    pub fn raw(&self, key: &str) -> String {
        match self.map.get(key) {
            Some(e) if !e.value.trim().is_empty() => e.value.trim().to_owned(),
            _ => keys::find(key)
                .map(|k| k.default.to_owned())
                .unwrap_or_default(),
        }
    }

    /// Whether the profile itself sets `key` to something non-empty.
    pub fn is_set(&self, key: &str) -> bool {
        self.map
            .get(key)
            .is_some_and(|e| !e.value.trim().is_empty())
    }

    /// An optional string (None when empty after defaults).
    pub fn opt(&self, key: &str) -> Option<String> {
        Some(self.raw(key)).filter(|v| !v.is_empty())
    }

    /// A required string.
    pub fn required(&mut self, key: &str, why: &str) -> String {
        let v = self.raw(key);
        if v.is_empty() {
            self.err(key, format!("required {why}"));
        }
        v
    }

    /// One of a fixed set of values.
    pub fn choice(&mut self, key: &str, allowed: &[&str]) -> String {
        let v = self.raw(key);
        if !allowed.contains(&v.as_str()) {
            let shown = if v.is_empty() {
                "empty".to_owned()
            } else {
                format!("{v:?}")
            };
            self.err(
                key,
                format!("is {shown}; must be one of {}", allowed.join(", ")),
            );
        }
        v
    }

    /// `true` or `false`.
    pub fn bool(&mut self, key: &str) -> bool {
        match self.raw(key).to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            other => {
                self.err(key, format!("{other:?} is not true or false"));
                false
            }
        }
    }

    /// A whole number that parameter `param` of template `file` accepts (its `AllowedValues`, or
    /// `MinValue` to `MaxValue`): the limits are read from the template, so the profile is never
    /// looser than the stack it feeds.
    pub fn template_number(&mut self, key: &str, file: &str, param: &str) -> u32 {
        let v = self.raw(key);
        let c = match constraints::of(file, param) {
            Ok(c) => c,
            Err(e) => {
                self.err(key, e);
                return 0;
            }
        };
        match v.parse::<u32>() {
            Ok(n) if c.accepts(&v) => n,
            _ => {
                self.err(
                    key,
                    format!("{v:?} is not {} ({file} {param})", c.expectation()),
                );
                let first = c.allowed_values.first().and_then(|a| a.parse().ok());
                c.min_value.map(|m| m as u32).or(first).unwrap_or(0)
            }
        }
    }

    /// Whether a problem with `key` was recorded.
    pub fn has_issue(&self, key: &str) -> bool {
        let prefix = format!("{key}:");
        self.issues.iter().any(|i| i.starts_with(&prefix))
    }

    /// A comma-separated list, trimmed, empties dropped.
    pub fn list(&self, key: &str) -> Vec<String> {
        split_list(&self.raw(key), ',')
    }

    /// An IPv4 CIDR block.
    pub fn cidr(&mut self, key: &str) -> Option<Ipv4Net> {
        let v = self.raw(key);
        parse_cidr(&v).map_err(|e| self.err(key, e)).ok()
    }

    /// A list of IPv4 CIDR blocks.
    pub fn cidrs(&mut self, key: &str) -> Vec<Ipv4Net> {
        let mut out = Vec::new();
        for item in self.list(key) {
            match parse_cidr(&item) {
                Ok(n) => out.push(n),
                Err(e) => self.err(key, e),
            }
        }
        out
    }
}

/// Splits on `sep`, trims, drops empty items.
pub fn split_list(v: &str, sep: char) -> Vec<String> {
    v.split(sep)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_cidr(v: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = v
        .parse()
        .map_err(|_| format!("{v:?} is not an IPv4 CIDR block like 10.20.0.0/16"))?;
    if net.trunc() != net {
        return Err(format!(
            "{v:?} has host bits set; the block starts at {}",
            net.trunc()
        ));
    }
    Ok(net)
}
