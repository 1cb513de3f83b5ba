//! Cross-field rules of gateway.yaml, checked after typed parsing and before anything binds a port.
//!
//! Each rule pushes an [`Issue`] naming the offending location; all rules run, so an operator sees
//! every problem at once.

use std::collections::HashSet;
use std::net::IpAddr;

use url::Url;

use super::env::Env;
use super::error::Issue;
use super::net::{is_loopback_host, is_metadata_host, parse_cidr, parse_proxy};
use super::schema::*;

/// Set to allow loopback addresses in operator URLs (IdP, upstreams, telemetry), for local runs.
pub const ALLOW_LOOPBACK_VAR: &str = "CLAUDE_GATEWAY_ALLOW_LOOPBACK";
/// The variable whose presence lets `store.postgres_url` be assembled from parts.
pub const PG_HOST_VAR: &str = "GATEWAY_PG_HOST";

struct Ctx<'a> {
    issues: Vec<Issue>,
    allow_loopback: bool,
    env: &'a dyn Env,
}

impl Ctx<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(path, message));
    }
}

/// Checks every cross-field rule and returns the issues found.
pub fn validate(cfg: &Config, env: &dyn Env) -> Vec<Issue> {
    let mut cx = Ctx {
        issues: Vec::new(),
        allow_loopback: env.flag(ALLOW_LOOPBACK_VAR),
        env,
    };
    listen(&mut cx, &cfg.listen);
    match (&cfg.oidc, cri_enabled(cfg)) {
        (_, true) => cx.err(
            "cri.enabled",
            "customer-routed inference is not supported by this gateway",
        ),
        (Some(oidc), false) => self::oidc(&mut cx, oidc),
        (None, false) => cx.err("oidc", "required"),
    }
    session(&mut cx, &cfg.session);
    store(&mut cx, &cfg.store);
    upstreams(&mut cx, &cfg.upstreams);
    models(&mut cx, cfg);
    if let Some(m) = &cfg.managed {
        managed(&mut cx, m);
    }
    if let Some(t) = &cfg.telemetry {
        telemetry(&mut cx, t, cfg.listen.public_url.is_some());
    }
    if let Some(a) = &cfg.admin {
        admin(&mut cx, a);
    }
    if cfg.enforcement.fail_closed_on_error && cfg.admin.is_none() {
        cx.err(
            "enforcement.fail_closed_on_error",
            "requires an admin block (spend enforcement is off without one)",
        );
    }
    if let Some(p) = &cfg.pricing {
        pricing(&mut cx, p, cfg);
    }
    access_control(&mut cx, &cfg.access_control);
    limits(&mut cx, cfg);
    if let Some(a) = &cfg.aws_access {
        cx.issues.extend(super::aws_access::check(a));
    }
    if let Some(notice) = &cfg.login_notice {
        let n = notice.chars().count();
        if n == 0 || n > 500 {
            cx.err("login_notice", "must be 1 to 500 characters");
        }
    }
    if let Some(k) = cfg.audit.as_ref().and_then(|a| a.prompt_hash_key.as_ref()) {
        if k.expose().chars().count() < 32 {
            cx.err("audit.prompt_hash_key", "must be at least 32 characters");
        }
    }
    if cfg.load_test_mode.as_ref().is_some_and(|l| l.enabled) {
        cx.err(
            "load_test_mode.enabled",
            "load-test mode is not supported by this gateway (use the benchmark in the repository instead)",
        );
    }
    cx.issues
}

fn cri_enabled(cfg: &Config) -> bool {
    cfg.cri
        .as_ref()
        .and_then(|c| c.get("enabled"))
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
}

