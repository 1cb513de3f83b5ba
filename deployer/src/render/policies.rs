//! `managed.policies` from the profile's model allowlists and tool denials.

use serde_json::{json, Map, Value};

use claude_gateway::config::{Managed, Policy, PolicyMatch, PolicyMode};

use crate::profile::{PolicyRules, Profile};

/// The managed block: one policy per group (first match wins), then the base for everyone.
/// `None` when the profile restricts nothing.
pub fn managed(p: &Profile) -> Result<Option<Managed>, String> {
    let restricts = |r: &PolicyRules| !r.models.is_empty() || !r.deny_tools.is_empty();
    if !restricts(&p.default_rules) && !p.group_rules.iter().any(|(_, r)| restricts(r)) {
        return Ok(None);
    }
    let mut policies: Vec<Policy> = p
        .group_rules
        .iter()
        .map(|(group, rules)| policy(Some(group), rules))
        .collect::<Result<_, _>>()?;
    policies.push(policy(None, &p.default_rules)?);
    let any_denials = !p.default_rules.deny_tools.is_empty()
        || p.group_rules.iter().any(|(_, r)| !r.deny_tools.is_empty());
    Ok(Some(Managed {
        settings: None,
        policy_mode: Some(PolicyMode::FirstMatch),
        policies,
        enforce_tool_denials: p.enforce_tool_denials && any_denials,
        unmatched: Default::default(),
    }))
}

fn policy(group: Option<&String>, rules: &PolicyRules) -> Result<Policy, String> {
    let mut cli = Map::new();
    if !rules.models.is_empty() {
        cli.insert("availableModels".into(), json!(rules.models));
        cli.insert("enforceAvailableModels".into(), Value::Bool(true));
        // A list without the client's starting model needs a starting model from the list.
        if !claude_gateway::policy::allows_default_model(&rules.models) {
            cli.insert("model".into(), json!(rules.models[0]));
        }
    }
    if !rules.deny_tools.is_empty() {
        cli.insert("permissions".into(), json!({ "deny": rules.deny_tools }));
    }
    let mut policy: Policy = super::typed(json!({ "match": {} }))?;
    policy.matcher = PolicyMatch {
        groups: group.map(|g| vec![g.clone()]),
        email_domain: None,
    };
    policy.cli = Some(cli);
    Ok(policy)
}
