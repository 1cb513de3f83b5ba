//! The typed shape of gateway.yaml: every section, key and documented default.
//!
//! Objects are strict (`deny_unknown_fields`), matching the Claude apps gateway. Cross-field rules
//! live in `validate.rs`; this file only says what may be written and what is assumed when it is not.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::lenient;

/// A string that must never appear in a log line: its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself: call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn yes() -> bool {
    true
}

/// The whole of gateway.yaml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Editor schema hint; ignored.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Where the gateway listens and how it is reached.
    pub listen: Listen,
    /// The company identity provider (required unless `cri.enabled`, which this gateway refuses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<Oidc>,
    /// Session tokens the gateway mints after sign-in.
    pub session: Session,
    /// The PostgreSQL store.
    pub store: Store,
    /// Inference upstreams, tried in order.
    pub upstreams: Vec<Upstream>,
    /// The operator's model catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<ModelEntry>>,
    /// Whether the built-in Claude catalog is served besides `models`.
    #[serde(default = "yes", deserialize_with = "lenient::de")]
    pub auto_include_builtin_models: bool,
    /// Managed settings and group policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<Managed>,
    /// Relay of the client's OpenTelemetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Telemetry>,
    /// Spend-limit Admin API and enforcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<Admin>,
    /// How enforcement behaves when the store fails.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// Contracted prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// Client IP allow and deny lists.
    #[serde(default)]
    pub access_control: AccessControl,
    /// Request size limits.
    #[serde(default)]
    pub limits: Limits,
    /// Upstream timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Sign-in rate limits.
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// A notice returned with device authorization and shown by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_notice: Option<String>,
    /// The reference gateway's load-test switch; parsed, and refused when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_test_mode: Option<LoadTestMode>,
    /// Extension: audit log options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditConfig>,
    /// Customer-routed inference (undocumented in the reference); parsed, refused when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cri: Option<Map<String, Json>>,
    /// Extension: AWS access for developers' agents, per project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_access: Option<super::aws_access::AwsAccess>,
}

/// `listen`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Bind address.
    #[serde(default = "Listen::default_host")]
    pub host: String,
    /// Bind port.
    #[serde(default = "Listen::default_port", deserialize_with = "lenient::de")]
    pub port: u16,
    /// The externally visible origin; required unless `host` is loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// TLS termination in the gateway itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Proxies whose `X-Forwarded-For` is believed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}

impl Listen {
    /// The gateway's public origin: `public_url` without a trailing slash, else
    /// `http(s)://<host>:<port>`.
    pub fn origin(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let host = if self.host.contains(':') {
                    format!("[{}]", self.host)
                } else {
                    self.host.clone()
                };
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{host}:{}", self.port)
            }
        }
    }

    fn default_host() -> String {
        "0.0.0.0".to_owned()
    }
    fn default_port() -> u16 {
        8080
    }
}

/// `listen.tls`: PEM file paths.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain, PEM.
    pub cert: String,
    /// Private key, PEM.
    pub key: String,
}

