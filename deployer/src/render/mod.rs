//! Renders the gateway's `gateway.yaml` as the gateway's own typed [`Config`], so a rendered file
//! is valid by construction, then checks it with the gateway's validator and measures it against
//! the channel that carries it.
//!
//! The channel: the text travels as the task-definition variable `GATEWAY_CONFIG`, handed to the
//! gateway stack in four CloudFormation parameters (`GatewayConfigPart1..4`) of at most 4,096
//! bytes each, so the budget is 16,384 bytes. The text is compact JSON (valid YAML, no comments,
//! nothing whose newlines matter), split at byte offsets that never cut a UTF-8 character.

mod policies;

use std::collections::BTreeMap;

use serde_json::json;

use claude_gateway::config::{
    self, Admin, AdminKey, Config, Enforcement, Export, ForwardTo, Listen, MapEnv, Oidc, OneOrMany,
    RateLimits, Secret, Session, Store, Telemetry as TelemetryCfg, Upstream, UpstreamAuth, Window,
};

use crate::profile::{Idp, Profile, Telemetry, PLANNED_WEBHOOK_URL, WEBHOOK_VAR};

/// Bytes one CloudFormation parameter value may hold.
pub const PART_BYTES: usize = 4096;
/// How many parameters carry the config.
pub const PARTS: usize = 4;
/// The channel's total budget.
pub const CHANNEL_BYTES: usize = PART_BYTES * PARTS;

/// What the identity provider tells the gateway config (profile values for bring-your-own OIDC,
/// identity stack outputs for Cognito).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFacts {
    /// Issuer URL.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Groups claim.
    pub groups_claim: String,
    /// Scopes to request.
    pub scopes: Vec<String>,
}

impl IdentityFacts {
    /// The facts a profile knows by itself (bring-your-own OIDC), or `None` when a stack supplies them.
    pub fn from_profile(p: &Profile) -> Option<Self> {
        match &p.idp {
            Idp::Oidc(o) => Some(Self {
                issuer: o.issuer.clone(),
                client_id: o.client_id.clone(),
                groups_claim: o.groups_claim.clone(),
                scopes: o.scopes.clone(),
            }),
            _ => None,
        }
    }

    /// Stand-ins of realistic length for a Cognito pool not created yet (offline plans).
    pub fn cognito_placeholder(region: &str) -> Self {
        Self {
            issuer: format!("https://cognito-idp.{region}.amazonaws.com/{region}_PLANNED000"),
            client_id: "planned0client0id000000000".into(),
            groups_claim: "cognito:groups".into(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
        }
    }

    /// Reads the identity stack's outputs `Issuer`, `ClientId`, `GroupsClaim`, `Scopes`.
    pub fn from_outputs(out: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| {
            out.get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| format!("the identity stack has no output {k}"))
        };
        Ok(Self {
            issuer: get("Issuer")?,
            client_id: get("ClientId")?,
            groups_claim: get("GroupsClaim")?,
            scopes: get("Scopes")?
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        })
    }
}

/// A value of a gateway config type with every field at its documented default, from the few
/// required fields in `v`. Building from the defaults keeps the deployer in step when the gateway
/// adds optional fields.
fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("the gateway config schema changed: {e}"))
}

fn secret_ref(var: &str) -> Secret {
    Secret::new(format!("${{{var}}}"))
}

