//! Turns raw assignments into a [`Profile`], checking every value and every combination.

mod aws_access;
mod identity;
mod network;
mod policy;
mod sizing;
mod telemetry;

use std::path::Path;

use super::model::*;
use super::reader::Reader;
use crate::netcalc::{in_zone, is_hostname};

pub use aws_access::{PLANNED_WEBHOOK_URL, WEBHOOK_VAR};

/// Builds the typed profile; on failure returns every problem found, each naming its key.
pub fn build(r: &mut Reader, source: &str, dir: &Path) -> Option<Profile> {
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

    let idp = identity::idp(r, &hostname);
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
        models: policy::models(r, "DEFAULT_MODELS", &r.list("DEFAULT_MODELS")),
        deny_tools: policy::tools(r, "DEFAULT_DENY_TOOLS", &r.list("DEFAULT_DENY_TOOLS")),
    };
    let group_rules = policy::group_rules(r);
    let enforce_tool_denials = r.bool("ENFORCE_TOOL_DENIALS");
    let login_notice = r.opt("LOGIN_NOTICE");
    if login_notice
        .as_ref()
        .is_some_and(|n| n.chars().count() > 500)
    {
        r.err("LOGIN_NOTICE", "must be at most 500 characters");
    }
    let rate_device_authorization = policy::rate(r, "RATE_LIMIT_DEVICE_AUTHORIZATION");
    let rate_device_verify = policy::rate(r, "RATE_LIMIT_DEVICE_VERIFY");

    let (telemetry, telemetry_logs, gateway_metrics) = telemetry::telemetry(r, &hostname, &cert);
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

    let network = network::network(r);
    let client_cidrs = r.cidrs("CLIENT_CIDRS");
    if client_cidrs.len() > 4 {
        r.err(
            "CLIENT_CIDRS",
            "at most four ranges (add more rules to the load balancer's security group by hand)",
        );
    }
    let vpn = network::vpn(r, network.as_ref(), &client_cidrs);

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
    let (min_tasks, max_tasks, task_cpu, task_memory) = sizing::tasks(r);
    let stream_drain_seconds =
        r.template_number("STREAM_DRAIN_SECONDS", "gateway.yaml", "StreamDrainSeconds");
    let db_instance_class = r.raw("DB_INSTANCE_CLASS");
    if !db_instance_class.starts_with("db.") {
        r.err(
            "DB_INSTANCE_CLASS",
            format!("{db_instance_class:?} is not an RDS instance class like db.t4g.micro"),
        );
    }
    let db_multi_az = r.bool("DB_MULTI_AZ");
    let db_deletion_protection = r.bool("DB_DELETION_PROTECTION");
    let log_retention_days =
        r.template_number("LOG_RETENTION_DAYS", "gateway.yaml", "LogRetentionDays");
    let alarm_email = r.opt("ALARM_EMAIL");
    if alarm_email.as_ref().is_some_and(|e| !e.contains('@')) {
        r.err("ALARM_EMAIL", "is not an e-mail address");
    }
    let daily_cost_threshold_usd = r.template_number(
        "DAILY_COST_THRESHOLD_USD",
        "observability.yaml",
        "DailyCostThresholdUsd",
    );
    let per_user_daily_cost_threshold_usd = r.template_number(
        "PER_USER_DAILY_COST_THRESHOLD_USD",
        "observability.yaml",
        "PerUserDailyCostThresholdUsd",
    );
    let bedrock_region = r.opt("BEDROCK_REGION").unwrap_or_else(|| region.clone());
    if !valid_region(&bedrock_region) && !region.is_empty() {
        r.err(
            "BEDROCK_REGION",
            format!("{bedrock_region:?} is not an AWS Region name"),
        );
    }
    let bedrock_access_check = r.bool("BEDROCK_ACCESS_CHECK");
    let (aws_access, aws_access_role_arns) = aws_access::read(r, dir);

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
        stream_drain_seconds,
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
        aws_access_role_arns,
        aws_access,
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

/// Whether the gateway hostname can hold a record in a zone named `zone` (used by preflight).
pub fn host_in_zone(host: &str, zone: &str) -> bool {
    in_zone(host, zone)
}
