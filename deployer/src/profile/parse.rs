//! Turns raw assignments into a [`Profile`], checking every value and every combination.

use claude_gateway::inference::catalog;

use super::model::*;
use super::reader::{split_list, Reader};
use crate::netcalc::{cfn_cidr, in_zone, is_hostname, overlaps};

const FAMILIES: &[&str] = &["opus", "sonnet", "haiku", "fable"];

/// Builds the typed profile; on failure returns every problem found, each naming its key.
pub fn build(r: &mut Reader, source: &str) -> Option<Profile> {
    let deployment = r.raw("DEPLOYMENT_NAME");
    if !valid_deployment(&deployment) {
        r.err(
            "DEPLOYMENT_NAME",
            format!("{deployment:?} must be 2 to 23 of a-z 0-9 -, starting with a letter"),
        );
    }
    let region = r.required("AWS_REGION", "(e.g. us-east-1)");
    if !region.is_empty() && !valid_region(&region) {
        r.err(
            "AWS_REGION",
            format!("{region:?} is not an AWS Region name"),
        );
    }
    let hostname = r
        .required("GATEWAY_HOSTNAME", "(e.g. claude.corp.example.com)")
        .to_ascii_lowercase();
    if !hostname.is_empty() && !is_hostname(&hostname) {
        r.err(
            "GATEWAY_HOSTNAME",
            format!("{hostname:?} is not a DNS name with at least two labels"),
        );
    }
    let allowed_email_domains = r.list("ALLOWED_EMAIL_DOMAINS");
    if allowed_email_domains.is_empty() {
        r.err(
            "ALLOWED_EMAIL_DOMAINS",
            "required: the e-mail domains allowed to sign in (e.g. corp.example.com)",
        );
    }
    for d in &allowed_email_domains {
        if !is_hostname(d.trim_start_matches('@')) {
            r.err("ALLOWED_EMAIL_DOMAINS", format!("{d:?} is not a domain"));
        }
    }

    let cert = match r
        .choice("CERTIFICATE_MODE", &["managed", "byo", "self-signed"])
        .as_str()
    {
        "byo" => CertMode::Byo {
            arn: r.required("CERTIFICATE_ARN", "with CERTIFICATE_MODE=byo"),
        },
        "self-signed" => CertMode::SelfSigned,
        _ => CertMode::Managed,
    };
    if let CertMode::Byo { arn } = &cert {
        let acm_arn = arn.starts_with("arn:") && arn.contains(":acm:");
        if !arn.is_empty() && !acm_arn {
            r.err(
                "CERTIFICATE_ARN",
                format!("{arn:?} is not an ACM certificate ARN"),
            );
        }
    }
    let hosted_zone_id = r
        .opt("HOSTED_ZONE_ID")
        .map(|z| z.trim_start_matches("/hostedzone/").to_owned());
    if cert == CertMode::Managed && hosted_zone_id.is_none() {
        r.err("HOSTED_ZONE_ID", "required with CERTIFICATE_MODE=managed: the public zone that holds GATEWAY_HOSTNAME (without one, use byo or self-signed)");
    }

    let idp = idp(r, &hostname);
    let allowed_groups = r.list("ALLOWED_GROUPS");
    let ttl = r.raw("SESSION_TTL_HOURS");
    let session_ttl_hours = match ttl.parse::<f64>() {
        Ok(h) if h > 0.0 && h <= 2160.0 => h,
        _ => {
            r.err(
                "SESSION_TTL_HOURS",
                format!("{ttl:?} must be a number of hours above 0 and at most 2160"),
            );
            8.0
        }
    };

    let admin_group = r.raw("ADMIN_GROUP");
    let default_rules = PolicyRules {
        models: models(r, "DEFAULT_MODELS", &r.list("DEFAULT_MODELS")),
        deny_tools: tools(r, "DEFAULT_DENY_TOOLS", &r.list("DEFAULT_DENY_TOOLS")),
    };
    let group_rules = group_rules(r);
    let enforce_tool_denials = r.bool("ENFORCE_TOOL_DENIALS");
    let login_notice = r.opt("LOGIN_NOTICE");
    if login_notice
        .as_ref()
        .is_some_and(|n| n.chars().count() > 500)
    {
        r.err("LOGIN_NOTICE", "must be at most 500 characters");
    }
    let rate_device_authorization = rate(r, "RATE_LIMIT_DEVICE_AUTHORIZATION");
    let rate_device_verify = rate(r, "RATE_LIMIT_DEVICE_VERIFY");

    let (telemetry, telemetry_logs, gateway_metrics) = telemetry(r, &hostname, &cert);
    let admin_api = r.bool("ADMIN_API").then(|| AdminApi {
        admin_groups: {
            let g = r.list("ADMIN_GROUPS");
            if g.is_empty() {
                vec![admin_group.clone()]
            } else {
                g
            }
        },
        blocked_message: r.opt("SPEND_BLOCKED_MESSAGE"),
        fail_closed: r.bool("SPEND_FAIL_CLOSED"),
    });

    let network = network(r);
    let client_cidrs = r.cidrs("CLIENT_CIDRS");
    if client_cidrs.len() > 4 {
        r.err(
            "CLIENT_CIDRS",
            "at most four ranges (add more rules to the load balancer's security group by hand)",
        );
    }
    let vpn = vpn(r, network.as_ref(), &client_cidrs);

    let image = match r.opt("GATEWAY_IMAGE") {
        Some(uri) => {
            if uri.contains(char::is_whitespace) || !uri.contains('/') {
                r.err(
                    "GATEWAY_IMAGE",
                    format!("{uri:?} is not an image URI like <registry>/<repo>@sha256:..."),
                );
            }
            Image::Uri(uri)
        }
        None => Image::Build {
            repository: r.raw("ECR_REPOSITORY"),
        },
    };
    let cpu_architecture = r.choice("CPU_ARCHITECTURE", &["X86_64", "ARM64"]);
    let min_tasks = r.number("MIN_TASKS", 2, 100);
    let max_tasks = r.number("MAX_TASKS", 2, 1000);
    if max_tasks < min_tasks {
        r.err(
            "MAX_TASKS",
            format!("{max_tasks} is below MIN_TASKS ({min_tasks})"),
        );
    }
    let task_cpu = r.number("TASK_CPU", 256, 16384);
    let task_memory = r.number("TASK_MEMORY", 512, 122_880);
    let db_instance_class = r.raw("DB_INSTANCE_CLASS");
    if !db_instance_class.starts_with("db.") {
        r.err(
            "DB_INSTANCE_CLASS",
            format!("{db_instance_class:?} is not an RDS instance class like db.t4g.micro"),
        );
    }
    let db_multi_az = r.bool("DB_MULTI_AZ");
    let db_deletion_protection = r.bool("DB_DELETION_PROTECTION");
    let log_retention_days = r.number("LOG_RETENTION_DAYS", 1, 3653);
    let alarm_email = r.opt("ALARM_EMAIL");
    if alarm_email.as_ref().is_some_and(|e| !e.contains('@')) {
        r.err("ALARM_EMAIL", "is not an e-mail address");
    }
    let daily_cost_threshold_usd = r.number("DAILY_COST_THRESHOLD_USD", 1, 10_000_000);
    let per_user_daily_cost_threshold_usd =
        r.number("PER_USER_DAILY_COST_THRESHOLD_USD", 1, 10_000_000);
    let bedrock_region = r.opt("BEDROCK_REGION").unwrap_or_else(|| region.clone());
    if !valid_region(&bedrock_region) && !region.is_empty() {
        r.err(
            "BEDROCK_REGION",
            format!("{bedrock_region:?} is not an AWS Region name"),
        );
    }
    let bedrock_access_check = r.bool("BEDROCK_ACCESS_CHECK");

    if !r.issues.is_empty() {
        return None;
    }
    Some(Profile {
        source: source.to_owned(),
        deployment,
        region,
        hostname,
        cert,
        hosted_zone_id,
        allowed_email_domains,
        allowed_groups,
        idp: idp?,
        session_ttl_hours,
        admin_group,
        default_rules,
        group_rules,
        enforce_tool_denials,
        login_notice,
        rate_device_authorization,
        rate_device_verify,
        telemetry: telemetry?,
        telemetry_logs,
        gateway_metrics,
        admin_api,
        network: network?,
        client_cidrs,
        vpn,
        image,
        cpu_architecture,
        min_tasks,
        max_tasks,
        task_cpu,
        task_memory,
        db_instance_class,
        db_multi_az,
        db_deletion_protection,
        log_retention_days,
        alarm_email,
        daily_cost_threshold_usd,
        per_user_daily_cost_threshold_usd,
        bedrock_region,
        bedrock_access_check,
    })
}

