//! Warnings for `managedMcpServers` entries that pass the client's checks but likely do not do
//! what an operator means: static headers every member receives, and this gateway's own `/mcp`
//! while the gateway cannot serve it to the client.

use serde_json::Value;
use url::Url;

use super::shown_key;

/// What the gateway knows of itself, for the warnings.
#[derive(Debug, Clone)]
pub struct Own {
    /// The public origin (`listen.public_url`, or the address it listens on).
    pub origin: String,
    /// Whether `aws_access.mcp` is set (the MCP server at `/mcp` is on).
    pub mcp_on: bool,
}

/// Warnings for entries that pass but likely do not do what was meant: static headers (every
/// member of the policy receives them), and this gateway's own `/mcp` while the gateway cannot
/// serve it to the client (the MCP server off, or a public URL that is not https). `at` is the
/// path of the `managedMcpServers` value.
pub fn warnings(at: &str, servers: &Value, own: &Own) -> Vec<String> {
    let mut out = Vec::new();
    let Some(map) = servers.as_object() else {
        return out;
    };
    for (name, entry) in map {
        let path = format!("{at}.{}", shown_key(name));
        if entry
            .get("headers")
            .and_then(Value::as_object)
            .is_some_and(|h| !h.is_empty())
        {
            out.push(format!(
                "{path}.headers: every member of this policy receives these header values in \
                 their managed settings, where anyone who can read the settings sees them; \
                 prefer a server that signs each user in (this gateway's /mcp does)"
            ));
        }
        let Some(url) = entry.get("url").and_then(Value::as_str) else {
            continue;
        };
        if !is_own_mcp(url, &own.origin) {
            continue;
        }
        if !own.mcp_on {
            out.push(format!(
                "{path}.url: points at this gateway's /mcp, but aws_access.mcp is not set, so \
                 /mcp answers 404"
            ));
        }
        if !own.origin.starts_with("https://") {
            out.push(format!(
                "{path}.url: points at this gateway's /mcp, but listen.public_url ({}) is not \
                 https: the resource the gateway names in its sign-in metadata will not match \
                 the https URL the client uses, and the client refuses to sign in. Set \
                 listen.public_url to the https URL clients reach",
                own.origin
            ));
        }
    }
    out
}

/// Whether `url` is `<this gateway's host>/mcp`. The scheme and port are left out: a gateway
/// whose public URL wrongly says http is the case to warn about.
fn is_own_mcp(url: &str, origin: &str) -> bool {
    let (Ok(u), Ok(o)) = (Url::parse(url), Url::parse(origin)) else {
        return false;
    };
    u.host_str().is_some()
        && u.host_str() == o.host_str()
        && u.path().trim_end_matches('/') == "/mcp"
}
