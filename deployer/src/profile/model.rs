//! The typed profile: what a validated env file says, with every default applied.

use std::path::PathBuf;

use claude_gateway::config::aws_access::AwsAccess;
use ipnet::Ipv4Net;

/// How the gateway's certificate is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertMode {
    /// Public ACM certificate validated in the public zone.
    Managed,
    /// The operator's certificate.
    Byo {
        /// Its ARN.
        arn: String,
    },
    /// A CA and certificate the deployer makes and imports.
    SelfSigned,
}

/// Where identities come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idp {
    /// A new Cognito pool (identity stack `idp-cognito.yaml`).
    NewCognito {
        /// First administrator.
        admin_email: String,
        /// Hosted-UI domain prefix.
        domain_prefix: String,
        /// OFF, OPTIONAL or ON.
        mfa: String,
        /// Developer group (may be empty).
        developer_group: String,
        /// Restricted group (may be empty).
        restricted_group: String,
    },
    /// A client on an existing pool (`idp-cognito-client.yaml`).
    ExistingCognito {
        /// The pool.
        pool_id: String,
    },
    /// Any OpenID Connect provider; no identity stack.
    Oidc(OidcSettings),
}

/// Bring-your-own OIDC settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// Issuer URL.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Secrets Manager ARN of the client secret.
    pub secret_arn: String,
    /// Groups claim.
    pub groups_claim: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Email claim(s).
    pub email_claims: Vec<String>,
    /// Userinfo fallback.
    pub userinfo_fallback: bool,
    /// Scope on refresh.
    pub scope_on_refresh: bool,
    /// Extra authorize parameters.
    pub extra_auth_params: Vec<(String, String)>,
}

/// Models and tool denials of one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRules {
    /// Allowed models (empty = no allowlist).
    pub models: Vec<String>,
    /// Denied tools.
    pub deny_tools: Vec<String>,
}

/// Where telemetry goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Telemetry {
    /// Nowhere.
    Off,
    /// The bundled collector.
    Collector {
        /// Its hostname.
        hostname: String,
        /// Certificate ARN in byo mode.
        certificate_arn: Option<String>,
    },
    /// The operator's endpoint.
    External {
        /// https origin.
        endpoint: String,
    },
}

/// Spend limits and the Admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminApi {
    /// Groups whose sessions are admins.
    pub admin_groups: Vec<String>,
    /// Extra block message.
    pub blocked_message: Option<String>,
    /// Fail closed on store errors.
    pub fail_closed: bool,
}

/// The VPC the gateway lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// A VPC the gateway stack creates.
    New {
        /// Its CIDR.
        cidr: Ipv4Net,
        /// Host bits per subnet.
        subnet_bits: u8,
        /// NAT gateways.
        nat_gateways: u8,
    },
    /// An existing VPC.
    Existing {
        /// Its id.
        vpc_id: String,
        /// Its primary CIDR.
        cidr: Ipv4Net,
        /// Two private subnets.
        subnet_ids: Vec<String>,
        /// Their CIDRs.
        subnet_cidrs: Vec<Ipv4Net>,
    },
}

impl Network {
    /// The VPC's CIDR.
    pub fn cidr(&self) -> Ipv4Net {
        match self {
            Network::New { cidr, .. } | Network::Existing { cidr, .. } => *cidr,
        }
    }

    /// The CIDRs of the subnets the load balancer sits in (known before deployment), which the
    /// gateway trusts as proxies: in a new VPC its own two subnets (the fifth and sixth of
    /// `Fn::Cidr(cidr, 6, bits)`), where no Client VPN attaches; in an existing VPC the private
    /// subnets it shares with the tasks.
    pub fn load_balancer_cidrs(&self) -> Vec<Ipv4Net> {
        match self {
            Network::New {
                cidr, subnet_bits, ..
            } => crate::netcalc::cfn_cidr(*cidr, 6, *subnet_bits)
                .into_iter()
                .skip(4)
                .collect(),
            Network::Existing { subnet_cidrs, .. } => subnet_cidrs.clone(),
        }
    }
}

/// The bundled Client VPN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpn {
    /// Client address pool.
    pub client_cidr: Ipv4Net,
    /// One client certificate and .ovpn per name.
    pub clients: Vec<String>,
    /// udp or tcp.
    pub transport: String,
    /// DNS server override.
    pub dns_server: Option<String>,
}