/// Builds the gateway config for `p` with the identity provider's facts.
pub fn build(p: &Profile, idp: &IdentityFacts) -> Result<Config, String> {
    let oidc_extra = match &p.idp {
        Idp::Oidc(o) => Some(o),
        _ => None,
    };
    let email_claim = oidc_extra
        .map(|o| o.email_claims.clone())
        .filter(|c| c.len() > 1 || c.first().is_some_and(|c| c != "email"));
    let mut oidc: Oidc = typed(json!({ "issuer": idp.issuer, "client_id": idp.client_id }))?;
    oidc.client_secret = Some(secret_ref("OIDC_CLIENT_SECRET"));
    oidc.allowed_email_domains = Some(p.allowed_email_domains.clone());
    oidc.allowed_groups = (!p.allowed_groups.is_empty()).then(|| p.allowed_groups.clone());
    oidc.groups_claim = idp.groups_claim.clone();
    oidc.email_claim = match email_claim {
        Some(mut c) if c.len() == 1 => OneOrMany::One(c.remove(0)),
        Some(c) => OneOrMany::Many(c),
        None => OneOrMany::One("email".into()),
    };
    oidc.scopes = idp.scopes.clone();
    oidc.scope_on_refresh = oidc_extra.is_some_and(|o| o.scope_on_refresh);
    oidc.extra_auth_params = oidc_extra
        .map(|o| o.extra_auth_params.iter().cloned().collect())
        .unwrap_or_default();
    oidc.userinfo_fallback = oidc_extra.is_some_and(|o| o.userinfo_fallback);
    let telemetry = match &p.telemetry {
        Telemetry::Off => None,
        Telemetry::Collector { hostname, .. } => Some(format!("https://{hostname}")),
        Telemetry::External { endpoint } => Some(endpoint.clone()),
    }
    .map(|url| TelemetryCfg {
        forward_to: vec![ForwardTo {
            url: url.clone(),
            headers: BTreeMap::new(),
            auth: None,
            metrics: true,
            logs: p.telemetry_logs,
            traces: false,
        }],
        resource_attributes: BTreeMap::new(),
        export: p.gateway_metrics.then(|| Export {
            endpoint: url,
            headers: BTreeMap::new(),
            interval_seconds: 60,
            metrics: true,
            // The bundled collector has no trace pipeline; an external endpoint gets traces too.
            traces: matches!(p.telemetry, Telemetry::External { .. }),
        }),
    });
    let admin = p.admin_api.as_ref().map(|a| Admin {
        write_keys: vec![AdminKey {
            id: "ops".into(),
            key: secret_ref("GATEWAY_ADMIN_WRITE_KEY"),
        }],
        read_keys: vec![AdminKey {
            id: "finance".into(),
            key: secret_ref("GATEWAY_ADMIN_READ_KEY"),
        }],
        admin_groups: a.admin_groups.clone(),
        blocked_message: a.blocked_message.clone(),
        audit_retention_days: 365,
        spend_retention_months: 13,
        identity_retention_days: 90,
        group_limit_mode: Default::default(),
        pooled_conflict_rule: None,
        pooled_priority_order: None,
        billing_group_tag: None,
    });
    let upstream = {
        let mut up: Upstream = typed(json!({ "provider": "bedrock" }))?;
        up.auth = Some(UpstreamAuth::default());
        up.region = Some(p.bedrock_region.clone());
        up
    };
    Ok(Config {
        schema: None,
        listen: Listen {
            host: "0.0.0.0".into(),
            port: 8080,
            public_url: Some(p.gateway_url()),
            tls: None,
            trusted_proxies: p
                .network
                .load_balancer_cidrs()
                .iter()
                .map(ToString::to_string)
                .collect(),
        },
        oidc: Some(oidc),
        session: Session {
            // The first signs, both verify: during a rotation (`deployer rotate-jwt`) the second is
            // the secret that signed before it; otherwise the stack hands the signing one twice.
            jwt_secret: OneOrMany::Many(vec![
                secret_ref("GATEWAY_JWT_SECRET"),
                secret_ref("GATEWAY_JWT_SECRET_PREVIOUS"),
            ]),
            ttl_hours: p.session_ttl_hours,
        },
        store: Store {
            postgres_url: None,
            username: None,
            password: None,
            max_connections: 5,
            connect_timeout_seconds: 5,
            readiness_grace_seconds: 60,
            statement_timeout_ms: 5_000,
        },
        upstreams: vec![upstream],
        models: None,
        auto_include_builtin_models: true,
        managed: policies::managed(p)?,
        telemetry,
        enforcement: Enforcement {
            fail_closed_on_error: p.admin_api.as_ref().is_some_and(|a| a.fail_closed),
        },
        admin,
        pricing: None,
        access_control: Default::default(),
        limits: Default::default(),
        timeouts: Default::default(),
        rate_limits: RateLimits {
            device_authorization: Window {
                max: p.rate_device_authorization.max,
                window_seconds: p.rate_device_authorization.window_seconds,
            },
            device_verify: Window {
                max: p.rate_device_verify.max,
                window_seconds: p.rate_device_verify.window_seconds,
            },
            ..Default::default()
        },
        login_notice: p.login_notice.clone(),
        load_test_mode: None,
        audit: None,
        cri: None,
        aws_access: p.aws_access.as_ref().map(|f| f.section.clone()),
    })
}