/// A string or a list of strings (`email_claim`, `session.jwt_secret`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// Several values, in order.
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `oidc`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oidc {
    /// The issuer URL; discovery is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The gateway's client id at the IdP.
    pub client_id: String,
    /// The confidential client's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Accepted email domains (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_email_domains: Option<Vec<String>>,
    /// Accepted groups (exact match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_groups: Option<Vec<String>>,
    /// Claim holding the groups: a flat key or an RFC 6901 JSON pointer.
    #[serde(default = "Oidc::default_groups_claim")]
    pub groups_claim: String,
    /// Claim(s) holding the email, first present wins.
    #[serde(default = "Oidc::default_email_claim")]
    pub email_claim: OneOrMany<String>,
    /// Claim holding the user id (default `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id_claim: Option<String>,
    /// Scopes requested at the IdP.
    #[serde(default = "Oidc::default_scopes")]
    pub scopes: Vec<String>,
    /// Send `scope` on refresh.
    #[serde(default, deserialize_with = "lenient::de")]
    pub scope_on_refresh: bool,
    /// Extra authorize-URL parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_auth_params: BTreeMap<String, String>,
    /// Fill missing email or groups from `/userinfo`.
    #[serde(default, deserialize_with = "lenient::de")]
    pub userinfo_fallback: bool,
    /// Extension: with `allowed_email_domains`, admit an email whose `email_verified` claim is
    /// absent (for an IdP that never sends it and only issues verified addresses). Off: an
    /// email the IdP does not say it verified does not pass a domain gate.
    #[serde(default, deserialize_with = "lenient::de")]
    pub accept_missing_email_verified: bool,
    /// PKCE S256.
    #[serde(default = "yes", deserialize_with = "lenient::de")]
    pub use_pkce: bool,
    /// Allowed clock skew for id_token times.
    #[serde(default, deserialize_with = "lenient::de")]
    pub clock_skew_seconds: u32,
    /// `client_secret_basic` or `client_secret_post`; `private_key_jwt` is refused as not
    /// supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Key for `private_key_jwt` (parsed, so that the refusal names the method, not this key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_assertion: Option<ClientAssertion>,
    /// Expected id_token signing algorithm.
    #[serde(default = "Oidc::default_alg")]
    pub id_token_signed_response_alg: String,
    /// Clients besides `client_id` whose id_tokens may sign in: accepted as the token's `azp`
    /// and among its audiences. An id_token whose `azp` names any other client is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_authorized_parties: Vec<String>,
    /// Discovery URL override; must contain `/.well-known/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// Route IdP calls through `HTTPS_PROXY` (honouring `NO_PROXY`); unset or `false`, they go
    /// straight to the IdP.
    #[serde(
        default,
        deserialize_with = "lenient::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub use_proxy: Option<bool>,
    /// Extra origins for the `/device` page's CSP `form-action`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub form_action_origins: Vec<String>,
    /// CA bundle (PEM content) trusted for IdP calls instead of the system store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_pem: Option<String>,
    /// Google Workspace group lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_groups: Option<GoogleGroups>,
}

impl Oidc {
    fn default_groups_claim() -> String {
        "groups".to_owned()
    }
    fn default_email_claim() -> OneOrMany<String> {
        OneOrMany::One("email".to_owned())
    }
    /// The scopes requested when `scopes` is not set.
    pub fn default_scopes() -> Vec<String> {
        ["openid", "profile", "email", "offline_access"]
            .map(str::to_owned)
            .to_vec()
    }
    fn default_alg() -> String {
        "RS256".to_owned()
    }
}

/// `oidc.client_assertion` (private_key_jwt).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAssertion {
    /// RSA private key, PEM.
    pub private_key_pem: Secret,
    /// The matching certificate, PEM.
    pub certificate_pem: String,
}

/// `oidc.google_groups`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleGroups {
    /// Service account key file.
    pub service_account_json_path: String,
    /// Admin to impersonate.
    pub admin_email: String,
}

/// `session`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// HS256 signing secret(s): the first signs, all verify.
    pub jwt_secret: OneOrMany<Secret>,
    /// Session token lifetime in hours.
    #[serde(default = "Session::default_ttl", deserialize_with = "lenient::de")]
    pub ttl_hours: f64,
}

impl Session {
    fn default_ttl() -> f64 {
        1.0
    }
}

/// `store`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// `postgres://` URL; when absent, assembled from the `GATEWAY_PG_*` variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_url: Option<Secret>,
    /// Overrides the URL's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Overrides the URL's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Connections per replica: a quarter of them (one to eight) are kept for spend lease grows,
    /// the rest pooled (at least one each).
    #[serde(
        default = "Store::default_max_connections",
        deserialize_with = "lenient::de"
    )]
    pub max_connections: u32,
    /// Connection timeout, 1 to 60 seconds.
    #[serde(
        default = "Store::default_connect_timeout",
        deserialize_with = "lenient::de"
    )]
    pub connect_timeout_seconds: u32,
    /// How long `/readyz` stays ready after the store stops answering, 0 to 3600 seconds.
    #[serde(default, deserialize_with = "lenient::de")]
    pub readiness_grace_seconds: u32,
    /// Extension: PostgreSQL's `statement_timeout` and `idle_in_transaction_session_timeout` on
    /// every pooled connection, 1 to 600000 ms.
    #[serde(
        default = "Store::default_statement_timeout",
        deserialize_with = "lenient::de"
    )]
    pub statement_timeout_ms: u32,
}

impl Store {
    fn default_max_connections() -> u32 {
        5
    }
    fn default_statement_timeout() -> u32 {
        5_000
    }
    fn default_connect_timeout() -> u32 {
        5
    }
}