/// The gateway image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// A given URI.
    Uri(String),
    /// Built from the repository and pushed to this ECR repository.
    Build {
        /// Repository name.
        repository: String,
    },
}

/// A fixed-window rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per window.
    pub max: u32,
    /// Window length.
    pub window_seconds: u32,
}

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Where it was read from (for messages).
    pub source: String,
    /// Deployment name (stack prefix).
    pub deployment: String,
    /// Region.
    pub region: String,
    /// Gateway hostname.
    pub hostname: String,
    /// Certificate mode.
    pub cert: CertMode,
    /// Hosted zone id.
    pub hosted_zone_id: Option<String>,
    /// Allowed e-mail domains.
    pub allowed_email_domains: Vec<String>,
    /// Allowed groups.
    pub allowed_groups: Vec<String>,
    /// Identity provider.
    pub idp: Idp,
    /// Session lifetime.
    pub session_ttl_hours: f64,
    /// Administrators' group.
    pub admin_group: String,
    /// The policy for everyone.
    pub default_rules: PolicyRules,
    /// Per-group policies, in order.
    pub group_rules: Vec<(String, PolicyRules)>,
    /// Enforce denials server-side.
    pub enforce_tool_denials: bool,
    /// Login notice.
    pub login_notice: Option<String>,
    /// Sign-in start limit.
    pub rate_device_authorization: Rate,
    /// Code submission limit.
    pub rate_device_verify: Rate,
    /// Telemetry destination.
    pub telemetry: Telemetry,
    /// Relay client logs.
    pub telemetry_logs: bool,
    /// Export the gateway's own metrics.
    pub gateway_metrics: bool,
    /// Admin API.
    pub admin_api: Option<AdminApi>,
    /// Network.
    pub network: Network,
    /// Developer networks.
    pub client_cidrs: Vec<Ipv4Net>,
    /// Client VPN.
    pub vpn: Option<Vpn>,
    /// Image.
    pub image: Image,
    /// X86_64 or ARM64.
    pub cpu_architecture: String,
    /// Min tasks.
    pub min_tasks: u32,
    /// Max tasks.
    pub max_tasks: u32,
    /// Seconds a leaving task keeps serving its open streams (the deregistration delay).
    pub stream_drain_seconds: u32,
    /// CPU units.
    pub task_cpu: u32,
    /// Memory MiB.
    pub task_memory: u32,
    /// DB class.
    pub db_instance_class: String,
    /// Multi-AZ.
    pub db_multi_az: bool,
    /// Deletion protection.
    pub db_deletion_protection: bool,
    /// Log retention.
    pub log_retention_days: u32,
    /// Alarm e-mail.
    pub alarm_email: Option<String>,
    /// Daily cost threshold.
    pub daily_cost_threshold_usd: u32,
    /// Per-user threshold.
    pub per_user_daily_cost_threshold_usd: u32,
    /// Bedrock region.
    pub bedrock_region: String,
    /// Probe model access in preflight.
    pub bedrock_access_check: bool,
    /// Project roles the gateway's task role may assume (agent access to AWS).
    pub aws_access_role_arns: Vec<String>,
    /// The gateway's `aws_access` section, from the file `AWS_ACCESS_CONFIG` names.
    pub aws_access: Option<AwsAccessFile>,
}

/// The `aws_access` section read from the file `AWS_ACCESS_CONFIG` names.
#[derive(Debug, Clone)]
pub struct AwsAccessFile {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// The section, typed and checked by the gateway's own rules.
    pub section: AwsAccess,
    /// The Secrets Manager secret holding `webhook_url` (`AWS_ACCESS_WEBHOOK_SECRET_ARN`), which
    /// the tasks see as `AWS_ACCESS_WEBHOOK_URL`.
    pub webhook_secret_arn: Option<String>,
}

impl Profile {
    /// Every model named anywhere in the profile, deduplicated, in order.
    pub fn all_models(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let lists =
            std::iter::once(&self.default_rules).chain(self.group_rules.iter().map(|(_, r)| r));
        for r in lists {
            for m in &r.models {
                if !out.contains(m) {
                    out.push(m.clone());
                }
            }
        }
        out
    }

    /// The gateway's public origin.
    pub fn gateway_url(&self) -> String {
        format!("https://{}", self.hostname)
    }
}
