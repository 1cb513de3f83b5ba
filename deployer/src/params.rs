//! Each stack's parameters, computed from the profile and the outputs of the stacks before it.
//!
//! Outputs are read from the stacks themselves (never from exported names). In a plan, an output
//! of a stack that does not exist yet is shown as `<stack.Output>`.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::profile::{CertMode, Idp, Network, Profile, Telemetry};
use crate::render::Rendered;
use crate::stacks::StackKind;

/// Outputs of deployed stacks, by kind.
pub type Outputs = BTreeMap<StackKind, BTreeMap<String, String>>;

/// What the parameters depend on besides the profile.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// Outputs known so far.
    pub outputs: &'a Outputs,
    /// In a plan, missing outputs become `<stack.Output>` instead of an error.
    pub planning: bool,
    /// The image to run.
    pub image_uri: String,
    /// The rendered config.
    pub config: &'a Rendered,
    /// ACM ARN of the certificate the deployer imported for the gateway (self-signed mode).
    pub gateway_certificate_arn: Option<String>,
    /// ACM ARN of the VPN server certificate (also the client root: one CA signs both).
    pub vpn_certificate_arn: Option<String>,
}

impl Inputs<'_> {
    fn out(&self, kind: StackKind, key: &str) -> Result<String> {
        match self.outputs.get(&kind).and_then(|o| o.get(key)) {
            Some(v) => Ok(v.clone()),
            None if self.planning => Ok(format!("<{kind}.{key}>")),
            None => Err(Error::failed(format!(
                "the {kind} stack has no output {key}; deploy it first (deployer deploy {kind})"
            ))),
        }
    }

    fn planned(&self, what: Option<&String>, label: &str) -> Result<String> {
        match what {
            Some(v) => Ok(v.clone()),
            None if self.planning => Ok(format!("<{label}>")),
            None => Err(Error::failed(format!("{label} is not known yet"))),
        }
    }
}

fn b(v: bool) -> String {
    v.to_string()
}

