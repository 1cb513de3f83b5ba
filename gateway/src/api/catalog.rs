//! The built-in Claude model catalog: the ids clients send, their first-party dated ids and their
//! Bedrock ids, and how a requested model resolves to a provider id on each upstream.

use crate::config::{Config, Provider, Upstream};

/// One built-in model.
#[derive(Debug, Clone, Copy)]
pub struct BuiltIn {
    /// The id clients send (family alias).
    pub id: &'static str,
    /// The first-party API id (dated where the API dates it).
    pub anthropic: &'static str,
    /// The Bedrock id without its geography prefix (`anthropic.…`).
    pub bedrock: &'static str,
    /// Listed by `/v1/models` (older models resolve but are not advertised).
    pub listed: bool,
    /// Largest input the model takes.
    pub max_input_tokens: u32,
}

const fn m(
    id: &'static str,
    anthropic: &'static str,
    bedrock: &'static str,
    listed: bool,
    max_input_tokens: u32,
) -> BuiltIn {
    BuiltIn {
        id,
        anthropic,
        bedrock,
        listed,
        max_input_tokens,
    }
}

/// Catalog as of 2026-11: newest first within each family.
pub const BUILT_IN: &[BuiltIn] = &[
    m(
        "claude-fable-5-2",
        "claude-fable-5-2",
        "anthropic.claude-fable-5-2",
        true,
        1_000_000,
    ),
    m(
        "claude-fable-5-1",
        "claude-fable-5-1",
        "anthropic.claude-fable-5-1",
        true,
        1_000_000,
    ),
    m(
        "claude-fable-5",
        "claude-fable-5",
        "anthropic.claude-fable-5",
        true,
        1_000_000,
    ),
    m(
        "claude-opus-5-5",
        "claude-opus-5-5",
        "anthropic.claude-opus-5-5",
        true,
        1_000_000,
    ),
    m(
        "claude-opus-5",
        "claude-opus-5",
        "anthropic.claude-opus-5",
        true,
        1_000_000,
    ),
    m(
        "claude-opus-4-8",
        "claude-opus-4-8",
        "anthropic.claude-opus-4-8",
        true,
        1_000_000,
    ),
    m(
        "claude-opus-4-7",
        "claude-opus-4-7",
        "anthropic.claude-opus-4-7",
        true,
        1_000_000,
    ),
    m(
        "claude-opus-4-6",
        "claude-opus-4-6",
        "anthropic.claude-opus-4-6-v1",
        true,
        1_000_000,
    ),
    m(
        "claude-opus-4-5",
        "claude-opus-4-5-20251101",
        "anthropic.claude-opus-4-5-20251101-v1:0",
        false,
        200_000,
    ),
    m(
        "claude-opus-4-1",
        "claude-opus-4-1-20250805",
        "anthropic.claude-opus-4-1-20250805-v1:0",
        true,
        200_000,
    ),
    m(
        "claude-opus-4",
        "claude-opus-4-20250514",
        "anthropic.claude-opus-4-20250514-v1:0",
        false,
        200_000,
    ),
    m(
        "claude-sonnet-5-5",
        "claude-sonnet-5-5",
        "anthropic.claude-sonnet-5-5",
        true,
        1_000_000,
    ),
    m(
        "claude-sonnet-5",
        "claude-sonnet-5",
        "anthropic.claude-sonnet-5",
        true,
        1_000_000,
    ),
    m(
        "claude-sonnet-4-6",
        "claude-sonnet-4-6",
        "anthropic.claude-sonnet-4-6",
        true,
        1_000_000,
    ),
    m(
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        true,
        1_000_000,
    ),
    m(
        "claude-sonnet-4",
        "claude-sonnet-4-20250514",
        "anthropic.claude-sonnet-4-20250514-v1:0",
        false,
        1_000_000,
    ),
    m(
        "claude-3-7-sonnet",
        "claude-3-7-sonnet-20250219",
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        false,
        200_000,
    ),
    m(
        "claude-haiku-5-5",
        "claude-haiku-5-5",
        "anthropic.claude-haiku-5-5",
        true,
        200_000,
    ),
    m(
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        true,
        200_000,
    ),
    m(
        "claude-3-5-haiku",
        "claude-3-5-haiku-20241022",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        false,
        200_000,
    ),
];

