//! Model allowlists, tool denials (for everyone and per group) and sign-in rate limits.

use claude_gateway::api::catalog;

use crate::profile::model::*;
use crate::profile::reader::{split_list, Reader};

const FAMILIES: &[&str] = &["opus", "sonnet", "haiku", "fable"];

/// Checks that each entry is a known model id, a family or a Bedrock id.
pub fn models(r: &mut Reader, key: &str, list: &[String]) -> Vec<String> {
    for m in list {
        let known = FAMILIES.contains(&m.as_str())
            || catalog::built_in(m).is_some()
            || catalog::is_bedrock_native(m);
        if !known {
            r.err(key, format!("{m:?} is not a known model id, a family (opus, sonnet, haiku, fable) or a Bedrock id"));
        }
    }
    list.to_vec()
}

/// Checks that each entry is a bare tool name.
pub fn tools(r: &mut Reader, key: &str, list: &[String]) -> Vec<String> {
    for t in list {
        if t.contains(['(', ' ', '=', ';']) {
            r.err(key, format!("{t:?} must be a bare tool name like WebFetch"));
        }
    }
    list.to_vec()
}

/// Reads `GROUP_MODELS` and `GROUP_DENY_TOOLS` (`group=a,b;group=c`), keeping group order.
pub fn group_rules(r: &mut Reader) -> Vec<(String, PolicyRules)> {
    let mut out: Vec<(String, PolicyRules)> = Vec::new();
    for key in ["GROUP_MODELS", "GROUP_DENY_TOOLS"] {
        let mut seen = Vec::new();
        for part in split_list(&r.raw(key), ';') {
            let Some((group, items)) = part.split_once('=') else {
                r.err(key, format!("{part:?} must be group=item,item"));
                continue;
            };
            let group = group.trim().to_owned();
            if group.is_empty() || group.contains(',') {
                r.err(key, format!("{part:?} has no group name before ="));
                continue;
            }
            if seen.contains(&group) {
                r.err(key, format!("group {group:?} is listed twice"));
                continue;
            }
            seen.push(group.clone());
            let items = split_list(items, ',');
            if items.is_empty() {
                r.err(key, format!("group {group:?} lists nothing"));
            }
            let idx = match out.iter().position(|(g, _)| *g == group) {
                Some(i) => i,
                None => {
                    out.push((group, PolicyRules::default()));
                    out.len() - 1
                }
            };
            if key == "GROUP_MODELS" {
                out[idx].1.models = models(r, key, &items);
            } else {
                out[idx].1.deny_tools = tools(r, key, &items);
            }
        }
    }
    out
}

/// Reads a `max/window-seconds` rate limit.
pub fn rate(r: &mut Reader, key: &str) -> Rate {
    let v = r.raw(key);
    let parsed = v
        .split_once('/')
        .and_then(|(m, w)| Some((m.trim().parse::<u32>().ok()?, w.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((max, window_seconds)) if max > 0 && window_seconds > 0 => Rate {
            max,
            window_seconds,
        },
        _ => {
            r.err(
                key,
                format!("{v:?} must be max/window-seconds, e.g. 30/600"),
            );
            Rate {
                max: 1,
                window_seconds: 1,
            }
        }
    }
}