fn listen(cx: &mut Ctx, l: &Listen) {
    let loopback_bind = is_loopback_host(&l.host);
    if l.host.parse::<IpAddr>().is_err() && l.host != "localhost" {
        cx.err("listen.host", "must be an IP address or localhost");
    }
    match &l.public_url {
        None if !loopback_bind => cx.err(
            "listen.public_url",
            "required when listen.host is not a loopback address: the gateway never derives its own origin from request headers",
        ),
        None => {}
        Some(u) => match origin(u) {
            Err(e) => cx.err("listen.public_url", e),
            Ok(url) => {
                let host = url.host_str().unwrap_or_default();
                if url.scheme() == "http" && !is_loopback_host(host) {
                    cx.err(
                        "listen.public_url",
                        "must be https:// (plain http is accepted only for a loopback host)",
                    );
                }
            }
        },
    }
    if let Some(tls) = &l.tls {
        for (k, v) in [("cert", &tls.cert), ("key", &tls.key)] {
            if v.trim().is_empty() {
                cx.err(format!("listen.tls.{k}"), "must be a file path");
            }
        }
    }
    for (i, p) in l.trusted_proxies.iter().enumerate() {
        if parse_proxy(p).is_none() {
            cx.err(
                format!("listen.trusted_proxies[{i}]"),
                format!("{p:?} is not an IP address or CIDR"),
            );
        }
    }
}

/// Parses a bare origin: http(s), a host, optional port, no path, query or fragment.
pub fn origin(raw: &str) -> Result<Url, String> {
    let trimmed = raw.trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw:?} must be an http(s) URL"));
    }
    if url.host_str().is_none() {
        return Err(format!("{raw:?} has no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{raw:?} must be an origin (scheme, host and port only, no path)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?} must not carry credentials"));
    }
    Ok(url)
}

/// Checks an outbound URL against the SSRF rules: http(s), no metadata endpoint, loopback only when
/// allowed. Returns the message for the location.
fn outbound_url(cx: &Ctx, raw: &str, https_only: bool) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw:?} must be an http(s) URL"));
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    if host.is_empty() {
        return Err(format!("{raw:?} has no host"));
    }
    if is_metadata_host(&host) {
        return Err(format!("{raw:?} targets a cloud metadata endpoint"));
    }
    let loopback = is_loopback_host(&host);
    if loopback && !cx.allow_loopback {
        return Err(format!(
            "{raw:?} targets a loopback address; set {ALLOW_LOOPBACK_VAR}=1 for local runs"
        ));
    }
    if https_only && url.scheme() == "http" && !loopback {
        return Err(format!("{raw:?} must be https:// (http only for loopback)"));
    }
    Ok(url)
}

const RESERVED_AUTH_PARAMS: &[&str] = &[
    "state",
    "nonce",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "scope",
    "response_type",
    "response_mode",
    "client_id",
];