/// Bedrock geography prefixes of cross-region inference profiles.
const GEOS: &[&str] = &["us-gov.", "us.", "eu.", "apac.", "jp.", "au.", "global."];

/// Strips the client's context-size hint (`[1m]`) and surrounding space.
pub fn normalize(model: &str) -> &str {
    let m = model.trim();
    m.strip_suffix("[1m]").unwrap_or(m).trim_end()
}

/// The built-in entry for a requested id, its dated first-party id, or any Bedrock spelling.
pub fn built_in(model: &str) -> Option<&'static BuiltIn> {
    let m = normalize(model);
    let bare = GEOS.iter().find_map(|g| m.strip_prefix(g)).unwrap_or(m);
    BUILT_IN
        .iter()
        .find(|b| b.id == m || b.anthropic == m || b.bedrock == bare)
}

/// True for ids Bedrock takes as they are: geography-prefixed or bare `anthropic.` ids and ARNs.
pub fn is_bedrock_native(model: &str) -> bool {
    model.starts_with("arn:")
        || model.starts_with("anthropic.")
        || GEOS.iter().any(|g| model.starts_with(g))
}

/// The geography prefix of inference profiles for a region.
pub fn geo_for_region(region: &str) -> &'static str {
    match region.split('-').next().unwrap_or_default() {
        "eu" => "eu.",
        "ap" if region.starts_with("ap-northeast-1") => "jp.",
        "ap" if region.starts_with("ap-southeast-2") => "au.",
        "ap" => "apac.",
        "us" if region.starts_with("us-gov") => "us-gov.",
        _ => "us.",
    }
}

/// How a requested model resolves on one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Send it there under this id.
    Use(String),
    /// This upstream does not serve it (why, for the error message).
    Skip(String),
}

/// Resolves `model` for `up` under the operator's config.
pub fn resolve(cfg: &Config, up: &Upstream, model: &str) -> Resolution {
    let requested = normalize(model);
    if let Some(only) = &up.models {
        if !only.iter().any(|m| m == requested) {
            return Resolution::Skip(format!(
                "model {requested} is not served by upstream '{}'",
                up.name()
            ));
        }
    }
    let custom = cfg.models.iter().flatten().find(|e| e.id == requested);
    let builtin = built_in(requested);
    if let Some(entry) = custom {
        if let Some(target) = entry.upstream_model.get(up.name()) {
            return Resolution::Use(target.clone());
        }
        if builtin.is_none() {
            return Resolution::Skip(format!(
                "model {requested} is not configured for upstream '{}'",
                up.name()
            ));
        }
    }
    if custom.is_none() && !cfg.auto_include_builtin_models {
        return Resolution::Skip(format!(
            "model {requested} is not in the operator's model allowlist"
        ));
    }
    match (up.provider, builtin) {
        (Provider::Bedrock, _) if is_bedrock_native(requested) => {
            Resolution::Use(requested.to_owned())
        }
        (Provider::Bedrock, Some(b)) => {
            let geo = geo_for_region(up.region.as_deref().unwrap_or("us-east-1"));
            Resolution::Use(format!("{geo}{}", b.bedrock))
        }
        (Provider::Anthropic, Some(b)) => Resolution::Use(b.anthropic.to_owned()),
        (Provider::Anthropic, None) if requested.starts_with("claude-") => {
            Resolution::Use(requested.to_owned())
        }
        _ => Resolution::Skip(format!(
            "model {requested} is not in the operator's model allowlist"
        )),
    }
}