/// Upstream provider kinds the reference knows. Only `anthropic` and `bedrock` are served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Provider {
    /// The Anthropic API (or anything speaking it).
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Amazon Bedrock runtime.
    #[serde(rename = "bedrock")]
    Bedrock,
    /// Claude Platform on AWS.
    #[serde(rename = "anthropicAws")]
    AnthropicAws,
    /// Claude on Google Cloud.
    #[serde(rename = "anthropicGoogleCloud")]
    AnthropicGoogleCloud,
    /// Google Vertex AI.
    #[serde(rename = "vertex")]
    Vertex,
    /// Microsoft Foundry.
    #[serde(rename = "foundry")]
    Foundry,
    /// Bedrock Mantle.
    #[serde(rename = "mantle")]
    Mantle,
}

impl Provider {
    /// The name as written in gateway.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::Bedrock => "bedrock",
            Provider::AnthropicAws => "anthropicAws",
            Provider::AnthropicGoogleCloud => "anthropicGoogleCloud",
            Provider::Vertex => "vertex",
            Provider::Foundry => "foundry",
            Provider::Mantle => "mantle",
        }
    }
}

/// One entry of `upstreams`. Keys of every provider kind are accepted here; `validate.rs` refuses
/// those that do not belong to the entry's provider, naming them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// The provider kind.
    pub provider: Provider,
    /// Unique name (defaults to the provider's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Credentials; `{}` means the provider's default chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<UpstreamAuth>,
    /// Endpoint override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Static headers sent upstream.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Models this upstream serves, when it serves only some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Groups allowed to use this upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// `anthropic` only: send the user's identity upstream.
    #[serde(
        default,
        deserialize_with = "lenient::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub forward_user_identity: Option<bool>,
    /// `bedrock`, `anthropicAws`, `vertex`: the region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `bedrock`: role to assume through STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<AssumeRole>,
    /// `bedrock`: guardrail applied to every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<Guardrail>,
    /// `bedrock`: guardrail trace mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail_trace: Option<Json>,
    /// `anthropicAws`, `anthropicGoogleCloud`: workspace id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// `vertex`, `anthropicGoogleCloud`: project id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// `anthropicGoogleCloud`: location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `foundry`: resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl Upstream {
    /// The upstream's name: `name`, or the provider's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.provider.as_str())
    }
}

/// `upstreams[].auth`: the keys of every provider; `validate.rs` checks which belong together.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamAuth {
    /// Anthropic API key (`x-api-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// Anthropic OAuth token (`Authorization: Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_token: Option<Secret>,
    /// Workload identity federation rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation_rule_id: Option<String>,
    /// Workload identity federation organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Workload identity token file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_token_file: Option<String>,
    /// Workload identity service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_id: Option<String>,
    /// Workload identity workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// AWS access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_access_key_id: Option<String>,
    /// AWS secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secret_access_key: Option<Secret>,
    /// AWS session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_session_token: Option<Secret>,
    /// Bedrock API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_bearer_token: Option<Secret>,
    /// Vertex service account file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_json: Option<String>,
    /// Vertex access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    /// Foundry: Azure AD credentials.
    #[serde(
        default,
        deserialize_with = "lenient::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub use_azure_ad: Option<bool>,
}

/// `upstreams[].assume_role` (bedrock).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssumeRole {
    /// The role to assume.
    pub role_arn: String,
    /// External id required by the role's trust policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<Secret>,
    /// Per-developer session name: `email` or `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
}

/// `upstreams[].guardrail` (bedrock).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guardrail {
    /// Guardrail id.
    pub id: String,
    /// Guardrail version.
    pub version: String,
    /// Input tagging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tagging: Option<Json>,
}

/// One entry of `models`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The id clients send.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Provider model id per upstream name.
    #[serde(default)]
    pub upstream_model: BTreeMap<String, String>,
}

/// `managed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Managed {
    /// Legacy single settings document (JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// `first_match` or `layered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_mode: Option<PolicyMode>,
    /// The policies, in order.
    #[serde(default)]
    pub policies: Vec<Policy>,
    /// Extension: enforce tool denials in the gateway as well as in the client (removes denied
    /// tools from requests and refuses replays of denied tool calls). Off unless turned on.
    #[serde(default, deserialize_with = "lenient::de")]
    pub enforce_tool_denials: bool,
    /// Extension: what a signed-in user no policy matches may do. `allow` (the default, as the
    /// reference): inference with no allowlist, no tool denials and no policy rate limits.
    /// `deny`: inference is refused with `403 permission_error`.
    #[serde(default, skip_serializing_if = "Unmatched::is_allow")]
    pub unmatched: Unmatched,
}