fn oidc(cx: &mut Ctx, o: &Oidc) {
    if let Err(e) = outbound_url(cx, &o.issuer, false) {
        cx.err("oidc.issuer", e);
    }
    if o.client_id.trim().is_empty() {
        cx.err("oidc.client_id", "must not be empty");
    }
    let method = o.token_endpoint_auth_method.as_deref();
    match method {
        None | Some("client_secret_basic") | Some("client_secret_post") => {
            if o.client_secret
                .as_ref()
                .is_none_or(|s| s.expose().is_empty())
            {
                cx.err("oidc.client_secret", "required");
            }
        }
        // Accepted by the schema so that a configuration written for it says what is missing
        // here, rather than failing to parse; sign-in would otherwise send no credential at all.
        Some("private_key_jwt") => cx.err(
            "oidc.token_endpoint_auth_method",
            "private_key_jwt is not supported by this gateway: use client_secret_basic or client_secret_post with oidc.client_secret",
        ),
        Some(other) => cx.err(
            "oidc.token_endpoint_auth_method",
            format!(
                "{other:?} is not one of client_secret_basic, client_secret_post, private_key_jwt"
            ),
        ),
    }
    if !o.scopes.iter().any(|s| s == "openid") {
        cx.err("oidc.scopes", "must include openid");
    }
    if let Some(d) = &o.discovery_url {
        if !d.contains("/.well-known/") {
            cx.err("oidc.discovery_url", "the path must contain /.well-known/");
        } else if let Err(e) = outbound_url(cx, d, false) {
            cx.err("oidc.discovery_url", e);
        }
    }
    for k in o.extra_auth_params.keys() {
        if RESERVED_AUTH_PARAMS.contains(&k.as_str()) {
            cx.err(
                format!("oidc.extra_auth_params.{k}"),
                "is set by the gateway and cannot be overridden",
            );
        }
    }
    for (i, d) in o.allowed_email_domains.iter().flatten().enumerate() {
        let norm = d.trim().trim_start_matches('@');
        if norm.is_empty() || norm.contains(['@', ',', ' ']) {
            cx.err(
                format!("oidc.allowed_email_domains[{i}]"),
                format!("{d:?} is not a domain"),
            );
        }
    }
    for (i, g) in o.allowed_groups.iter().flatten().enumerate() {
        if g.is_empty() {
            cx.err(format!("oidc.allowed_groups[{i}]"), "must not be empty");
        }
    }
    if o.groups_claim.is_empty() {
        cx.err("oidc.groups_claim", "must not be empty");
    }
    if o.email_claim.to_vec().iter().any(String::is_empty) {
        cx.err("oidc.email_claim", "must not be empty");
    }
    let alg = o.id_token_signed_response_alg.as_str();
    let known = ["RS", "PS", "ES"]
        .iter()
        .any(|p| alg.starts_with(p) && matches!(&alg[2..], "256" | "384" | "512"))
        || alg == "EdDSA";
    if !known {
        cx.err(
            "oidc.id_token_signed_response_alg",
            format!("{alg:?} is not an asymmetric JWS algorithm (RS*, PS*, ES*, EdDSA)"),
        );
    }
    for (i, origin_str) in o.form_action_origins.iter().enumerate() {
        if let Err(e) = origin(origin_str) {
            cx.err(format!("oidc.form_action_origins[{i}]"), e);
        }
    }
    if let Some(pem) = &o.ca_cert_pem {
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            cx.err(
                "oidc.ca_cert_pem",
                "must be PEM certificate content (use ${file:/path} to load a file)",
            );
        }
    }
    if o.google_groups.is_some() {
        cx.err(
            "oidc.google_groups",
            "Google Workspace group lookup is not supported by this gateway",
        );
    }
}

fn session(cx: &mut Ctx, s: &Session) {
    let secrets = s.jwt_secret.to_vec();
    if secrets.is_empty() {
        cx.err("session.jwt_secret", "must hold at least one secret");
    }
    for (i, secret) in secrets.iter().enumerate() {
        if secret.expose().chars().count() < 32 {
            let path = match s.jwt_secret {
                OneOrMany::One(_) => "session.jwt_secret".to_owned(),
                OneOrMany::Many(_) => format!("session.jwt_secret[{i}]"),
            };
            cx.err(path, "must be at least 32 characters");
        }
    }
    if !(s.ttl_hours > 0.0 && s.ttl_hours <= 24.0 * 90.0) {
        cx.err("session.ttl_hours", "must be more than 0 and at most 2160");
    }
}

fn store(cx: &mut Ctx, s: &Store) {
    match &s.postgres_url {
        None if cx.env.var(PG_HOST_VAR).is_none() => cx.err(
            "store.postgres_url",
            format!("required (or set {PG_HOST_VAR} and the other GATEWAY_PG_* variables)"),
        ),
        None => {}
        Some(u) => {
            let u = u.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                cx.err(
                    "store.postgres_url",
                    "must be a postgres:// or postgresql:// URL",
                );
            } else if Url::parse(u).is_err() {
                cx.err(
                    "store.postgres_url",
                    "is not a valid URL (percent-encode special characters in the password, or use store.password)",
                );
            }
        }
    }
    if s.max_connections == 0 || s.max_connections > 1000 {
        cx.err("store.max_connections", "must be 1 to 1000");
    }
    if !(1..=60).contains(&s.connect_timeout_seconds) {
        cx.err("store.connect_timeout_seconds", "must be 1 to 60");
    }
    if s.readiness_grace_seconds > 3600 {
        cx.err("store.readiness_grace_seconds", "must be 0 to 3600");
    }
    if !(1..=600_000).contains(&s.statement_timeout_ms) {
        cx.err("store.statement_timeout_ms", "must be 1 to 600000");
    }
}

