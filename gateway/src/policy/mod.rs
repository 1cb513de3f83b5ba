//! Group policies: which managed settings a signed-in user gets, and what the gateway enforces
//! from them (the model allowlist, and optionally tool denials). Built once at boot; the merge
//! for each combination of matching policies is computed once and kept.

pub mod check;
mod checksum;
mod matcher;
mod mcp_servers;
mod merge;
pub mod models;
pub mod routes;
pub mod tools;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

pub use checksum::{canonical, checksum};
use tools::ToolDenials;

use crate::auth::token::Identity;
use crate::config::{Config, PolicyMode};

/// What applies to one user.
#[derive(Debug)]
pub struct Effective {
    /// Indices (in `managed.policies`) of the policies merged, base first.
    pub indices: Vec<usize>,
    /// The settings document served to the CLI.
    pub settings: Value,
    /// Its checksum (`sha256:<hex>`).
    pub checksum: String,
    /// The model allowlist, when the policy sets one.
    pub available_models: Option<Vec<String>>,
    /// Tools the gateway denies.
    pub denials: ToolDenials,
    /// The merged `desktop` block, when some matching policy opts into Claude Desktop.
    pub desktop: Option<Map<String, Value>>,
}

/// The compiled `managed` block.
#[derive(Debug)]
pub struct Policies {
    cfg: crate::config::Managed,
    injected_env: Map<String, Value>,
    own: mcp_servers::Own,
    /// Whether the gateway enforces tool denials itself.
    pub enforce_tools: bool,
    /// Whether inference is refused to a user no policy matches (`managed.unmatched: deny`).
    pub deny_unmatched: bool,
    cache: Mutex<HashMap<Vec<usize>, Arc<Effective>>>,
}

const CACHE_LIMIT: usize = 1024;

impl Policies {
    /// Compiles the config's `managed` block; `None` without one.
    pub fn new(cfg: &Config) -> Option<Self> {
        let managed = cfg.managed.clone()?;
        Some(Self {
            enforce_tools: managed.enforce_tool_denials,
            deny_unmatched: managed.unmatched == crate::config::Unmatched::Deny,
            injected_env: telemetry_env(cfg),
            own: mcp_servers::Own {
                origin: cfg.listen.origin(),
                mcp_on: cfg.aws_access.as_ref().is_some_and(|a| a.mcp.is_some()),
            },
            cfg: managed,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Warnings about policies that parse but will not work as an operator likely means: a model
    /// allowlist without `model` that leaves out the client's default model (Opus), so every
    /// developer under it gets a 400 until they pick another model; and `managedMcpServers`
    /// entries with static headers, or pointing at this gateway's `/mcp` while it cannot serve it.
    pub fn lint(&self) -> Vec<String> {
        let base = self.base();
        let mut out = Vec::new();
        for (i, p) in self.cfg.policies.iter().enumerate() {
            for (key, doc) in [
                ("cli", &p.cli),
                ("settings", &p.settings),
                ("code", &p.code),
            ] {
                if let Some(servers) = doc.as_ref().and_then(|d| d.get("managedMcpServers")) {
                    let at = format!("managed.policies[{i}].{key}.managedMcpServers");
                    out.extend(mcp_servers::warnings(&at, servers, &self.own));
                }
            }
        }
        for i in 0..self.cfg.policies.len() {
            let mut indices = base.clone();
            if !indices.contains(&i) {
                indices.push(i);
            }
            let eff = self.build(indices);
            let Some(models) = &eff.available_models else {
                continue;
            };
            if eff.settings.get("model").is_none() && !allows_default_model(models) {
                out.push(format!(
                    "managed.policies[{i}]: availableModels leaves out Claude Code's default model \
                     (Opus) and sets no `model`; its developers get 400s until they pick one. Set \
                     `model` to one of {models:?}"
                ));
            }
        }
        out
    }

    /// The inference rate limits for an effective policy: those of the most specific policy that
    /// sets any, with its index (the key of its shared counters).
    pub fn rate_limits(&self, eff: &Effective) -> Option<(usize, crate::config::PolicyRateLimits)> {
        eff.indices.iter().rev().find_map(|i| {
            self.cfg
                .policies
                .get(*i)
                .and_then(|p| p.rate_limits.clone())
                .map(|r| (*i, r))
        })
    }

    /// The policies applying to `who`, merged; `None` when none matches.
    pub fn effective(&self, who: &Identity) -> Option<Arc<Effective>> {
        let indices = self.select(who)?;
        if let Ok(cache) = self.cache.lock() {
            if let Some(hit) = cache.get(&indices) {
                return Some(hit.clone());
            }
        }
        let eff = Arc::new(self.build(indices.clone()));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() < CACHE_LIMIT {
                cache.insert(indices, eff.clone());
            }
        }
        Some(eff)
    }

    /// The catch-all policies (`match: {}`): the base layer under every other.
    fn base(&self) -> Vec<usize> {
        let ps = &self.cfg.policies;
        (0..ps.len())
            .filter(|i| matcher::is_catch_all(&ps[*i].matcher))
            .collect()
    }

    /// The indices to merge for `who`: catch-alls first (the base), then the first matching
    /// policy (`first_match`) or every matching policy in order (`layered`).
    fn select(&self, who: &Identity) -> Option<Vec<usize>> {
        let ps = &self.cfg.policies;
        let base = self.base();
        let specific = (0..ps.len()).filter(|i| {
            !matcher::is_catch_all(&ps[*i].matcher) && matcher::matches(&ps[*i].matcher, who)
        });
        let chosen: Vec<usize> = match self.cfg.policy_mode.unwrap_or(PolicyMode::FirstMatch) {
            PolicyMode::FirstMatch => {
                // A catch-all listed before a specific policy shadows it, as in the reference.
                let first = (0..ps.len()).find(|i| matcher::matches(&ps[*i].matcher, who))?;
                if matcher::is_catch_all(&ps[first].matcher) {
                    Vec::new()
                } else {
                    vec![first]
                }
            }
            PolicyMode::Layered => specific.collect(),
        };
        if base.is_empty() && chosen.is_empty() {
            return None;
        }
        Some(base.into_iter().chain(chosen).collect())
    }

    fn build(&self, indices: Vec<usize>) -> Effective {
        let mut settings = Map::new();
        if !self.injected_env.is_empty() {
            settings.insert("env".into(), Value::Object(self.injected_env.clone()));
        }
        let mut desktop: Option<Map<String, Value>> = None;
        let mut extra_denied: Vec<String> = Vec::new();
        for i in &indices {
            let p = &self.cfg.policies[*i];
            if let Some(doc) = p.cli.as_ref().or(p.settings.as_ref()).or(p.code.as_ref()) {
                settings = merge::merge(&settings, doc);
            }
            if let Some(d) = &p.desktop {
                desktop = Some(match desktop {
                    Some(base) => merge::merge(&base, d),
                    None => d.clone(),
                });
            }
            extra_denied.extend(p.deny_tools.iter().cloned());
        }
        let available_models = settings
            .get("availableModels")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            });
        let denials = ToolDenials::from_settings(&settings, &extra_denied);
        let settings = Value::Object(settings);
        Effective {
            checksum: checksum(&settings),
            indices,
            settings,
            available_models,
            denials,
            desktop,
        }
    }
}