/// `managed.unmatched`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Served without any policy's limits.
    #[default]
    Allow,
    /// Refused.
    Deny,
}

impl Unmatched {
    fn is_allow(&self) -> bool {
        *self == Unmatched::Allow
    }
}

/// How matching policies combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// The first matching policy wins (merged onto the `match: {}` base).
    FirstMatch,
    /// Every matching policy is merged in order.
    Layered,
}

/// One entry of `managed.policies`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Who it applies to; `{}` matches everyone.
    #[serde(rename = "match")]
    pub matcher: PolicyMatch,
    /// A managed-settings document for the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli: Option<Map<String, Json>>,
    /// Older name of `cli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Map<String, Json>>,
    /// Settings shared by the CLI and Claude Desktop's Code tab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Map<String, Json>>,
    /// Claude Desktop managed keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desktop: Option<Map<String, Json>>,
    /// Serve this policy to Claude Desktop.
    #[serde(
        default,
        deserialize_with = "lenient::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub serve_to_desktop: Option<bool>,
    /// Extension: tool names the gateway denies for this policy, besides the bare names in
    /// `cli.permissions.deny` (enforced when `managed.enforce_tool_denials` is on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_tools: Vec<String>,
    /// Extension: inference rate limits for the users this policy matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<PolicyRateLimits>,
}

/// `managed.policies[].rate_limits` (extension): per user, and shared by everyone the policy
/// matches, with a stricter tier for requests that offer write-capable tools.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRateLimits {
    /// Limits for each user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<RateLimit>,
    /// Limits shared by all users of the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<RateLimit>,
    /// Limits for each user on requests that offer write-capable tools (Bash, Edit, Write, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_tools: Option<RateLimit>,
}

/// One set of inference rate limits; absent keys are unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per minute.
    #[serde(
        default,
        deserialize_with = "lenient::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub requests_per_minute: Option<u32>,
    /// Tokens (input + output) per minute.
    #[serde(
        default,
        deserialize_with = "lenient::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub tokens_per_minute: Option<u64>,
    /// Streams open at once.
    #[serde(
        default,
        deserialize_with = "lenient::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub concurrent_streams: Option<u32>,
}

/// `managed.policies[].match`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyMatch {
    /// Any of these groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// The user's email domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_domain: Option<String>,
}

/// `telemetry`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Relay destinations.
    #[serde(default)]
    pub forward_to: Vec<ForwardTo>,
    /// Fixed labels put on relayed telemetry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: BTreeMap<String, String>,
    /// Extension: where the gateway exports its own metrics and traces (OTLP/HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
}

/// `telemetry.export` (extension): the gateway's own OpenTelemetry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// OTLP/HTTP base URL; `/v1/metrics` and `/v1/traces` are appended.
    pub endpoint: String,
    /// Headers sent with every export.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    /// Seconds between metric exports.
    #[serde(default = "Export::default_interval", deserialize_with = "lenient::de")]
    pub interval_seconds: u32,
    /// Export metrics.
    #[serde(default = "yes", deserialize_with = "lenient::de")]
    pub metrics: bool,
    /// Export traces (one span per request).
    #[serde(default = "yes", deserialize_with = "lenient::de")]
    pub traces: bool,
}

impl Export {
    fn default_interval() -> u32 {
        60
    }
}

/// `telemetry.forward_to[]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardTo {
    /// Base URL; the signal path is appended.
    pub url: String,
    /// Headers added to relayed requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    /// Google Cloud credentials for the export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Json>,
    /// Relay metrics.
    #[serde(default = "yes", deserialize_with = "lenient::de")]
    pub metrics: bool,
    /// Relay logs.
    #[serde(default, deserialize_with = "lenient::de")]
    pub logs: bool,
    /// Relay traces.
    #[serde(default, deserialize_with = "lenient::de")]
    pub traces: bool,
}