fn valid_deployment(n: &str) -> bool {
    (2..=23).contains(&n.len())
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.ends_with('-')
}

/// Whether `r` looks like an AWS Region name (`us-east-1`, `us-gov-west-1`).
pub fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

fn idp(r: &mut Reader, hostname: &str) -> Option<Idp> {
    match r
        .choice("IDP_MODE", &["new-cognito", "existing-cognito", "oidc"])
        .as_str()
    {
        "new-cognito" => {
            let admin_email = r.required("COGNITO_ADMIN_EMAIL", "with IDP_MODE=new-cognito");
            if !admin_email.is_empty() && !admin_email.contains('@') {
                r.err("COGNITO_ADMIN_EMAIL", "is not an e-mail address");
            }
            let domain_prefix = r.required("COGNITO_DOMAIN_PREFIX", "with IDP_MODE=new-cognito");
            let ok = (3..=63).contains(&domain_prefix.len())
                && domain_prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !["aws", "amazon", "cognito"]
                    .iter()
                    .any(|w| domain_prefix.contains(w));
            if !domain_prefix.is_empty() && !ok {
                r.err("COGNITO_DOMAIN_PREFIX", format!("{domain_prefix:?} must be 3-63 of a-z 0-9 - and not contain aws, amazon or cognito"));
            }
            Some(Idp::NewCognito {
                admin_email,
                domain_prefix,
                mfa: r.choice("COGNITO_MFA", &["OFF", "OPTIONAL", "ON"]),
                developer_group: r.raw("COGNITO_DEVELOPER_GROUP"),
                restricted_group: r.raw("COGNITO_RESTRICTED_GROUP"),
            })
        }
        "existing-cognito" => {
            let pool_id = r.required("COGNITO_USER_POOL_ID", "with IDP_MODE=existing-cognito");
            if !pool_id.is_empty() && !pool_id.contains('_') {
                r.err(
                    "COGNITO_USER_POOL_ID",
                    format!("{pool_id:?} is not a user pool id like us-east-1_AbCdEf123"),
                );
            }
            Some(Idp::ExistingCognito { pool_id })
        }
        "oidc" => {
            let issuer = r.required("OIDC_ISSUER", "with IDP_MODE=oidc");
            match url::Url::parse(&issuer) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
                _ if issuer.is_empty() => {}
                _ => r.err("OIDC_ISSUER", format!("{issuer:?} is not an https URL")),
            }
            if issuer.contains(hostname) && !hostname.is_empty() {
                r.err(
                    "OIDC_ISSUER",
                    "points at the gateway itself; it must be the identity provider",
                );
            }
            let client_id = r.required("OIDC_CLIENT_ID", "with IDP_MODE=oidc");
            let secret_arn = r.required(
                "OIDC_CLIENT_SECRET_ARN",
                "with IDP_MODE=oidc: a Secrets Manager secret holding the client secret",
            );
            if !secret_arn.is_empty() && !secret_arn.contains(":secretsmanager:") {
                r.err(
                    "OIDC_CLIENT_SECRET_ARN",
                    format!("{secret_arn:?} is not a Secrets Manager secret ARN"),
                );
            }
            let scopes = r.list("OIDC_SCOPES");
            if !scopes.iter().any(|s| s == "openid") {
                r.err("OIDC_SCOPES", "must include openid");
            }
            let mut extra = Vec::new();
            for item in r.list("OIDC_EXTRA_AUTH_PARAMS") {
                match item.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        extra.push((k.trim().to_owned(), v.trim().to_owned()))
                    }
                    _ => r.err(
                        "OIDC_EXTRA_AUTH_PARAMS",
                        format!("{item:?} is not key=value"),
                    ),
                }
            }
            Some(Idp::Oidc(OidcSettings {
                issuer,
                client_id,
                secret_arn,
                groups_claim: r.raw("OIDC_GROUPS_CLAIM"),
                scopes,
                email_claims: r.list("OIDC_EMAIL_CLAIM"),
                userinfo_fallback: r.bool("OIDC_USERINFO_FALLBACK"),
                scope_on_refresh: r.bool("OIDC_SCOPE_ON_REFRESH"),
                extra_auth_params: extra,
            }))
        }
        _ => None,
    }
}

