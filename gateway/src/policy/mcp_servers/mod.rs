//! `managedMcpServers` in a policy's settings, checked the way Claude Code checks it when it reads
//! managed settings. The client drops a failing entry with nothing but a line in `/status`, so
//! the gateway refuses it at boot instead, naming its path; and it warns where a valid entry
//! will still not do what an operator likely means.

use serde_json::{Map, Value};
use url::Url;

mod warn;
pub use warn::{warnings, Own};

/// Keys an entry may not carry: a managed settings document names no program to run.
const PROGRAM_KEYS: &[&str] = &["command", "args", "env", "headersHelper"];
/// The transports the client takes from managed settings.
const TYPES: &[&str] = &["http", "streamable-http", "sse"];
/// Names every JavaScript object already carries, which the client refuses as server names.
const RESERVED_NAMES: &[&str] = &[
    "constructor",
    "prototype",
    "__proto__",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toString",
    "toLocaleString",
    "valueOf",
];
/// The client's limits on the two URLs an entry carries.
const MAX_URL: usize = 65_536;
const MAX_METADATA_URL: usize = 4096;

type Problems = Vec<(String, String)>;

/// Problems of a settings document's `managedMcpServers` value, as (path below
/// `.managedMcpServers`, message).
pub fn check(servers: &Value) -> Problems {
    let mut out = Vec::new();
    let Some(map) = servers.as_object() else {
        let why = if servers.is_array() {
            "must be an object keyed by server name; the list form Claude Desktop uses is not \
             accepted: use the server name as the key and `type` instead of `transport`"
        } else {
            "must be an object keyed by server name"
        };
        out.push((String::new(), why.to_owned()));
        return out;
    };
    for (name, entry) in map {
        if !valid_name(name) {
            out.push((
                String::new(),
                format!(
                    "server name {} may hold only letters, digits, `-` and `_`, and may not be \
                     a name JavaScript objects already carry (constructor, prototype, __proto__, ...)",
                    shown(name)
                ),
            ));
            continue;
        }
        check_entry(&format!(".{name}"), entry, &mut out);
    }
    out
}

/// Whether the client takes `name` as a server name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !RESERVED_NAMES.contains(&name)
}

fn check_entry(at: &str, entry: &Value, out: &mut Problems) {
    let Some(e) = entry.as_object() else {
        out.push((at.to_owned(), "must be an object (a server entry)".into()));
        return;
    };
    for key in PROGRAM_KEYS {
        if e.contains_key(*key) {
            out.push((
                format!("{at}.{key}"),
                "is not allowed in managed settings: only http and sse URL servers can be \
                 delivered, and managed settings name no program to run"
                    .into(),
            ));
        }
    }
    match e.get("type").and_then(Value::as_str) {
        Some(t) if TYPES.contains(&t) => {}
        _ => out.push((
            format!("{at}.type"),
            "must be http, streamable-http or sse".into(),
        )),
    }
    match e.get("url") {
        Some(Value::String(u)) if u.len() <= MAX_URL && is_https_with_host(u) => {}
        Some(Value::String(u)) if u.len() > MAX_URL => {
            out.push((format!("{at}.url"), "is too long".into()));
        }
        _ => out.push((
            format!("{at}.url"),
            "must be an https:// URL with a host".into(),
        )),
    }
    walk_strings(at, entry, out);
    check_fields(at, e, out);
}

/// The typed optional fields of an entry.
fn check_fields(at: &str, e: &Map<String, Value>, out: &mut Problems) {
    let mut err = |path: String, message: &str| out.push((path, message.to_owned()));
    if let Some(h) = e.get("headers") {
        match h.as_object() {
            Some(m) => {
                for (k, v) in m {
                    if !v.is_string() {
                        err(format!("{at}.headers.{}", shown_key(k)), "must be a string");
                    }
                }
            }
            None => err(
                format!("{at}.headers"),
                "must be an object of string values",
            ),
        }
    }
    if let Some(o) = e.get("oauth") {
        check_oauth(&format!("{at}.oauth"), o, &mut err);
    }
    if let Some(t) = e.get("timeout") {
        if !is_positive_int(t) {
            err(format!("{at}.timeout"), "must be a positive whole number");
        }
    }
    if e.get("alwaysLoad").is_some_and(|v| !v.is_boolean()) {
        err(format!("{at}.alwaysLoad"), "must be true or false");
    }
    if e.get("displayName").is_some_and(|v| !v.is_string()) {
        err(format!("{at}.displayName"), "must be a string");
    }
    if let Some(tools) = e.get("tools") {
        let Some(list) = tools.as_array() else {
            err(
                format!("{at}.tools"),
                "must be a list of {name, permission_policy}",
            );
            return;
        };
        for (i, t) in list.iter().enumerate() {
            let p = format!("{at}.tools[{i}]");
            if !t.get("name").is_some_and(Value::is_string) {
                err(format!("{p}.name"), "must be a string");
            }
            if let Some(pp) = t.get("permission_policy") {
                if !one_of(pp, &["always_allow", "always_ask", "always_deny"]) {
                    err(
                        format!("{p}.permission_policy"),
                        "must be always_allow, always_ask or always_deny",
                    );
                }
            }
        }
    }
    if let Some(tp) = e.get("toolPermissions") {
        match tp.as_object() {
            Some(m) => {
                for (k, v) in m {
                    if !one_of(v, &["allow", "ask", "blocked"]) {
                        err(
                            format!("{at}.toolPermissions.{}", shown_key(k)),
                            "must be allow, ask or blocked",
                        );
                    }
                }
            }
            None => err(format!("{at}.toolPermissions"), "must be an object"),
        }
    }
}

