//! The short, normalized description of a config that `check-config` prints.

use std::fmt::Write;

use super::load::Loaded;
use super::schema::PolicyMode;

/// A few lines naming what the config turns on. Never prints a secret.
pub fn summary(loaded: &Loaded) -> String {
    let c = &loaded.config;
    let mut s = String::new();
    let _ = writeln!(s, "sha256: {}", loaded.sha256);
    let scheme = if c.listen.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let _ = writeln!(s, "listen: {scheme}://{}:{}", c.listen.host, c.listen.port);
    let _ = writeln!(
        s,
        "public_url: {}",
        c.listen
            .public_url
            .as_deref()
            .unwrap_or("(loopback origin)")
    );
    if let Some(o) = &c.oidc {
        let _ = writeln!(s, "oidc: issuer {} client {}", o.issuer, o.client_id);
        if let Some(d) = &o.allowed_email_domains {
            let _ = writeln!(s, "email domains: {}", d.join(", "));
        }
        if let Some(g) = &o.allowed_groups {
            let _ = writeln!(s, "allowed groups: {}", g.join(", "));
        }
    }
    let _ = writeln!(
        s,
        "session: {} secret(s), ttl {} h",
        c.session.jwt_secret.to_vec().len(),
        c.session.ttl_hours
    );
    let store = if c.store.postgres_url.is_some() {
        "store.postgres_url"
    } else {
        "GATEWAY_PG_* variables"
    };
    let _ = writeln!(s, "store: from {store}, pool {}", c.store.max_connections);
    let ups: Vec<String> = c
        .upstreams
        .iter()
        .map(|u| format!("{}({})", u.name(), u.provider.as_str()))
        .collect();
    let _ = writeln!(s, "upstreams: {}", ups.join(", "));
    let _ = writeln!(
        s,
        "models: {} custom, built-in catalog {}",
        c.models.as_ref().map_or(0, Vec::len),
        if c.auto_include_builtin_models {
            "on"
        } else {
            "off"
        }
    );
    match &c.managed {
        Some(m) => {
            let mode = match m.policy_mode {
                Some(PolicyMode::Layered) => "layered",
                _ => "first_match",
            };
            let _ = writeln!(s, "managed: {} policies ({mode})", m.policies.len());
        }
        None => {
            let _ = writeln!(s, "managed: not configured");
        }
    }
    let relays = c.telemetry.as_ref().map_or(0, |t| t.forward_to.len());
    let _ = writeln!(s, "telemetry relay: {relays} destination(s)");
    let _ = writeln!(
        s,
        "admin: {}",
        match &c.admin {
            Some(a) => format!(
                "{} write key(s), {} read key(s), {} admin group(s)",
                a.write_keys.len(),
                a.read_keys.len(),
                a.admin_groups.len()
            ),
            None => "off (no spend enforcement)".to_owned(),
        }
    );
    let ac = &c.access_control;
    let _ = writeln!(
        s,
        "access control: {} allow, {} deny, {} trusted proxies",
        ac.allow_cidrs.len(),
        ac.deny_cidrs.len(),
        c.listen.trusted_proxies.len()
    );
    s
}
