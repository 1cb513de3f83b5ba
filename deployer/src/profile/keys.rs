//! Every key a profile may set: its default, when it applies, and what it means.
//!
//! The table is the single source for unknown-key errors, contradiction errors ("set, but its mode
//! is off") and `deployer keys`, which prints it.

/// When a key means something.
#[derive(Debug, Clone, Copy)]
pub enum Applies {
    /// In every profile.
    Always,
    /// Only when the key named first has one of the listed values.
    When(&'static str, &'static [&'static str]),
}

/// One profile key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The variable name.
    pub name: &'static str,
    /// The value assumed when the key is absent or empty ("" = none).
    pub default: &'static str,
    /// When setting it makes sense.
    pub applies: Applies,
    /// One line of documentation.
    pub help: &'static str,
}

const fn k(name: &'static str, default: &'static str, help: &'static str) -> Key {
    Key {
        name,
        default,
        applies: Applies::Always,
        help,
    }
}

const fn w(
    name: &'static str,
    default: &'static str,
    on: (&'static str, &'static [&'static str]),
    help: &'static str,
) -> Key {
    Key {
        name,
        default,
        applies: Applies::When(on.0, on.1),
        help,
    }
}

const BYO_CERT: (&str, &[&str]) = ("CERTIFICATE_MODE", &["byo"]);
const NEW_COGNITO: (&str, &[&str]) = ("IDP_MODE", &["new-cognito"]);
const OLD_COGNITO: (&str, &[&str]) = ("IDP_MODE", &["existing-cognito"]);
const OIDC: (&str, &[&str]) = ("IDP_MODE", &["oidc"]);
const COLLECTOR: (&str, &[&str]) = ("TELEMETRY", &["collector"]);
const EXTERNAL: (&str, &[&str]) = ("TELEMETRY", &["external"]);
const ANY_TELEMETRY: (&str, &[&str]) = ("TELEMETRY", &["collector", "external"]);
const ADMIN: (&str, &[&str]) = ("ADMIN_API", &["true"]);
const VPN: (&str, &[&str]) = ("VPN", &["true"]);

/// All keys, grouped as the shipped profiles present them.
pub const KEYS: &[Key] = &[
    // Where and what
    k("DEPLOYMENT_NAME", "claude-gateway", "prefix of every stack name (<name>-gateway, ...); lower-case letters, digits, hyphens, at most 23"),
    k("AWS_REGION", "", "Region of every stack (required)"),
    k("GATEWAY_HOSTNAME", "", "the gateway's DNS name, e.g. claude.corp.example.com (required)"),
    k("ALLOWED_EMAIL_DOMAINS", "", "comma-separated e-mail domains allowed to sign in (required)"),
    // TLS and DNS
    k("CERTIFICATE_MODE", "managed", "managed (public ACM certificate in HOSTED_ZONE_ID), byo (CERTIFICATE_ARN) or self-signed (the deployer makes a CA)"),
    k("HOSTED_ZONE_ID", "", "public Route 53 zone holding GATEWAY_HOSTNAME (required when managed; optional otherwise: the record goes there instead of a new private zone)"),
    w("CERTIFICATE_ARN", "", BYO_CERT, "ACM certificate (imported or issued) for GATEWAY_HOSTNAME"),
    // Identity
    k("IDP_MODE", "", "new-cognito, existing-cognito or oidc (required)"),
    w("COGNITO_ADMIN_EMAIL", "", NEW_COGNITO, "first administrator, invited by e-mail"),
    w("COGNITO_DOMAIN_PREFIX", "", NEW_COGNITO, "hosted sign-in domain prefix, globally unique in the Region (3-63 of a-z 0-9 -)"),
    w("COGNITO_MFA", "OPTIONAL", NEW_COGNITO, "OFF, OPTIONAL or ON (TOTP)"),
    w("COGNITO_DEVELOPER_GROUP", "developers", NEW_COGNITO, "group created for developers (empty to skip)"),
    w("COGNITO_RESTRICTED_GROUP", "contractors", NEW_COGNITO, "group created for restricted users (empty to skip)"),
    w("COGNITO_USER_POOL_ID", "", OLD_COGNITO, "existing pool that gets the gateway's client (it needs a hosted-UI domain)"),
    w("OIDC_ISSUER", "", OIDC, "issuer URL exactly as the IdP writes it (https)"),
    w("OIDC_CLIENT_ID", "", OIDC, "the gateway's client id at the IdP"),
    w("OIDC_CLIENT_SECRET_ARN", "", OIDC, "Secrets Manager secret holding the client secret as a plain string"),
    w("OIDC_GROUPS_CLAIM", "groups", OIDC, "claim holding the user's groups (roles for Entra app roles)"),
    w("OIDC_SCOPES", "openid,profile,email,offline_access", OIDC, "scopes requested at sign-in"),
    w("OIDC_EMAIL_CLAIM", "email", OIDC, "claim(s) holding the e-mail, comma-separated, first present wins"),
    w("OIDC_USERINFO_FALLBACK", "false", OIDC, "fetch missing e-mail or groups from /userinfo (Okta org server)"),
    w("OIDC_SCOPE_ON_REFRESH", "false", OIDC, "send scope on refresh (Okta)"),
    w("OIDC_EXTRA_AUTH_PARAMS", "", OIDC, "extra authorize parameters, k=v,k=v (Google: access_type=offline,prompt=consent)"),
    k("ALLOWED_GROUPS", "", "only members of these groups may sign in (comma-separated; empty = anyone in the allowed domains)"),
    k("SESSION_TTL_HOURS", "8", "lifetime of the gateway's session token"),
    // Policies
    k("ADMIN_GROUP", "gateway-admins", "IdP group of gateway administrators"),
    k("DEFAULT_MODELS", "", "models everyone may use, comma-separated (ids or families: opus, sonnet, haiku); empty = all"),
    k("DEFAULT_DENY_TOOLS", "", "tools denied to everyone, comma-separated (e.g. WebFetch)"),
    k("GROUP_MODELS", "", "per-group model allowlists: group=model,model;group=model (the first matching group wins)"),
    k("GROUP_DENY_TOOLS", "", "per-group tool denials: group=Tool,Tool;group=Tool"),
    k("ENFORCE_TOOL_DENIALS", "true", "also enforce tool denials in the gateway, not only in the client"),
    k("LOGIN_NOTICE", "", "notice shown by the client at sign-in"),
    k("RATE_LIMIT_DEVICE_AUTHORIZATION", "30/600", "sign-in starts per client address: max/window-seconds"),
    k("RATE_LIMIT_DEVICE_VERIFY", "10/600", "code submissions per client address: max/window-seconds"),
    // Telemetry
    k("TELEMETRY", "off", "off, collector (bundled ADOT collector) or external (your OTLP/HTTP endpoint)"),
    w("COLLECTOR_HOSTNAME", "", COLLECTOR, "collector DNS name (default otel.<GATEWAY_HOSTNAME>)"),
    w("COLLECTOR_CERTIFICATE_ARN", "", COLLECTOR, "certificate for the collector with CERTIFICATE_MODE=byo (default CERTIFICATE_ARN, e.g. a wildcard)"),
    w("TELEMETRY_ENDPOINT", "", EXTERNAL, "your OTLP/HTTP origin, https, no /v1 path"),
    w("TELEMETRY_LOGS", "", ANY_TELEMETRY, "relay client events (logs) too; default true with the collector, false with external"),
    w("GATEWAY_METRICS", "true", ANY_TELEMETRY, "export the gateway's own metrics to the same endpoint (and its traces, with an external endpoint)"),
    // Spend limits
    k("ADMIN_API", "false", "enable spend limits and the Admin API (generates admin keys)"),
    w("ADMIN_GROUPS", "", ADMIN, "groups whose members may call the Admin API with their session (default ADMIN_GROUP)"),
    w("SPEND_BLOCKED_MESSAGE", "", ADMIN, "appended to the message a developer sees when over a limit"),
    w("SPEND_FAIL_CLOSED", "false", ADMIN, "refuse inference when the limit check cannot reach the database"),
    // Network
    k("VPC_CIDR", "10.20.0.0/16", "CIDR of the new VPC, or the primary CIDR of EXISTING_VPC_ID"),
    k("SUBNET_CIDR_BITS", "12", "host bits of each of the six new subnets (12 gives /20 in a /16)"),
    k("NAT_GATEWAYS", "2", "NAT gateways in a new VPC: 1 (cheaper) or 2 (one per zone)"),
    k("EXISTING_VPC_ID", "", "deploy into this VPC instead of creating one"),
    k("EXISTING_PRIVATE_SUBNET_IDS", "", "two private subnets of EXISTING_VPC_ID in two zones, comma-separated"),
    k("EXISTING_PRIVATE_SUBNET_CIDRS", "", "the CIDRs of those two subnets, same order (the gateway trusts its load balancer there)"),
    k("CLIENT_CIDRS", "", "developer networks allowed to reach the load balancer, up to four (the VPC is always allowed)"),
    // Client VPN
    k("VPN", "false", "deploy the bundled Client VPN and write one .ovpn per developer"),
    w("VPN_CLIENT_CIDR", "10.30.0.0/22", VPN, "address pool of VPN clients (/12 to /22, outside the VPC and CLIENT_CIDRS)"),
    w("VPN_CLIENTS", "developer1", VPN, "names of the client certificates and .ovpn files, comma-separated"),
    w("VPN_TRANSPORT", "udp", VPN, "udp or tcp"),
    w("VPN_DNS_SERVER", "", VPN, "DNS server pushed to clients (default the VPC resolver)"),
    // Image and sizing
    k("GATEWAY_IMAGE", "", "image URI to run (pin a digest); empty = build from this repository and push to ECR_REPOSITORY"),
    k("ECR_REPOSITORY", "claude-gateway", "ECR repository the deployer pushes its build to"),
    k("CPU_ARCHITECTURE", "X86_64", "X86_64 or ARM64 (Graviton); the image must match"),
    k("MIN_TASKS", "2", "smallest number of gateway tasks (within the gateway template's MinTasks range, at least 2)"),
    k("MAX_TASKS", "10", "largest number of gateway tasks (within the gateway template's MaxTasks range)"),
    k("TASK_CPU", "512", "CPU units per task: one of the gateway template's TaskCpu values"),
    k("STREAM_DRAIN_SECONDS", "600", "how long a task leaving (deploy, scale-in) keeps serving its open streams before it stops; the longest stream developers run (within the gateway template's StreamDrainSeconds range)"),
    k("TASK_MEMORY", "1024", "memory per task, MiB: one of the gateway template's TaskMemory values that Fargate pairs with TASK_CPU"),
    k("DB_INSTANCE_CLASS", "db.t4g.micro", "PostgreSQL instance class"),
    k("DB_MULTI_AZ", "false", "standby database in a second zone (recommended for production)"),
    k("DB_DELETION_PROTECTION", "true", "refuse to delete the database; destroy needs it false"),
    k("LOG_RETENTION_DAYS", "90", "retention of the gateway's log group (audit events)"),
    // Observability and Bedrock
    k("ALARM_EMAIL", "", "e-mail subscribed to the spend and error alarms"),
    k("DAILY_COST_THRESHOLD_USD", "500", "alarm when metered spend in 24 hours exceeds this"),
    k("PER_USER_DAILY_COST_THRESHOLD_USD", "100", "alarm when one user's spend in 24 hours exceeds this"),
    k("BEDROCK_REGION", "", "Region the gateway calls Bedrock in (default AWS_REGION)"),
    k("BEDROCK_ACCESS_CHECK", "true", "preflight: a one-token request per allowlisted model to prove model access"),
    // Agent access to AWS
    k("AWS_ACCESS_CONFIG", "", "YAML file (relative to this profile's folder, or absolute; at most 64 KiB) holding the body of the gateway's aws_access section: projects, members, settings (webhook_url only as ${AWS_ACCESS_WEBHOOK_URL}); empty = no agent access (see config/aws-access.example.yaml)"),
    k("AWS_ACCESS_WEBHOOK_SECRET_ARN", "", "Secrets Manager secret holding, as a plain string, the URL that announces agent-access write requests; the tasks see it as AWS_ACCESS_WEBHOOK_URL, and the AWS_ACCESS_CONFIG file says webhook_url: ${AWS_ACCESS_WEBHOOK_URL}; empty = no webhook"),
    k("AWS_ACCESS_ROLE_ARNS", "", "project roles (cfn/aws-access-project-role.yaml) the gateway's task role may assume, comma-separated; empty = the role_arn of each project in AWS_ACCESS_CONFIG (none without it); when set, it must hold each of them"),
];

/// The key named `name`, if it exists.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The known key closest to an unknown one (for "did you mean").
pub fn closest(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (distance(name, k.name), k.name))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