/// Which keys of an upstream entry belong to which provider.
fn allowed_keys(p: Provider) -> (&'static [&'static str], &'static [&'static str]) {
    match p {
        Provider::Anthropic => (
            &["forward_user_identity"],
            &[
                "api_key",
                "oauth_token",
                "federation_rule_id",
                "organization_id",
                "identity_token_file",
                "service_account_id",
                "workspace_id",
            ],
        ),
        Provider::Bedrock => (
            &["region", "assume_role", "guardrail", "guardrail_trace"],
            &[
                "aws_access_key_id",
                "aws_secret_access_key",
                "aws_session_token",
                "aws_bearer_token",
            ],
        ),
        _ => (&[], &[]),
    }
}

fn present_keys(u: &Upstream) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut add = |present: bool, k: &'static str| {
        if present {
            keys.push(k);
        }
    };
    add(u.forward_user_identity.is_some(), "forward_user_identity");
    add(u.region.is_some(), "region");
    add(u.assume_role.is_some(), "assume_role");
    add(u.guardrail.is_some(), "guardrail");
    add(u.guardrail_trace.is_some(), "guardrail_trace");
    add(u.workspace_id.is_some(), "workspace_id");
    add(u.project_id.is_some(), "project_id");
    add(u.location.is_some(), "location");
    add(u.resource.is_some(), "resource");
    keys
}

fn present_auth_keys(a: &UpstreamAuth) -> Vec<&'static str> {
    let pairs: [(bool, &'static str); 14] = [
        (a.api_key.is_some(), "api_key"),
        (a.oauth_token.is_some(), "oauth_token"),
        (a.federation_rule_id.is_some(), "federation_rule_id"),
        (a.organization_id.is_some(), "organization_id"),
        (a.identity_token_file.is_some(), "identity_token_file"),
        (a.service_account_id.is_some(), "service_account_id"),
        (a.workspace_id.is_some(), "workspace_id"),
        (a.aws_access_key_id.is_some(), "aws_access_key_id"),
        (a.aws_secret_access_key.is_some(), "aws_secret_access_key"),
        (a.aws_session_token.is_some(), "aws_session_token"),
        (a.aws_bearer_token.is_some(), "aws_bearer_token"),
        (a.service_account_json.is_some(), "service_account_json"),
        (a.access_token.is_some(), "access_token"),
        (a.use_azure_ad.is_some(), "use_azure_ad"),
    ];
    pairs
        .into_iter()
        .filter(|(p, _)| *p)
        .map(|(_, k)| k)
        .collect()
}

const RESERVED_HEADER_PREFIXES: &[&str] = &[
    "anthropic-",
    "x-stainless-",
    "x-claude-gateway-",
    "x-goog-",
    "x-amz-",
    "content-",
    "sec-",
    "proxy-",
];
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "host",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
    "cookie",
    "user-agent",
    "x-forwarded-for",
];

fn upstreams(cx: &mut Ctx, ups: &[Upstream]) {
    if ups.is_empty() {
        cx.err("upstreams", "at least one upstream is required");
        return;
    }
    let mut names = HashSet::new();
    for (i, u) in ups.iter().enumerate() {
        let at = format!("upstreams[{i}]");
        if !names.insert(u.name()) {
            cx.err(
                "upstreams",
                format!(
                    "two upstreams are named {:?}: give each a distinct name",
                    u.name()
                ),
            );
        }
        if u.name().is_empty() {
            cx.err(format!("{at}.name"), "must not be empty");
        }
        if !matches!(u.provider, Provider::Anthropic | Provider::Bedrock) {
            cx.err(
                format!("{at}.provider"),
                format!(
                    "provider {} is not supported by this gateway (it serves bedrock and anthropic)",
                    u.provider.as_str()
                ),
            );
            continue;
        }
        let (keys, auth_keys) = allowed_keys(u.provider);
        for k in present_keys(u) {
            if !keys.contains(&k) {
                cx.err(
                    format!("{at}.{k}"),
                    format!("not a key of provider {}", u.provider.as_str()),
                );
            }
        }
        let auth = u.auth.clone().unwrap_or_default();
        let present = present_auth_keys(&auth);
        for k in &present {
            if !auth_keys.contains(k) {
                cx.err(
                    format!("{at}.auth.{k}"),
                    format!("not an auth key of provider {}", u.provider.as_str()),
                );
            }
        }
        match u.provider {
            Provider::Anthropic => anthropic_upstream(cx, &at, u, &auth, &present),
            Provider::Bedrock => bedrock_upstream(cx, &at, u, &auth),
            _ => {}
        }
        if let Some(b) = &u.base_url {
            if let Err(e) = outbound_url(cx, b, false) {
                cx.err(format!("{at}.base_url"), e);
            }
        }
        for name in u.headers.keys() {
            let lower = name.to_ascii_lowercase();
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                cx.err(format!("{at}.headers.{name}"), "is not a valid header name");
            } else if RESERVED_HEADERS.contains(&lower.as_str())
                || RESERVED_HEADER_PREFIXES
                    .iter()
                    .any(|p| lower.starts_with(p))
            {
                cx.err(
                    format!("{at}.headers.{name}"),
                    "is reserved: the gateway sets it itself",
                );
            }
        }
        for (j, v) in u.headers.values().enumerate() {
            if http::HeaderValue::from_str(v).is_err() {
                cx.err(format!("{at}.headers[{j}]"), "is not a valid header value");
            }
        }
    }
}