/// The parameters of stack `kind`, in template order.
pub fn parameters(kind: StackKind, p: &Profile, i: &Inputs) -> Result<Vec<(String, String)>> {
    let mut v: Vec<(&str, String)> = Vec::new();
    match kind {
        StackKind::Identity => match &p.idp {
            Idp::NewCognito {
                admin_email,
                domain_prefix,
                mfa,
                developer_group,
                restricted_group,
            } => {
                v.push(("GatewayHostname", p.hostname.clone()));
                v.push(("HostedUiDomainPrefix", domain_prefix.clone()));
                v.push(("AdminEmail", admin_email.clone()));
                v.push(("AdminGroupName", p.admin_group.clone()));
                v.push(("DeveloperGroupName", developer_group.clone()));
                v.push(("RestrictedGroupName", restricted_group.clone()));
                v.push(("MfaConfiguration", mfa.clone()));
            }
            Idp::ExistingCognito { pool_id } => {
                v.push(("UserPoolId", pool_id.clone()));
                v.push(("GatewayHostname", p.hostname.clone()));
            }
            Idp::Oidc(_) => {
                return Err(Error::usage(
                    "this profile has no identity stack (IDP_MODE=oidc)",
                ))
            }
        },
        StackKind::Gateway => {
            let secret = match &p.idp {
                Idp::Oidc(o) => o.secret_arn.clone(),
                _ => i.out(StackKind::Identity, "ClientSecretArn")?,
            };
            v.push(("GatewayHostname", p.hostname.clone()));
            v.push(("GatewayImageUri", i.image_uri.clone()));
            v.push(("CpuArchitecture", p.cpu_architecture.clone()));
            for (n, part) in i.config.parts.iter().enumerate() {
                let name = [
                    "GatewayConfigPart1",
                    "GatewayConfigPart2",
                    "GatewayConfigPart3",
                    "GatewayConfigPart4",
                ][n];
                v.push((name, part.clone()));
            }
            v.push(("OidcClientSecretArn", secret));
            v.push(("EnableAdminApi", b(p.admin_api.is_some())));
            v.push(("AwsAccessRoleArns", p.aws_access_role_arns.join(",")));
            v.push((
                "AwsAccessWebhookSecretArn",
                p.aws_access
                    .as_ref()
                    .and_then(|a| a.webhook_secret_arn.clone())
                    .unwrap_or_default(),
            ));
            match &p.network {
                Network::New {
                    cidr,
                    subnet_bits,
                    nat_gateways,
                } => {
                    v.push(("VpcId", String::new()));
                    v.push(("VpcCidr", cidr.to_string()));
                    v.push(("PrivateSubnetIds", String::new()));
                    v.push(("SubnetCidrBits", subnet_bits.to_string()));
                    v.push(("NatGatewayCount", nat_gateways.to_string()));
                }
                Network::Existing {
                    vpc_id,
                    cidr,
                    subnet_ids,
                    ..
                } => {
                    v.push(("VpcId", vpc_id.clone()));
                    v.push(("VpcCidr", cidr.to_string()));
                    v.push(("PrivateSubnetIds", subnet_ids.join(",")));
                }
            }
            v.push((
                "ClientCidrs",
                p.client_cidrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ));
            let cert = match &p.cert {
                CertMode::Managed => String::new(),
                CertMode::Byo { arn } => arn.clone(),
                CertMode::SelfSigned => i.planned(
                    i.gateway_certificate_arn.as_ref(),
                    "imported self-signed certificate",
                )?,
            };
            v.push(("CertificateArn", cert));
            v.push(("HostedZoneId", p.hosted_zone_id.clone().unwrap_or_default()));
            v.push(("TaskCpu", p.task_cpu.to_string()));
            v.push(("TaskMemory", p.task_memory.to_string()));
            v.push(("MinTasks", p.min_tasks.to_string()));
            v.push(("StreamDrainSeconds", p.stream_drain_seconds.to_string()));
            v.push(("MaxTasks", p.max_tasks.to_string()));
            v.push(("DBInstanceClass", p.db_instance_class.clone()));
            v.push(("DBMultiAz", b(p.db_multi_az)));
            v.push(("DBDeletionProtection", b(p.db_deletion_protection)));
            v.push(("LogRetentionDays", p.log_retention_days.to_string()));
        }
        StackKind::Collector => {
            let Telemetry::Collector {
                hostname,
                certificate_arn,
            } = &p.telemetry
            else {
                return Err(Error::usage(
                    "this profile has no collector (TELEMETRY is not collector)",
                ));
            };
            v.push(("VpcId", i.out(StackKind::Gateway, "VpcId")?));
            v.push((
                "PrivateSubnetIds",
                i.out(StackKind::Gateway, "PrivateSubnetIds")?,
            ));
            v.push(("VpcCidr", i.out(StackKind::Gateway, "VpcCidr")?));
            v.push((
                "GatewayTaskSecurityGroupId",
                i.out(StackKind::Gateway, "TaskSecurityGroupId")?,
            ));
            // Only the gateway sends to the collector (it relays the clients' telemetry), so no
            // client network is admitted there.
            v.push(("CollectorHostname", hostname.clone()));
            v.push((
                "CertificateArn",
                certificate_arn.clone().unwrap_or_default(),
            ));
            v.push(("HostedZoneId", p.hosted_zone_id.clone().unwrap_or_default()));
            v.push(("CpuArchitecture", "X86_64".into()));
        }
        StackKind::Observability => {
            v.push((
                "GatewayLogGroupName",
                i.out(StackKind::Gateway, "GatewayLogGroupName")?,
            ));
            v.push((
                "LoadBalancerFullName",
                i.out(StackKind::Gateway, "LoadBalancerFullName")?,
            ));
            v.push((
                "TargetGroupFullName",
                i.out(StackKind::Gateway, "TargetGroupFullName")?,
            ));
            v.push((
                "DatabaseInstanceId",
                i.out(StackKind::Gateway, "DatabaseInstanceId")?,
            ));
            let collector = matches!(p.telemetry, Telemetry::Collector { .. });
            let ns = if collector {
                i.out(StackKind::Collector, "MetricsNamespace")?
            } else {
                String::new()
            };
            let events = if collector && p.telemetry_logs {
                i.out(StackKind::Collector, "EventsLogGroupName")?
            } else {
                String::new()
            };
            v.push(("ClientMetricsNamespace", ns));
            v.push(("EventsLogGroupName", events));
            v.push(("AlarmEmail", p.alarm_email.clone().unwrap_or_default()));
            v.push((
                "DailyCostThresholdUsd",
                p.daily_cost_threshold_usd.to_string(),
            ));
            v.push((
                "PerUserDailyCostThresholdUsd",
                p.per_user_daily_cost_threshold_usd.to_string(),
            ));
        }
        StackKind::Vpn => {
            let Some(vpn) = &p.vpn else {
                return Err(Error::usage("this profile has no VPN (VPN=false)"));
            };
            let cert = i.planned(
                i.vpn_certificate_arn.as_ref(),
                "imported VPN server certificate",
            )?;
            v.push(("ServerCertificateArn", cert.clone()));
            v.push(("ClientRootCertificateArn", cert));
            v.push(("VpcId", i.out(StackKind::Gateway, "VpcId")?));
            v.push(("SubnetIds", i.out(StackKind::Gateway, "PrivateSubnetIds")?));
            v.push(("VpcCidr", i.out(StackKind::Gateway, "VpcCidr")?));
            v.push(("ClientCidrBlock", vpn.client_cidr.to_string()));
            v.push(("DnsServer", vpn.dns_server.clone().unwrap_or_default()));
            v.push(("TransportProtocol", vpn.transport.clone()));
        }
    }
    Ok(v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// The profile key the value of parameter `param` of stack `kind` comes from (for messages), or
/// `None` for what the deployer derives or reads from other stacks.
pub fn profile_key(kind: StackKind, param: &str, p: &Profile) -> Option<&'static str> {
    use StackKind::*;
    Some(match (kind, param) {
        (Identity | Gateway, "GatewayHostname") => "GATEWAY_HOSTNAME",
        (Identity, "HostedUiDomainPrefix") => "COGNITO_DOMAIN_PREFIX",
        (Identity, "AdminEmail") => "COGNITO_ADMIN_EMAIL",
        (Identity, "AdminGroupName") => "ADMIN_GROUP",
        (Identity, "DeveloperGroupName") => "COGNITO_DEVELOPER_GROUP",
        (Identity, "RestrictedGroupName") => "COGNITO_RESTRICTED_GROUP",
        (Identity, "MfaConfiguration") => "COGNITO_MFA",
        (Identity, "UserPoolId") => "COGNITO_USER_POOL_ID",
        (Gateway, "GatewayImageUri") => match p.image {
            crate::profile::Image::Uri(_) => "GATEWAY_IMAGE",
            crate::profile::Image::Build { .. } => "ECR_REPOSITORY",
        },
        (Gateway, "CpuArchitecture") => "CPU_ARCHITECTURE",
        (Gateway, "OidcClientSecretArn") if matches!(p.idp, Idp::Oidc(_)) => {
            "OIDC_CLIENT_SECRET_ARN"
        }
        (Gateway, "EnableAdminApi") => "ADMIN_API",
        (Gateway, "AwsAccessRoleArns") => "AWS_ACCESS_ROLE_ARNS",
        (Gateway, "AwsAccessWebhookSecretArn") => "AWS_ACCESS_WEBHOOK_SECRET_ARN",
        (Gateway, "VpcId") => "EXISTING_VPC_ID",
        (Gateway, "VpcCidr") => "VPC_CIDR",
        (Gateway, "PrivateSubnetIds") => "EXISTING_PRIVATE_SUBNET_IDS",
        (Gateway, "SubnetCidrBits") => "SUBNET_CIDR_BITS",
        (Gateway, "NatGatewayCount") => "NAT_GATEWAYS",
        (Gateway, "ClientCidrs") => "CLIENT_CIDRS",
        (Gateway, "CertificateArn") if matches!(p.cert, CertMode::Byo { .. }) => "CERTIFICATE_ARN",
        (Gateway | Collector, "HostedZoneId") => "HOSTED_ZONE_ID",
        (Gateway, "TaskCpu") => "TASK_CPU",
        (Gateway, "TaskMemory") => "TASK_MEMORY",
        (Gateway, "MinTasks") => "MIN_TASKS",
        (Gateway, "StreamDrainSeconds") => "STREAM_DRAIN_SECONDS",
        (Gateway, "MaxTasks") => "MAX_TASKS",
        (Gateway, "DBInstanceClass") => "DB_INSTANCE_CLASS",
        (Gateway, "DBMultiAz") => "DB_MULTI_AZ",
        (Gateway, "DBDeletionProtection") => "DB_DELETION_PROTECTION",
        (Gateway, "LogRetentionDays") => "LOG_RETENTION_DAYS",
        (Collector, "CollectorHostname") => "COLLECTOR_HOSTNAME",
        (Collector, "CertificateArn") => "COLLECTOR_CERTIFICATE_ARN",
        (Observability, "AlarmEmail") => "ALARM_EMAIL",
        (Observability, "DailyCostThresholdUsd") => "DAILY_COST_THRESHOLD_USD",
        (Observability, "PerUserDailyCostThresholdUsd") => "PER_USER_DAILY_COST_THRESHOLD_USD",
        (Vpn, "ClientCidrBlock") => "VPN_CLIENT_CIDR",
        (Vpn, "DnsServer") => "VPN_DNS_SERVER",
        (Vpn, "TransportProtocol") => "VPN_TRANSPORT",
        _ => return None,
    })
}