fn check_oauth(at: &str, o: &Value, err: &mut impl FnMut(String, &str)) {
    let Some(o) = o.as_object() else {
        err(at.to_owned(), "must be an object");
        return;
    };
    if o.get("clientId").is_some_and(|v| !v.is_string()) {
        err(format!("{at}.clientId"), "must be a string");
    }
    if o.get("callbackPort").is_some_and(|v| !is_positive_int(v)) {
        err(
            format!("{at}.callbackPort"),
            "must be a positive whole number",
        );
    }
    if let Some(v) = o.get("authServerMetadataUrl") {
        let ok = v.as_str().is_some_and(|u| {
            u.len() <= MAX_METADATA_URL && u.starts_with("https://") && Url::parse(u).is_ok()
        });
        if !ok {
            err(
                format!("{at}.authServerMetadataUrl"),
                "must be an https:// URL of at most 4096 characters",
            );
        }
    }
    if o.get("scopes")
        .is_some_and(|v| v.as_str().is_none_or(str::is_empty))
    {
        err(format!("{at}.scopes"), "must be a non-empty string");
    }
    if o.get("xaa").is_some_and(|v| !v.is_boolean()) {
        err(format!("{at}.xaa"), "must be true or false");
    }
}

/// Every key and string value under an entry: no control or format characters anywhere (a
/// managed document must not print escape sequences), and no `${NAME}` left in a value (the
/// client does not expand them in managed settings and drops the entry).
fn walk_strings(at: &str, v: &Value, out: &mut Problems) {
    match v {
        Value::String(s) => {
            if s.chars().any(is_invisible) {
                out.push((at.to_owned(), INVISIBLE.into()));
            } else if has_reference(s) {
                out.push((
                    at.to_owned(),
                    "holds a ${NAME} reference the gateway did not expand (it expands only \
                     `${NAME}` of a set variable); Claude Code does not expand them in managed \
                     settings and drops the entry: write the value itself"
                        .into(),
                ));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_strings(&format!("{at}[{i}]"), item, out);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                let path = format!("{at}.{}", shown_key(k));
                if k.chars().any(is_invisible) {
                    out.push((path.clone(), INVISIBLE.into()));
                }
                walk_strings(&path, item, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

const INVISIBLE: &str =
    "holds a control or invisible format character (in its key or its value), which Claude Code \
     refuses in managed settings";

/// The client's `${NAME}` / `${NAME:-default}` pattern, anywhere in `s`.
pub(crate) fn has_reference(s: &str) -> bool {
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        let mut chars = rest.char_indices();
        let starts = chars
            .next()
            .is_some_and(|(_, c)| c.is_ascii_alphabetic() || c == '_');
        if !starts {
            continue;
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let tail = &rest[name_end..];
        if tail.starts_with('}') {
            return true;
        }
        if let Some(default) = tail.strip_prefix(":-") {
            if default.contains('}') {
                return true;
            }
        }
    }
    false
}

/// Unicode control (Cc) and format (Cf) characters, and the line and paragraph separators: what
/// the client's `[\p{Cc}\p{Cf}\u2028\u2029]` matches (Cf as of Unicode 15.1).
pub(crate) fn is_invisible(c: char) -> bool {
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x2028, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let n = u32::from(c);
    c.is_control() || FORMAT.iter().any(|(lo, hi)| (*lo..=*hi).contains(&n))
}

fn is_https_with_host(u: &str) -> bool {
    Url::parse(u)
        .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()))
}

fn is_positive_int(v: &Value) -> bool {
    v.as_u64().is_some_and(|n| n > 0)
}

fn one_of(v: &Value, allowed: &[&str]) -> bool {
    v.as_str().is_some_and(|s| allowed.contains(&s))
}

/// A key as a path segment: itself, or escaped when it holds characters a terminal would act on.
fn shown_key(k: &str) -> String {
    if k.chars().any(is_invisible) {
        k.escape_default().to_string()
    } else {
        k.to_owned()
    }
}

/// A name quoted for a message, escaped.
fn shown(name: &str) -> String {
    format!("\"{}\"", name.escape_default())
}

#[cfg(test)]
mod tests;