fn anthropic_upstream(cx: &mut Ctx, at: &str, u: &Upstream, auth: &UpstreamAuth, present: &[&str]) {
    let modes = [
        auth.api_key.is_some(),
        auth.oauth_token.is_some(),
        auth.federation_rule_id.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if modes != 1 {
        cx.err(
            format!("{at}.auth"),
            "set exactly one of api_key, oauth_token or federation_rule_id",
        );
    }
    if auth.federation_rule_id.is_some() {
        cx.err(
            format!("{at}.auth.federation_rule_id"),
            "workload identity federation is not supported by this gateway",
        );
    } else if present.iter().any(|k| {
        matches!(
            *k,
            "organization_id" | "identity_token_file" | "service_account_id" | "workspace_id"
        )
    }) {
        cx.err(
            format!("{at}.auth"),
            "federation keys need federation_rule_id",
        );
    }
    if u.forward_user_identity == Some(true) {
        let host = u
            .base_url
            .as_deref()
            .and_then(|b| Url::parse(b).ok())
            .and_then(|b| b.host_str().map(str::to_owned));
        match host {
            None => cx.err(
                format!("{at}.forward_user_identity"),
                "needs a base_url that is not the Anthropic API",
            ),
            Some(h) if h.ends_with("anthropic.com") || h.ends_with(".api.aws") => cx.err(
                format!("{at}.forward_user_identity"),
                "must not send identity headers to an official Anthropic endpoint",
            ),
            Some(_) => {}
        }
    }
}

fn bedrock_upstream(cx: &mut Ctx, at: &str, u: &Upstream, auth: &UpstreamAuth) {
    match &u.region {
        None => cx.err(format!("{at}.region"), "required for provider bedrock"),
        Some(r) if !valid_region(r) => cx.err(
            format!("{at}.region"),
            format!("{r:?} is not an AWS region"),
        ),
        Some(_) => {}
    }
    let id = auth.aws_access_key_id.is_some();
    let secret = auth.aws_secret_access_key.is_some();
    if id != secret {
        cx.err(
            format!("{at}.auth"),
            "aws_access_key_id and aws_secret_access_key go together",
        );
    }
    if auth.aws_session_token.is_some() && !id {
        cx.err(
            format!("{at}.auth.aws_session_token"),
            "needs aws_access_key_id and aws_secret_access_key",
        );
    }
    if auth.aws_bearer_token.is_some() && id {
        cx.err(
            format!("{at}.auth"),
            "set either aws_bearer_token or access keys, not both",
        );
    }
    if let Some(r) = &u.assume_role {
        if !r.role_arn.starts_with("arn:") || !r.role_arn.contains(":role/") {
            cx.err(
                format!("{at}.assume_role.role_arn"),
                "must be an IAM role ARN",
            );
        }
        if let Some(s) = &r.session_name {
            if s != "email" && s != "sub" {
                cx.err(
                    format!("{at}.assume_role.session_name"),
                    "must be email or sub",
                );
            }
        }
    }
    if u.guardrail.is_some() {
        cx.err(
            format!("{at}.guardrail"),
            "Bedrock guardrails are not supported by this gateway yet",
        );
    }
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && r.contains('-')
}

fn models(cx: &mut Ctx, cfg: &Config) {
    let Some(models) = &cfg.models else { return };
    if models.is_empty() {
        cx.err("models", "must list at least one model when present");
    }
    let names: HashSet<&str> = cfg.upstreams.iter().map(Upstream::name).collect();
    let mut ids = HashSet::new();
    for (i, m) in models.iter().enumerate() {
        if m.id.trim().is_empty() {
            cx.err(format!("models[{i}].id"), "must not be empty");
        }
        if !ids.insert(m.id.as_str()) {
            cx.err(
                format!("models[{i}].id"),
                format!("{:?} is listed twice", m.id),
            );
        }
        for (up, target) in &m.upstream_model {
            if !names.contains(up.as_str()) {
                cx.err(
                    format!("models[{i}].upstream_model.{up}"),
                    "matches no upstream name",
                );
            }
            if target.trim().is_empty() {
                cx.err(
                    format!("models[{i}].upstream_model.{up}"),
                    "must not be empty",
                );
            }
        }
    }
}

fn managed(cx: &mut Ctx, m: &Managed) {
    if let Some(s) = &m.settings {
        if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s).is_err() {
            cx.err("managed.settings", "must be a JSON object");
        }
    }
    let uses_code = m.policies.iter().any(|p| p.code.is_some());
    for (i, p) in m.policies.iter().enumerate() {
        let at = format!("managed.policies[{i}]");
        if let Some(groups) = &p.matcher.groups {
            if groups.is_empty() {
                cx.err(
                    format!("{at}.match.groups"),
                    "must not be empty (omit it to match everyone)",
                );
            }
            for (j, g) in groups.iter().enumerate() {
                if g.trim().is_empty() {
                    cx.err(format!("{at}.match.groups[{j}]"), "must not be empty");
                }
            }
        }
        if let Some(d) = &p.matcher.email_domain {
            let norm = d.trim().trim_start_matches('@');
            if norm.is_empty() || norm.contains(['@', ',']) || norm.contains(char::is_whitespace) {
                cx.err(
                    format!("{at}.match.email_domain"),
                    format!("{d:?} is not a domain"),
                );
            }
        }
        if p.cli.is_some() && p.settings.is_some() {
            cx.err(
                format!("{at}.settings"),
                "set cli or its older name settings, not both",
            );
        }
        if uses_code && (p.cli.is_some() || p.settings.is_some()) {
            cx.err(
                format!("{at}.cli"),
                "code and cli are exclusive across the file: use one of them",
            );
        }
        for (key, doc) in [
            ("cli", &p.cli),
            ("settings", &p.settings),
            ("code", &p.code),
        ] {
            if let Some(doc) = doc {
                for (path, message) in crate::policy::check::check_settings(doc) {
                    cx.err(format!("{at}.{key}{path}"), message);
                }
            }
        }
        if let Some(desktop) = &p.desktop {
            for (path, message) in crate::policy::check::check_desktop(desktop) {
                cx.err(format!("{at}.desktop{path}"), message);
            }
        }
        for (j, t) in p.deny_tools.iter().enumerate() {
            if t.trim().is_empty() || t.contains('(') {
                cx.err(format!("{at}.deny_tools[{j}]"), "must be a bare tool name");
            }
        }
    }
}