/// `admin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Keys with read and write access.
    #[serde(default)]
    pub write_keys: Vec<AdminKey>,
    /// Keys with read access.
    #[serde(default)]
    pub read_keys: Vec<AdminKey>,
    /// IdP groups whose session token is a write admin.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// Appended to the spend-block message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_message: Option<String>,
    /// Retention of the admin audit trail.
    #[serde(
        default = "Admin::default_audit_days",
        deserialize_with = "lenient::de"
    )]
    pub audit_retention_days: u32,
    /// Retention of spend rows.
    #[serde(
        default = "Admin::default_spend_months",
        deserialize_with = "lenient::de"
    )]
    pub spend_retention_months: u32,
    /// Retention of last-seen identities.
    #[serde(
        default = "Admin::default_identity_days",
        deserialize_with = "lenient::de"
    )]
    pub identity_retention_days: u32,
    /// How caps of several groups combine.
    #[serde(default)]
    pub group_limit_mode: GroupLimitMode,
    /// Pooled-cap conflict rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooled_conflict_rule: Option<String>,
    /// Pooled-cap priority order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooled_priority_order: Option<Vec<String>>,
    /// Billing group tag put on session tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_group_tag: Option<String>,
}

impl Admin {
    /// The default of `audit_retention_days`.
    pub fn default_audit_days() -> u32 {
        365
    }
    fn default_spend_months() -> u32 {
        13
    }
    fn default_identity_days() -> u32 {
        90
    }
}

/// `admin.write_keys[]` / `admin.read_keys[]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminKey {
    /// Name used in the audit trail.
    pub id: String,
    /// The key, at least 32 characters.
    pub key: Secret,
}

/// `admin.group_limit_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupLimitMode {
    /// The lowest group cap applies.
    #[default]
    Min,
    /// The highest group cap applies.
    Max,
}

/// `enforcement`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enforcement {
    /// Refuse inference when the store cannot be asked.
    #[serde(default, deserialize_with = "lenient::de")]
    pub fail_closed_on_error: bool,
}

/// `pricing`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// Factor applied to every price.
    #[serde(
        default = "Pricing::default_multiplier",
        deserialize_with = "lenient::de"
    )]
    pub multiplier: f64,
    /// Contracted rates per upstream and model, USD per million tokens.
    #[serde(default)]
    pub overrides: Vec<PriceOverride>,
}

impl Pricing {
    fn default_multiplier() -> f64 {
        1.0
    }
}

/// `pricing.overrides[]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    /// Upstream name.
    pub upstream: String,
    /// Model id.
    pub model: String,
    /// Input tokens.
    #[serde(deserialize_with = "lenient::de")]
    pub input: f64,
    /// Output tokens.
    #[serde(deserialize_with = "lenient::de")]
    pub output: f64,
    /// Cache reads.
    #[serde(deserialize_with = "lenient::de")]
    pub cache_read: f64,
    /// Cache writes.
    #[serde(deserialize_with = "lenient::de")]
    pub cache_write: f64,
}

/// `access_control`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessControl {
    /// When non-empty, only these client addresses are served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_cidrs: Vec<String>,
    /// Client addresses always refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_cidrs: Vec<String>,
}

/// `limits`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body.
    #[serde(
        default = "Limits::default_max_request_bytes",
        deserialize_with = "lenient::de"
    )]
    pub max_request_bytes: u64,
    /// Largest total of request headers (name + value + 4 per header).
    #[serde(
        default,
        deserialize_with = "lenient::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_request_header_bytes: Option<u64>,
    /// Longest request target.
    #[serde(
        default,
        deserialize_with = "lenient::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_url_length: Option<u64>,
    /// Extension: largest body on the sign-in routes and every route not named below (forms of
    /// a few hundred bytes).
    #[serde(
        default = "Limits::default_max_form_bytes",
        deserialize_with = "lenient::de",
        skip_serializing_if = "Limits::is_default_max_form_bytes"
    )]
    pub max_form_bytes: u64,
    /// Extension: largest body on the Admin API (`/v1/organizations/...`).
    #[serde(
        default = "Limits::default_max_admin_body_bytes",
        deserialize_with = "lenient::de",
        skip_serializing_if = "Limits::is_default_max_admin_body_bytes"
    )]
    pub max_admin_body_bytes: u64,
    /// Extension: largest OTLP payload on `/v1/{metrics,logs,traces}`.
    #[serde(
        default = "Limits::default_max_telemetry_bytes",
        deserialize_with = "lenient::de",
        skip_serializing_if = "Limits::is_default_max_telemetry_bytes"
    )]
    pub max_telemetry_bytes: u64,
    /// Extension: total bytes of OTLP payloads held by the relay at once (received, not yet
    /// delivered); past it the client is answered `503` with `Retry-After`.
    #[serde(
        default = "Limits::default_telemetry_in_flight_bytes",
        deserialize_with = "lenient::de",
        skip_serializing_if = "Limits::is_default_telemetry_in_flight_bytes"
    )]
    pub telemetry_in_flight_bytes: u64,
    /// Extension: deadline for receiving a whole Messages API body (`408` after it).
    #[serde(
        default = "Limits::default_body_read_timeout",
        deserialize_with = "lenient::de",
        skip_serializing_if = "Limits::is_default_body_read_timeout"
    )]
    pub body_read_timeout_seconds: u64,
    /// Extension: deadline for receiving a whole body on every other route (`408` after it).
    #[serde(
        default = "Limits::default_small_body_read_timeout",
        deserialize_with = "lenient::de",
        skip_serializing_if = "Limits::is_default_small_body_read_timeout"
    )]
    pub small_body_read_timeout_seconds: u64,
}