fn models(r: &mut Reader, key: &str, list: &[String]) -> Vec<String> {
    for m in list {
        let known = FAMILIES.contains(&m.as_str())
            || catalog::built_in(m).is_some()
            || catalog::is_bedrock_native(m);
        if !known {
            r.err(key, format!("{m:?} is not a known model id, a family (opus, sonnet, haiku, fable) or a Bedrock id"));
        }
    }
    list.to_vec()
}

fn tools(r: &mut Reader, key: &str, list: &[String]) -> Vec<String> {
    for t in list {
        if t.contains(['(', ' ', '=', ';']) {
            r.err(key, format!("{t:?} must be a bare tool name like WebFetch"));
        }
    }
    list.to_vec()
}

fn group_rules(r: &mut Reader) -> Vec<(String, PolicyRules)> {
    let mut out: Vec<(String, PolicyRules)> = Vec::new();
    for key in ["GROUP_MODELS", "GROUP_DENY_TOOLS"] {
        let mut seen = Vec::new();
        for part in split_list(&r.raw(key), ';') {
            let Some((group, items)) = part.split_once('=') else {
                r.err(key, format!("{part:?} must be group=item,item"));
                continue;
            };
            let group = group.trim().to_owned();
            if group.is_empty() || group.contains(',') {
                r.err(key, format!("{part:?} has no group name before ="));
                continue;
            }
            if seen.contains(&group) {
                r.err(key, format!("group {group:?} is listed twice"));
                continue;
            }
            seen.push(group.clone());
            let items = split_list(items, ',');
            if items.is_empty() {
                r.err(key, format!("group {group:?} lists nothing"));
            }
            let idx = match out.iter().position(|(g, _)| *g == group) {
                Some(i) => i,
                None => {
                    out.push((group, PolicyRules::default()));
                    out.len() - 1
                }
            };
            if key == "GROUP_MODELS" {
                out[idx].1.models = models(r, key, &items);
            } else {
                out[idx].1.deny_tools = tools(r, key, &items);
            }
        }
    }
    out
}