/// The config as the text the gateway reads: compact JSON.
pub fn to_text(cfg: &Config) -> Result<String, String> {
    serde_json::to_string(cfg).map_err(|e| format!("cannot serialize the gateway config: {e}"))
}

/// Runs the gateway's own loader on the text, with stand-ins for the variables ECS provides.
/// Returns the config's fingerprint (hex SHA-256 of its canonical form).
pub fn check(text: &str) -> Result<String, String> {
    let filler = "x".repeat(48);
    let env = MapEnv::new()
        .with_var(config::PG_HOST_VAR, "db.internal")
        .with_var("GATEWAY_JWT_SECRET", &filler)
        .with_var("GATEWAY_JWT_SECRET_PREVIOUS", &filler)
        .with_var("OIDC_CLIENT_SECRET", &filler)
        .with_var("GATEWAY_ADMIN_WRITE_KEY", &filler)
        .with_var("GATEWAY_ADMIN_READ_KEY", &filler)
        .with_var(WEBHOOK_VAR, PLANNED_WEBHOOK_URL);
    config::load(text, &env).map(|l| l.sha256).map_err(|e| {
        let mut msg = String::from("the rendered gateway config is invalid:");
        for i in &e.issues {
            msg.push_str(&format!("\n  {i}"));
        }
        msg
    })
}

/// Splits the text into the four parameter values, each at most [`PART_BYTES`], never inside a
/// UTF-8 character. Fails when it does not fit.
pub fn split(text: &str) -> Result<[String; PARTS], String> {
    let mut parts: [String; PARTS] = Default::default();
    let mut rest = text;
    for part in parts.iter_mut() {
        let mut cut = rest.len().min(PART_BYTES);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        *part = rest[..cut].to_owned();
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        return Err(format!(
            "the rendered gateway config is {} bytes, over the {CHANNEL_BYTES}-byte budget of GatewayConfigPart1..{PARTS}",
            text.len()
        ));
    }
    Ok(parts)
}

/// A rendered, checked and split config.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Compact JSON text.
    pub text: String,
    /// The gateway's fingerprint of it.
    pub sha256: String,
    /// The four parameter values.
    pub parts: [String; PARTS],
}

impl Rendered {
    /// Bytes used.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }
    /// One line: `1,234 / 16,384 bytes (8%) in 1 of 4 parameters`.
    pub fn budget_line(&self) -> String {
        let used = self.parts.iter().filter(|p| !p.is_empty()).count();
        format!(
            "{} / {} bytes ({}%) in {used} of {PARTS} parameters of {PART_BYTES} bytes",
            self.bytes(),
            CHANNEL_BYTES,
            self.bytes() * 100 / CHANNEL_BYTES
        )
    }
}

/// Builds, serializes, validates and splits the config. Problems the `aws_access` section causes
/// name the file `AWS_ACCESS_CONFIG` gave it from.
pub fn render(p: &Profile, idp: &IdentityFacts) -> Result<Rendered, String> {
    let cfg = build(p, idp)?;
    let text = to_text(&cfg)?;
    let from_file = |e: String| match &p.aws_access {
        Some(f) => format!(
            "{e}\n  (the aws_access section comes from AWS_ACCESS_CONFIG {})",
            f.path.display()
        ),
        None => e,
    };
    let sha256 = check(&text).map_err(|e| {
        if e.contains("\n  aws_access") {
            from_file(e)
        } else {
            e
        }
    })?;
    let parts = split(&text).map_err(from_file)?;
    Ok(Rendered {
        text,
        sha256,
        parts,
    })
}