impl Limits {
    fn default_max_request_bytes() -> u64 {
        32 * 1024 * 1024
    }
    fn default_max_form_bytes() -> u64 {
        16 * 1024
    }
    fn default_max_admin_body_bytes() -> u64 {
        64 * 1024
    }
    fn default_max_telemetry_bytes() -> u64 {
        4 * 1024 * 1024
    }
    fn default_telemetry_in_flight_bytes() -> u64 {
        64 * 1024 * 1024
    }
    fn default_body_read_timeout() -> u64 {
        120
    }
    fn default_small_body_read_timeout() -> u64 {
        15
    }
    // Defaults are left out of a serialized config (the deployer's rendered one stays small).
    fn is_default_max_form_bytes(v: &u64) -> bool {
        *v == Self::default_max_form_bytes()
    }
    fn is_default_max_admin_body_bytes(v: &u64) -> bool {
        *v == Self::default_max_admin_body_bytes()
    }
    fn is_default_max_telemetry_bytes(v: &u64) -> bool {
        *v == Self::default_max_telemetry_bytes()
    }
    fn is_default_telemetry_in_flight_bytes(v: &u64) -> bool {
        *v == Self::default_telemetry_in_flight_bytes()
    }
    fn is_default_body_read_timeout(v: &u64) -> bool {
        *v == Self::default_body_read_timeout()
    }
    fn is_default_small_body_read_timeout(v: &u64) -> bool {
        *v == Self::default_small_body_read_timeout()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: Self::default_max_request_bytes(),
            max_request_header_bytes: None,
            max_url_length: None,
            max_form_bytes: Self::default_max_form_bytes(),
            max_admin_body_bytes: Self::default_max_admin_body_bytes(),
            max_telemetry_bytes: Self::default_max_telemetry_bytes(),
            telemetry_in_flight_bytes: Self::default_telemetry_in_flight_bytes(),
            body_read_timeout_seconds: Self::default_body_read_timeout(),
            small_body_read_timeout_seconds: Self::default_small_body_read_timeout(),
        }
    }
}