fn rate(r: &mut Reader, key: &str) -> Rate {
    let v = r.raw(key);
    let parsed = v
        .split_once('/')
        .and_then(|(m, w)| Some((m.trim().parse::<u32>().ok()?, w.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((max, window_seconds)) if max > 0 && window_seconds > 0 => Rate {
            max,
            window_seconds,
        },
        _ => {
            r.err(
                key,
                format!("{v:?} must be max/window-seconds, e.g. 30/600"),
            );
            Rate {
                max: 1,
                window_seconds: 1,
            }
        }
    }
}

fn telemetry(r: &mut Reader, hostname: &str, cert: &CertMode) -> (Option<Telemetry>, bool, bool) {
    let mode = r.choice("TELEMETRY", &["off", "collector", "external"]);
    let t = match mode.as_str() {
        "off" => Some(Telemetry::Off),
        "collector" => {
            let host = r
                .opt("COLLECTOR_HOSTNAME")
                .unwrap_or_else(|| format!("otel.{hostname}"))
                .to_ascii_lowercase();
            if !is_hostname(&host) {
                r.err("COLLECTOR_HOSTNAME", format!("{host:?} is not a DNS name"));
            }
            if *cert == CertMode::SelfSigned {
                r.err("TELEMETRY", "collector needs a certificate the gateway trusts, which CERTIFICATE_MODE=self-signed cannot give; use TELEMETRY=external or off");
            }
            let certificate_arn = match cert {
                CertMode::Byo { arn } => Some(
                    r.opt("COLLECTOR_CERTIFICATE_ARN")
                        .unwrap_or_else(|| arn.clone()),
                ),
                _ => {
                    if r.is_set("COLLECTOR_CERTIFICATE_ARN") {
                        r.err(
                            "COLLECTOR_CERTIFICATE_ARN",
                            "applies only with CERTIFICATE_MODE=byo",
                        );
                    }
                    None
                }
            };
            Some(Telemetry::Collector {
                hostname: host,
                certificate_arn,
            })
        }
        "external" => {
            let endpoint = r
                .required("TELEMETRY_ENDPOINT", "with TELEMETRY=external")
                .trim_end_matches('/')
                .to_owned();
            match url::Url::parse(&endpoint) {
                _ if endpoint.is_empty() => {}
                Ok(u) if u.scheme() == "https" && u.path() == "/" && u.query().is_none() => {}
                Ok(u) if u.scheme() == "https" => r.err("TELEMETRY_ENDPOINT", format!("{endpoint:?} must be a bare origin: the gateway appends /v1/metrics itself (drop {:?})", u.path())),
                _ => r.err("TELEMETRY_ENDPOINT", format!("{endpoint:?} must be an https:// origin")),
            }
            Some(Telemetry::External { endpoint })
        }
        _ => None,
    };
    let logs = match r.opt("TELEMETRY_LOGS") {
        Some(_) => r.bool("TELEMETRY_LOGS"),
        None => mode == "collector",
    };
    let metrics = r.bool("GATEWAY_METRICS") && mode != "off";
    (t, logs, metrics)
}

fn network(r: &mut Reader) -> Option<Network> {
    let cidr = r.cidr("VPC_CIDR")?;
    if !(16..=24).contains(&cidr.prefix_len()) {
        r.err("VPC_CIDR", format!("{cidr} must be a /16 to /24 block"));
    }
    let existing = [
        "EXISTING_VPC_ID",
        "EXISTING_PRIVATE_SUBNET_IDS",
        "EXISTING_PRIVATE_SUBNET_CIDRS",
    ];
    let set: Vec<&str> = existing.iter().copied().filter(|k| r.is_set(k)).collect();
    if set.is_empty() {
        let bits = r.number("SUBNET_CIDR_BITS", 4, 14);
        let nat = r.number("NAT_GATEWAYS", 1, 2);
        if cfn_cidr(cidr, 4, bits as u8).len() < 4 {
            r.err(
                "SUBNET_CIDR_BITS",
                format!("four subnets of {bits} host bits do not fit in VPC_CIDR {cidr}"),
            );
        }
        return Some(Network::New {
            cidr,
            subnet_bits: bits as u8,
            nat_gateways: nat as u8,
        });
    }
    for k in existing {
        if !set.contains(&k) {
            r.err(k, format!("required with {}: an existing VPC needs its id, two private subnet ids and their CIDRs", set.join(", ")));
        }
    }
    for k in ["SUBNET_CIDR_BITS", "NAT_GATEWAYS"] {
        if r.is_set(k) {
            r.err(k, "applies only to a new VPC, not with EXISTING_VPC_ID");
        }
    }
    let vpc_id = r.raw("EXISTING_VPC_ID");
    if !vpc_id.starts_with("vpc-") {
        r.err("EXISTING_VPC_ID", format!("{vpc_id:?} is not a VPC id"));
    }
    let subnet_ids = r.list("EXISTING_PRIVATE_SUBNET_IDS");
    if subnet_ids.len() != 2 || subnet_ids.iter().any(|s| !s.starts_with("subnet-")) {
        r.err(
            "EXISTING_PRIVATE_SUBNET_IDS",
            "must be exactly two subnet ids (subnet-...), in two Availability Zones",
        );
    }
    let subnet_cidrs = r.cidrs("EXISTING_PRIVATE_SUBNET_CIDRS");
    if subnet_cidrs.len() != 2 {
        r.err(
            "EXISTING_PRIVATE_SUBNET_CIDRS",
            "must be exactly two CIDRs, one per subnet",
        );
    }
    for s in &subnet_cidrs {
        if !cidr.contains(s) {
            r.err(
                "EXISTING_PRIVATE_SUBNET_CIDRS",
                format!("{s} is not inside VPC_CIDR {cidr}"),
            );
        }
    }
    Some(Network::Existing {
        vpc_id,
        cidr,
        subnet_ids,
        subnet_cidrs,
    })
}

fn vpn(r: &mut Reader, network: Option<&Network>, client_cidrs: &[ipnet::Ipv4Net]) -> Option<Vpn> {
    if !r.bool("VPN") {
        return None;
    }
    let client_cidr = r.cidr("VPN_CLIENT_CIDR")?;
    if !(12..=22).contains(&client_cidr.prefix_len()) {
        r.err(
            "VPN_CLIENT_CIDR",
            format!("{client_cidr} must be between /12 and /22 (an AWS Client VPN rule)"),
        );
    }
    if let Some(n) = network {
        if overlaps(client_cidr, n.cidr()) {
            r.err(
                "VPN_CLIENT_CIDR",
                format!("{client_cidr} overlaps VPC_CIDR {}", n.cidr()),
            );
        }
    }
    for c in client_cidrs {
        if overlaps(client_cidr, *c) {
            r.err("VPN_CLIENT_CIDR", format!("{client_cidr} overlaps CLIENT_CIDRS entry {c}: VPN clients would be unreachable from there"));
        }
    }
    let clients = r.list("VPN_CLIENTS");
    if clients.is_empty() {
        r.err("VPN_CLIENTS", "name at least one client");
    }
    for c in &clients {
        if !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            r.err(
                "VPN_CLIENTS",
                format!("{c:?} may hold only letters, digits and - _ . @"),
            );
        }
    }
    let transport = r.choice("VPN_TRANSPORT", &["udp", "tcp"]);
    let dns_server = r.opt("VPN_DNS_SERVER");
    if let Some(d) = &dns_server {
        if d.parse::<std::net::Ipv4Addr>().is_err() {
            r.err("VPN_DNS_SERVER", format!("{d:?} is not an IPv4 address"));
        }
    }
    Some(Vpn {
        client_cidr,
        clients,
        transport,
        dns_server,
    })
}

/// Whether the gateway hostname can hold a record in a zone named `zone` (used by preflight).
pub fn host_in_zone(host: &str, zone: &str) -> bool {
    in_zone(host, zone)
}