/// Whether a model allowlist admits the model Claude Code starts on when settings name none
/// (Opus, as of 2.1.328): any entry naming an Opus model or the `opus` alias.
pub fn allows_default_model(models: &[String]) -> bool {
    models.iter().any(|m| m.contains("opus"))
}

/// The OTLP environment pushed to clients when the gateway relays telemetry: a base layer under
/// the policies' own `env`, so a policy can still point its clients elsewhere.
fn telemetry_env(cfg: &Config) -> Map<String, Value> {
    let mut env = Map::new();
    let (Some(t), Some(public)) = (&cfg.telemetry, &cfg.listen.public_url) else {
        return env;
    };
    if t.forward_to.is_empty() {
        return env;
    }
    let any = |f: fn(&crate::config::ForwardTo) -> bool| t.forward_to.iter().any(f);
    env.insert("CLAUDE_CODE_ENABLE_TELEMETRY".into(), "1".into());
    let exporter = |on: bool| Value::from(if on { "otlp" } else { "none" });
    env.insert("OTEL_METRICS_EXPORTER".into(), exporter(any(|f| f.metrics)));
    env.insert("OTEL_LOGS_EXPORTER".into(), exporter(any(|f| f.logs)));
    env.insert("OTEL_TRACES_EXPORTER".into(), exporter(any(|f| f.traces)));
    env.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        public.trim_end_matches('/').into(),
    );
    env.insert("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/protobuf".into());
    if !t.resource_attributes.is_empty() {
        let attrs: Vec<String> = t
            .resource_attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.insert("OTEL_RESOURCE_ATTRIBUTES".into(), attrs.join(",").into());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, MapEnv};
    use serde_json::json;

    fn policies(managed: &str, extra: &str) -> Policies {
        let yaml = format!(
            "listen: {{host: 127.0.0.1, public_url: 'https://gw.example.com'}}\nupstreams: [{{provider: bedrock, region: us-east-1}}]\nsession: {{jwt_secret: 0123456789abcdef0123456789abcdef}}\nstore: {{postgres_url: 'postgres://x@h/d'}}\noidc: {{issuer: 'https://i.example.com', client_id: c, client_secret: s}}\nmanaged:\n{managed}\n{extra}"
        );
        Policies::new(&load(&yaml, &MapEnv::new()).unwrap().config).unwrap()
    }

    fn who(groups: &[&str], email: &str) -> Identity {
        Identity {
            sub: "u".into(),
            email: Some(email.into()),
            name: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            mfa_at: None,
        }
    }

    const POLICIES: &str = "  policies:
    - match: {groups: [contractors]}
      cli: {availableModels: [claude-haiku-4-5], permissions: {deny: [WebFetch]}, env: {TIER: contractor}}
    - match: {groups: [eng]}
      cli: {availableModels: [opus, sonnet], env: {TIER: eng, EXTRA: x}}
    - match: {email_domain: partner.example}
      cli: {permissions: {deny: [WebSearch]}}
    - match: {}
      cli: {availableModels: [sonnet], permissions: {deny: [Bash(rm *)]}, env: {BASE: '1', TIER: base}}";

    #[test]
    fn first_match_merges_the_first_onto_the_base() {
        let p = policies(POLICIES, "");
        let e = p
            .effective(&who(&["eng", "contractors"], "a@example.com"))
            .unwrap();
        assert_eq!(e.indices, vec![3, 0], "contractors is listed first");
        assert_eq!(
            e.available_models.as_deref(),
            Some(&["claude-haiku-4-5".to_owned()][..])
        );
        assert_eq!(
            e.settings["env"],
            json!({"BASE": "1", "TIER": "contractor"})
        );
        assert_eq!(
            e.settings["permissions"]["deny"],
            json!(["Bash(rm *)", "WebFetch"])
        );
        let base_only = p.effective(&who(&["sales"], "s@example.com")).unwrap();
        assert_eq!(base_only.indices, vec![3]);
        assert_eq!(base_only.settings["env"]["TIER"], "base");
    }

    #[test]
    fn layered_merges_every_match_in_order() {
        let p = policies(&format!("  policy_mode: layered\n{POLICIES}"), "");
        let e = p
            .effective(&who(&["eng", "contractors"], "a@partner.example"))
            .unwrap();
        assert_eq!(e.indices, vec![3, 0, 1, 2]);
        assert_eq!(
            e.available_models.as_deref(),
            Some(&["opus".to_owned(), "sonnet".to_owned()][..]),
            "the later allow-list replaces"
        );
        assert_eq!(
            e.settings["env"],
            json!({"BASE": "1", "TIER": "eng", "EXTRA": "x"})
        );
        assert_eq!(
            e.settings["permissions"]["deny"],
            json!(["Bash(rm *)", "WebFetch", "WebSearch"])
        );
        assert!(
            e.denials.denies("WebFetch")
                && e.denials.denies("WebSearch")
                && !e.denials.denies("Bash")
        );
    }

    #[test]
    fn no_match_means_no_policy() {
        let p = policies(
            "  policies:\n    - match: {groups: [eng]}\n      cli: {env: {A: '1'}}",
            "",
        );
        assert!(p.effective(&who(&["sales"], "a@example.com")).is_none());
        assert!(p.effective(&who(&["eng"], "a@example.com")).is_some());
    }

    #[test]
    fn checksums_are_stable_and_telemetry_env_sits_underneath() {
        let tel = "telemetry: {forward_to: [{url: 'https://otel.example.com', logs: true}]}\n";
        let a = policies(POLICIES, tel)
            .effective(&who(&["eng"], "a@example.com"))
            .unwrap();
        let b = policies(POLICIES, tel)
            .effective(&who(&["eng"], "a@example.com"))
            .unwrap();
        assert_eq!(a.checksum, b.checksum);
        assert!(a.checksum.starts_with("sha256:") && a.checksum.len() == 71);
        let env = &a.settings["env"];
        assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "https://gw.example.com");
        assert_eq!(env["OTEL_LOGS_EXPORTER"], "otlp");
        assert_eq!(env["OTEL_TRACES_EXPORTER"], "none");
        assert_eq!(env["TIER"], "eng");
        assert_ne!(
            a.checksum,
            policies(POLICIES, "")
                .effective(&who(&["eng"], "a@example.com"))
                .unwrap()
                .checksum
        );
    }

    #[test]
    fn lint_names_an_allowlist_without_the_default_model() {
        let p = policies(
            "  policies:\n    - match: {groups: [a]}\n      cli: {availableModels: [claude-haiku-4-5]}\n    - match: {groups: [b]}\n      cli: {availableModels: [claude-haiku-4-5], model: claude-haiku-4-5}\n    - match: {groups: [c]}\n      cli: {availableModels: [opus, claude-haiku-4-5]}\n    - match: {}\n      cli: {env: {A: '1'}}",
            "",
        );
        let warnings = p.lint();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("managed.policies[0]:"),
            "{warnings:?}"
        );
    }
}