fn telemetry(cx: &mut Ctx, t: &Telemetry, has_public_url: bool) {
    for (i, f) in t.forward_to.iter().enumerate() {
        if let Err(e) = outbound_url(cx, &f.url, true) {
            cx.err(format!("telemetry.forward_to[{i}].url"), e);
        }
        if f.auth.is_some() {
            cx.err(
                format!("telemetry.forward_to[{i}].auth"),
                "Google Cloud export credentials are not supported by this gateway",
            );
        }
        for (name, value) in &f.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value.expose()).is_err()
            {
                cx.err(
                    format!("telemetry.forward_to[{i}].headers.{name}"),
                    "is not a valid header",
                );
            }
        }
    }
    if let Some(e) = &t.export {
        if let Err(msg) = outbound_url(cx, &e.endpoint, true) {
            cx.err("telemetry.export.endpoint", msg);
        }
        if e.interval_seconds == 0 {
            cx.err("telemetry.export.interval_seconds", "must be at least 1");
        }
    }
    if !t.forward_to.is_empty() && !has_public_url {
        cx.err(
            "listen.public_url",
            "required with telemetry.forward_to (clients are told to export to it)",
        );
    }
    for k in t.resource_attributes.keys() {
        let ok = !k.is_empty()
            && k.len() <= 255
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        let reserved = [
            "service.name",
            "service.version",
            "claude.deployment_mode",
            "host.arch",
            "os.type",
            "os.version",
            "wsl.version",
        ]
        .contains(&k.as_str())
            || ["enduser.", "user.", "identity."]
                .iter()
                .any(|p| k.starts_with(p));
        if !ok || reserved {
            cx.err(
                format!("telemetry.resource_attributes.{k}"),
                "is not an allowed attribute name",
            );
        }
    }
}