/// The Bedrock foundation-model id behind a Bedrock id (CountTokens takes only these), or `None`
/// for an application inference profile ARN.
pub fn foundation_model(bedrock_id: &str) -> Option<String> {
    if bedrock_id.starts_with("arn:") {
        return bedrock_id
            .split_once(":foundation-model/")
            .map(|(_, id)| id.to_owned());
    }
    let bare = GEOS
        .iter()
        .find_map(|g| bedrock_id.strip_prefix(g))
        .unwrap_or(bedrock_id);
    Some(bare.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, MapEnv};

    fn cfg(extra: &str) -> Config {
        let yaml = format!(
            "listen: {{host: 127.0.0.1}}
upstreams:
  - {{provider: bedrock, region: us-east-1}}
  - {{provider: bedrock, name: eu, region: eu-west-1}}
  - {{provider: anthropic, auth: {{api_key: k}}}}
session: {{jwt_secret: 0123456789abcdef0123456789abcdef}}
store: {{postgres_url: 'postgres://x@h/d'}}
oidc: {{issuer: 'https://i.example.com', client_id: c, client_secret: s}}
{extra}"
        );
        load(&yaml, &MapEnv::new()).unwrap().config
    }

    #[test]
    fn aliases_dated_ids_and_bedrock_spellings_find_the_same_model() {
        for spelling in [
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude-sonnet-4-5[1m]",
        ] {
            assert_eq!(
                built_in(spelling).map(|b| b.id),
                Some("claude-sonnet-4-5"),
                "{spelling}"
            );
        }
        assert!(built_in("gpt-4o").is_none());
    }

    #[test]
    fn bedrock_ids_follow_the_upstream_region() {
        let c = cfg("");
        let us = &c.upstreams[0];
        let eu = &c.upstreams[1];
        assert_eq!(
            resolve(&c, us, "claude-haiku-4-5"),
            Resolution::Use("us.anthropic.claude-haiku-4-5-20251001-v1:0".into())
        );
        assert_eq!(
            resolve(&c, eu, "claude-haiku-4-5"),
            Resolution::Use("eu.anthropic.claude-haiku-4-5-20251001-v1:0".into())
        );
        assert_eq!(
            resolve(&c, us, "claude-opus-4-8"),
            Resolution::Use("us.anthropic.claude-opus-4-8".into())
        );
        let arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc";
        assert_eq!(resolve(&c, us, arn), Resolution::Use(arn.into()));
        assert_eq!(
            resolve(&c, &c.upstreams[2], "claude-sonnet-4-5"),
            Resolution::Use("claude-sonnet-4-5-20250929".into())
        );
        assert!(matches!(resolve(&c, us, "gpt-4o"), Resolution::Skip(_)));
    }

    #[test]
    fn custom_models_map_per_upstream_and_skip_the_rest() {
        let c = cfg("models:\n  - {id: team-model, upstream_model: {eu: 'arn:aws:bedrock:eu-west-1:1:application-inference-profile/x'}}\n  - {id: claude-haiku-4-5, upstream_model: {bedrock: custom-haiku}}\n");
        assert!(matches!(
            resolve(&c, &c.upstreams[0], "team-model"),
            Resolution::Skip(_)
        ));
        assert_eq!(
            resolve(&c, &c.upstreams[1], "team-model"),
            Resolution::Use("arn:aws:bedrock:eu-west-1:1:application-inference-profile/x".into())
        );
        assert_eq!(
            resolve(&c, &c.upstreams[0], "claude-haiku-4-5"),
            Resolution::Use("custom-haiku".into())
        );
        // A built-in with no entry for this upstream uses the provider's default id.
        assert_eq!(
            resolve(&c, &c.upstreams[1], "claude-haiku-4-5"),
            Resolution::Use("eu.anthropic.claude-haiku-4-5-20251001-v1:0".into())
        );
    }

    #[test]
    fn without_the_built_in_catalog_only_listed_models_pass() {
        let c = cfg("auto_include_builtin_models: false\nmodels: [{id: claude-haiku-4-5}]\n");
        assert!(matches!(
            resolve(&c, &c.upstreams[0], "claude-opus-4-8"),
            Resolution::Skip(_)
        ));
        assert!(matches!(
            resolve(&c, &c.upstreams[0], "claude-haiku-4-5"),
            Resolution::Use(_)
        ));
    }

    #[test]
    fn count_tokens_needs_the_foundation_model() {
        assert_eq!(
            foundation_model("us.anthropic.claude-opus-4-8").as_deref(),
            Some("anthropic.claude-opus-4-8")
        );
        assert_eq!(
            foundation_model("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-x")
                .as_deref(),
            Some("anthropic.claude-x")
        );
        assert_eq!(
            foundation_model("arn:aws:bedrock:us-east-1:1:application-inference-profile/abc"),
            None
        );
    }

    #[test]
    fn geographies_by_region() {
        assert_eq!(geo_for_region("eu-central-1"), "eu.");
        assert_eq!(geo_for_region("ap-northeast-1"), "jp.");
        assert_eq!(geo_for_region("ap-southeast-2"), "au.");
        assert_eq!(geo_for_region("ap-south-1"), "apac.");
        assert_eq!(geo_for_region("us-gov-west-1"), "us-gov.");
        assert_eq!(geo_for_region("us-west-2"), "us.");
    }
}