/// `timeouts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Time allowed until an upstream's response headers.
    #[serde(default = "Timeouts::default_ttfb", deserialize_with = "lenient::de")]
    pub upstream_ttfb_ms: u64,
    /// Extension: silence on an upstream stream after which the gateway sends `event: ping`.
    #[serde(
        default = "Timeouts::default_keepalive",
        deserialize_with = "lenient::de"
    )]
    pub stream_keepalive_ms: u64,
    /// Extension: how long a request may wait for one of this replica's upstream slots
    /// (`BUN_CONFIG_MAX_HTTP_REQUESTS`) before it is answered `529 overloaded_error`.
    #[serde(
        default = "Timeouts::default_upstream_slot_wait",
        deserialize_with = "lenient::de"
    )]
    pub upstream_slot_wait_ms: u64,
    /// Extension: how long admission may wait for the store to check and reserve spend. A store
    /// that is up but busy past it gets `529 overloaded_error`; one that is down follows
    /// `enforcement.fail_closed_on_error`.
    #[serde(
        default = "Timeouts::default_spend_check",
        deserialize_with = "lenient::de"
    )]
    pub spend_check_ms: u64,
    /// Extension: silence on an upstream stream (no event from Bedrock, no byte from an
    /// Anthropic upstream) after which the gateway ends the stream with an in-band `error`.
    #[serde(
        default = "Timeouts::default_stream_idle",
        deserialize_with = "lenient::de"
    )]
    pub stream_idle_ms: u64,
    /// Extension: time allowed for a whole non-streaming answer. Bedrock's InvokeModel sends its
    /// response head only with the finished answer, so this (not `upstream_ttfb_ms`) bounds it;
    /// on an Anthropic upstream it bounds the body after the head.
    #[serde(
        default = "Timeouts::default_response",
        deserialize_with = "lenient::de"
    )]
    pub upstream_response_ms: u64,
    /// Extension: how long a write to a client may wait for the client to read. A client that
    /// stops reading is cut off after it, and its stream ended and settled, so it cannot hold an
    /// upstream slot or a spend hold for as long as it likes.
    #[serde(
        default = "Timeouts::default_client_write_stall",
        deserialize_with = "lenient::de"
    )]
    pub client_write_stall_ms: u64,
    /// Extension: how long a client has to send a complete request head, from when it connects
    /// or its last answer ends. A connection that sends nothing is closed after it too.
    #[serde(
        default = "Timeouts::default_client_header_read",
        deserialize_with = "lenient::de"
    )]
    pub client_header_read_ms: u64,
}

impl Timeouts {
    fn default_client_write_stall() -> u64 {
        60_000
    }
    fn default_client_header_read() -> u64 {
        30_000
    }
    fn default_ttfb() -> u64 {
        120_000
    }
    fn default_keepalive() -> u64 {
        15_000
    }
    fn default_upstream_slot_wait() -> u64 {
        10_000
    }
    fn default_spend_check() -> u64 {
        5_000
    }
    fn default_stream_idle() -> u64 {
        300_000
    }
    /// Bedrock's own limit on an inference call to Claude models: one hour.
    fn default_response() -> u64 {
        3_600_000
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            upstream_ttfb_ms: Self::default_ttfb(),
            stream_keepalive_ms: Self::default_keepalive(),
            upstream_slot_wait_ms: Self::default_upstream_slot_wait(),
            spend_check_ms: Self::default_spend_check(),
            stream_idle_ms: Self::default_stream_idle(),
            upstream_response_ms: Self::default_response(),
            client_write_stall_ms: Self::default_client_write_stall(),
            client_header_read_ms: Self::default_client_header_read(),
        }
    }
}

/// `rate_limits`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Per-IP limit on `POST /oauth/device_authorization`.
    #[serde(default = "RateLimits::default_authorization")]
    pub device_authorization: Window,
    /// Per-IP limit on user-code submissions.
    #[serde(default = "RateLimits::default_verify")]
    pub device_verify: Window,
    /// Extension: per-network limit on refresh grants (each one is a call to the IdP).
    #[serde(default = "RateLimits::default_refresh")]
    pub refresh: Window,
}

impl RateLimits {
    fn default_authorization() -> Window {
        Window {
            max: 30,
            window_seconds: 600,
        }
    }
    fn default_verify() -> Window {
        Window {
            max: 10,
            window_seconds: 600,
        }
    }
    fn default_refresh() -> Window {
        Window {
            max: 120,
            window_seconds: 600,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            device_authorization: Self::default_authorization(),
            device_verify: Self::default_verify(),
            refresh: Self::default_refresh(),
        }
    }
}

/// A fixed-window rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Requests allowed per window.
    #[serde(deserialize_with = "lenient::de")]
    pub max: u32,
    /// Window length.
    #[serde(deserialize_with = "lenient::de")]
    pub window_seconds: u32,
}

/// `audit` (extension).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Key for HMAC-SHA-256 of prompt text and tool inputs in `inference` events, so an
    /// investigator holding the key can prove whether an exact prompt was sent, without the
    /// gateway storing any prompt. At least 32 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_hash_key: Option<Secret>,
}

/// `load_test_mode`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadTestMode {
    /// Whether it is on.
    #[serde(default, deserialize_with = "lenient::de")]
    pub enabled: bool,
    /// Tokens in the canned reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_tokens: Option<Json>,
    /// Duration of the canned reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_seconds: Option<Json>,
}