fn admin(cx: &mut Ctx, a: &Admin) {
    let mut ids = HashSet::new();
    for (list, keys) in [("write_keys", &a.write_keys), ("read_keys", &a.read_keys)] {
        for (i, k) in keys.iter().enumerate() {
            if k.id.trim().is_empty() {
                cx.err(format!("admin.{list}[{i}].id"), "must not be empty");
            }
            if !ids.insert(k.id.as_str()) {
                cx.err(
                    format!("admin.{list}[{i}].id"),
                    format!("{:?} is used twice", k.id),
                );
            }
            if k.key.expose().chars().count() < 32 {
                cx.err(
                    format!("admin.{list}[{i}].key"),
                    "must be at least 32 characters",
                );
            }
        }
    }
    for (i, g) in a.admin_groups.iter().enumerate() {
        if g.trim().is_empty() {
            cx.err(format!("admin.admin_groups[{i}]"), "must not be empty");
        }
    }
    for (k, v) in [
        ("audit_retention_days", a.audit_retention_days),
        ("spend_retention_months", a.spend_retention_months),
        ("identity_retention_days", a.identity_retention_days),
    ] {
        if v == 0 {
            cx.err(format!("admin.{k}"), "must be at least 1");
        }
    }
    if let Some(tag) = &a.billing_group_tag {
        let ok = (1..=64).contains(&tag.len())
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:/=+-@".contains(&b))
            && !tag.starts_with("anthropic");
        if !ok {
            cx.err(
                "admin.billing_group_tag",
                "must be 1 to 64 of A-Z a-z 0-9 _.:/=+-@, not starting with anthropic",
            );
        }
    }
}

fn pricing(cx: &mut Ctx, p: &Pricing, cfg: &Config) {
    let has_policies = cfg.managed.as_ref().is_some_and(|m| !m.policies.is_empty());
    if cfg.admin.is_none() && !has_policies {
        cx.err(
            "pricing",
            "requires an admin block or at least one managed policy",
        );
    }
    if !(p.multiplier > 0.0 && p.multiplier <= 10.0) {
        cx.err("pricing.multiplier", "must be more than 0 and at most 10");
    }
    let names: HashSet<&str> = cfg.upstreams.iter().map(Upstream::name).collect();
    let mut seen = HashSet::new();
    for (i, o) in p.overrides.iter().enumerate() {
        let at = format!("pricing.overrides[{i}]");
        if !names.contains(o.upstream.as_str()) {
            cx.err(
                format!("{at}.upstream"),
                format!("{:?} matches no upstream name", o.upstream),
            );
        }
        if !seen.insert((o.upstream.as_str(), o.model.to_ascii_lowercase())) {
            cx.err(
                format!("{at}.model"),
                "this upstream and model are priced twice",
            );
        }
        for (k, v) in [
            ("input", o.input),
            ("output", o.output),
            ("cache_read", o.cache_read),
            ("cache_write", o.cache_write),
        ] {
            if !(v > 0.0 && v <= 10_000.0) {
                cx.err(
                    format!("{at}.{k}"),
                    "must be more than 0 and at most 10000 (USD per million tokens)",
                );
            }
        }
    }
}

fn access_control(cx: &mut Ctx, a: &AccessControl) {
    for (list, entries) in [
        ("allow_cidrs", &a.allow_cidrs),
        ("deny_cidrs", &a.deny_cidrs),
    ] {
        for (i, c) in entries.iter().enumerate() {
            if parse_cidr(c).is_none() {
                cx.err(
                    format!("access_control.{list}[{i}]"),
                    format!("{c:?} is not an IP address or CIDR"),
                );
            }
        }
    }
}

fn limits(cx: &mut Ctx, cfg: &Config) {
    let l = &cfg.limits;
    if l.max_request_bytes == 0 {
        cx.err("limits.max_request_bytes", "must be at least 1");
    }
    if l.max_request_header_bytes == Some(0) {
        cx.err("limits.max_request_header_bytes", "must be at least 1");
    }
    if l.max_url_length == Some(0) {
        cx.err("limits.max_url_length", "must be at least 1");
    }
    for (k, v) in [
        ("max_form_bytes", l.max_form_bytes),
        ("max_admin_body_bytes", l.max_admin_body_bytes),
        ("max_telemetry_bytes", l.max_telemetry_bytes),
    ] {
        if v == 0 {
            cx.err(format!("limits.{k}"), "must be at least 1");
        }
    }
    if l.max_telemetry_bytes > 1 << 30 {
        cx.err("limits.max_telemetry_bytes", "must be at most 1 GiB");
    }
    if l.telemetry_in_flight_bytes < l.max_telemetry_bytes {
        cx.err(
            "limits.telemetry_in_flight_bytes",
            "must be at least limits.max_telemetry_bytes",
        );
    }
    for (k, v) in [
        ("body_read_timeout_seconds", l.body_read_timeout_seconds),
        (
            "small_body_read_timeout_seconds",
            l.small_body_read_timeout_seconds,
        ),
    ] {
        if !(1..=3600).contains(&v) {
            cx.err(format!("limits.{k}"), "must be between 1 and 3600");
        }
    }
    if cfg.timeouts.upstream_ttfb_ms == 0 {
        cx.err("timeouts.upstream_ttfb_ms", "must be at least 1");
    }
    if cfg.timeouts.stream_keepalive_ms < 100 {
        cx.err("timeouts.stream_keepalive_ms", "must be at least 100");
    }
    for (k, v) in [
        ("upstream_slot_wait_ms", cfg.timeouts.upstream_slot_wait_ms),
        ("spend_check_ms", cfg.timeouts.spend_check_ms),
    ] {
        if !(1..=600_000).contains(&v) {
            cx.err(format!("timeouts.{k}"), "must be 1 to 600000");
        }
    }
    if !(100..=3_600_000).contains(&cfg.timeouts.client_write_stall_ms) {
        cx.err("timeouts.client_write_stall_ms", "must be 100 to 3600000");
    }
    if !(100..=600_000).contains(&cfg.timeouts.client_header_read_ms) {
        cx.err("timeouts.client_header_read_ms", "must be 100 to 600000");
    }
    if cfg.timeouts.stream_idle_ms < 100 {
        cx.err("timeouts.stream_idle_ms", "must be at least 100");
    }
    if cfg.timeouts.upstream_response_ms == 0 {
        cx.err("timeouts.upstream_response_ms", "must be at least 1");
    }
    for (k, w) in [
        ("device_authorization", cfg.rate_limits.device_authorization),
        ("device_verify", cfg.rate_limits.device_verify),
        ("refresh", cfg.rate_limits.refresh),
    ] {
        if w.max == 0 {
            cx.err(format!("rate_limits.{k}.max"), "must be at least 1");
        }
        if w.window_seconds == 0 {
            cx.err(
                format!("rate_limits.{k}.window_seconds"),
                "must be at least 1",
            );
        }
    }
}
