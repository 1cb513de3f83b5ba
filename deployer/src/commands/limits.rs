//! Preflight of the account's limits: the quotas a first deployment counts against (Elastic IPs
//! for NAT gateways, VPCs, Client VPN endpoints) and the service-linked roles ECS, Elastic Load
//! Balancing, RDS and Client VPN act through. What the profile needs ([`needs`]) and what the
//! account answered ([`Facts`]) become preflight lines in one pure step ([`lines`]); [`facts`]
//! asks EC2 and IAM.

use crate::aws::query::{self, CallError, Service};
use crate::aws::Aws;
use crate::profile::{Network, Profile};

/// The default "VPCs per Region" quota (Amazon VPC), which EC2 does not report.
pub const DEFAULT_VPC_QUOTA: u32 = 5;
/// The default "Client VPN endpoints per Region" quota, which EC2 does not report.
pub const DEFAULT_CLIENT_VPN_QUOTA: u32 = 5;

/// A service-linked role a stack's resources need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRole {
    /// The role's name, e.g. `AWSServiceRoleForECS`.
    pub name: &'static str,
    /// The service principal that owns it, e.g. `ecs.amazonaws.com`.
    pub service: &'static str,
    /// What needs it.
    pub used_by: &'static str,
}

const ECS: ServiceRole = ServiceRole {
    name: "AWSServiceRoleForECS",
    service: "ecs.amazonaws.com",
    used_by: "the first Fargate service",
};
const ELB: ServiceRole = ServiceRole {
    name: "AWSServiceRoleForElasticLoadBalancing",
    service: "elasticloadbalancing.amazonaws.com",
    used_by: "the load balancer",
};
const RDS: ServiceRole = ServiceRole {
    name: "AWSServiceRoleForRDS",
    service: "rds.amazonaws.com",
    used_by: "the PostgreSQL database",
};
const CLIENT_VPN: ServiceRole = ServiceRole {
    name: "AWSServiceRoleForClientVPN",
    service: "clientvpn.amazonaws.com",
    used_by: "the Client VPN endpoint",
};

/// What deploying the profile adds to the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// New VPCs.
    pub vpcs: u32,
    /// New Elastic IP addresses (one per NAT gateway).
    pub elastic_ips: u32,
    /// New Client VPN endpoints.
    pub client_vpn_endpoints: u32,
    /// Service-linked roles the resources act through.
    pub roles: Vec<ServiceRole>,
}

/// What `p` adds; resources of a stack that exists already (`gateway_exists`, `vpn_exists`) are
/// counted in the account's usage, not again as new.
pub fn needs(p: &Profile, gateway_exists: bool, vpn_exists: bool) -> Needs {
    let (vpcs, elastic_ips) = match &p.network {
        Network::New { nat_gateways, .. } if !gateway_exists => (1, u32::from(*nat_gateways)),
        _ => (0, 0),
    };
    let vpn = p.vpn.is_some();
    let mut roles = vec![ECS, ELB, RDS];
    if vpn {
        roles.push(CLIENT_VPN);
    }
    Needs {
        vpcs,
        elastic_ips,
        client_vpn_endpoints: u32::from(vpn && !vpn_exists),
        roles,
    }
}

/// Whether a service-linked role exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleState {
    /// It exists.
    Present,
    /// IAM answered NoSuchEntity.
    Missing,
    /// It could not be checked (e.g. no iam:GetRole).
    Unknown(String),
}

/// The account's answers; `Err` holds why one could not be had.
#[derive(Debug, Clone)]
pub struct Facts {
    /// EC2's `vpc-max-elastic-ips` account attribute (the Elastic IP quota).
    pub elastic_ip_quota: Result<u32, String>,
    /// Elastic IP addresses allocated in the Region.
    pub elastic_ips: Result<u32, String>,
    /// VPCs in the Region.
    pub vpcs: Result<u32, String>,
    /// Client VPN endpoints in the Region.
    pub client_vpn_endpoints: Result<u32, String>,
    /// Each needed role and whether it exists.
    pub roles: Vec<(ServiceRole, RoleState)>,
}

/// How serious a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Passes.
    Ok,
    /// Might fail; the deployment goes on.
    Warn,
    /// Would fail; the deployment stops here.
    Fail,
}

/// One preflight line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// How serious.
    pub level: Level,
    /// What to print.
    pub text: String,
}

impl Line {
    fn new(level: Level, text: String) -> Self {
        Self { level, text }
    }

    /// The line as preflight prints it.
    pub fn render(&self) -> String {
        let mark = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn ",
            Level::Fail => "FAIL ",
        };
        format!("  {mark}{}", self.text)
    }
}

/// The preflight lines for `needs` against `facts` in `region`.
pub fn lines(needs: &Needs, facts: &Facts, region: &str) -> Vec<Line> {
    let mut out = Vec::new();
    if needs.elastic_ips > 0 {
        match (&facts.elastic_ip_quota, &facts.elastic_ips) {
            (Ok(quota), Ok(used)) if used + needs.elastic_ips > *quota => out.push(Line::new(
                Level::Fail,
                format!(
                    "Elastic IPs: {used} of {quota} allocated in {region} and the NAT gateway(s) need {}; \
                     release unused addresses (aws ec2 describe-addresses --region {region}) or raise the \
                     \"EC2-VPC Elastic IPs\" quota: aws service-quotas request-service-quota-increase \
                     --region {region} --service-code ec2 --quota-code L-0263D0A3 --desired-value {}",
                    needs.elastic_ips,
                    used + needs.elastic_ips
                ),
            )),
            (Ok(quota), Ok(used)) => out.push(Line::new(
                Level::Ok,
                format!(
                    "Elastic IPs: {used} of {quota} allocated, {} more for NAT",
                    needs.elastic_ips
                ),
            )),
            (Err(e), _) | (_, Err(e)) => out.push(Line::new(
                Level::Warn,
                format!("Elastic IPs not checked ({e}); the NAT gateway(s) need {}", needs.elastic_ips),
            )),
        }
    }
    if needs.vpcs > 0 {
        out.push(count_line(
            "VPCs",
            facts.vpcs.as_ref(),
            needs.vpcs,
            DEFAULT_VPC_QUOTA,
            region,
            "\"VPCs per Region\" quota (Amazon VPC): aws service-quotas request-service-quota-increase \
             --service-code vpc --quota-code L-F678F1CE",
        ));
    }
    if needs.client_vpn_endpoints > 0 {
        out.push(count_line(
            "Client VPN endpoints",
            facts.client_vpn_endpoints.as_ref(),
            needs.client_vpn_endpoints,
            DEFAULT_CLIENT_VPN_QUOTA,
            region,
            "\"Client VPN endpoints per Region\" quota in the Service Quotas console",
        ));
    }
    for (role, state) in &facts.roles {
        let create = format!(
            "aws iam create-service-linked-role --aws-service-name {}",
            role.service
        );
        out.push(match state {
            RoleState::Present => Line::new(
                Level::Ok,
                format!("service-linked role {} exists", role.name),
            ),
            RoleState::Missing => Line::new(
                Level::Warn,
                format!(
                    "service-linked role {} does not exist yet: AWS makes it when {} is first created \
                     (the deploying credentials need iam:CreateServiceLinkedRole for {}); without that permission, have an \
                     administrator run: {create}",
                    role.name, role.used_by, role.service
                ),
            ),
            RoleState::Unknown(e) => Line::new(
                Level::Warn,
                format!(
                    "service-linked role {} not checked ({e}); {} needs it (create it with: {create})",
                    role.name, role.used_by
                ),
            ),
        });
    }
    out
}

/// A count whose quota EC2 does not report: over the default quota warns (it may have been
/// raised), never fails.
fn count_line(
    what: &str,
    count: Result<&u32, &String>,
    need: u32,
    default_quota: u32,
    region: &str,
    raise: &str,
) -> Line {
    match count {
        Ok(n) if n + need > default_quota => Line::new(
            Level::Warn,
            format!(
                "{what}: {n} in {region} and the deployment adds {need}, over the default quota of \
                 {default_quota}; unless it was raised the stack fails: delete unused ones or raise the {raise}"
            ),
        ),
        Ok(n) => Line::new(
            Level::Ok,
            format!("{what}: {n} in {region}, {need} more (default quota {default_quota})"),
        ),
        Err(e) => Line::new(
            Level::Warn,
            format!("{what} not checked ({e}); the deployment adds {need}"),
        ),
    }
}

/// Asks EC2 and IAM for what `needs` is checked against; a call that fails leaves its answer
/// as the reason.
pub async fn facts(aws: &Aws, needs: &Needs) -> Facts {
    let skipped = || Err("not needed".to_owned());
    let (elastic_ip_quota, elastic_ips) = if needs.elastic_ips > 0 {
        (
            elastic_ip_quota(aws).await,
            count(aws, "DescribeAddresses", "allocationId").await,
        )
    } else {
        (skipped(), skipped())
    };
    let vpcs = if needs.vpcs > 0 {
        count(aws, "DescribeVpcs", "vpcId").await
    } else {
        skipped()
    };
    let client_vpn_endpoints = if needs.client_vpn_endpoints > 0 {
        count(aws, "DescribeClientVpnEndpoints", "clientVpnEndpointId").await
    } else {
        skipped()
    };
    let mut roles = Vec::new();
    for role in &needs.roles {
        let state =
            match query::call(aws, Service::Iam, "GetRole", &[("RoleName", role.name)]).await {
                Ok(_) => RoleState::Present,
                Err(CallError { code: Some(c), .. }) if c == "NoSuchEntity" => RoleState::Missing,
                Err(e) => RoleState::Unknown(e.to_string()),
            };
        roles.push((*role, state));
    }
    Facts {
        elastic_ip_quota,
        elastic_ips,
        vpcs,
        client_vpn_endpoints,
        roles,
    }
}

async fn elastic_ip_quota(aws: &Aws) -> Result<u32, String> {
    let xml = query::call(
        aws,
        Service::Ec2,
        "DescribeAccountAttributes",
        &[("AttributeName.1", "vpc-max-elastic-ips")],
    )
    .await
    .map_err(|e| e.to_string())?;
    query::values(&xml, "attributeValue")
        .first()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "EC2 gave no vpc-max-elastic-ips attribute".to_owned())
}

/// How many `id` elements the answer to `action` holds, following `nextToken` for a bounded
/// number of pages.
async fn count(aws: &Aws, action: &str, id: &str) -> Result<u32, String> {
    const MAX_PAGES: usize = 50;
    let mut total = 0u32;
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut params = vec![];
        if let Some(t) = &token {
            params.push(("NextToken", t.as_str()));
        }
        let xml = query::call(aws, Service::Ec2, action, &params)
            .await
            .map_err(|e| e.to_string())?;
        total =
            total.saturating_add(u32::try_from(query::values(&xml, id).len()).unwrap_or(u32::MAX));
        token = query::values(&xml, "nextToken")
            .into_iter()
            .next()
            .filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(total);
        }
    }
    Err(format!("{action} gave more than {MAX_PAGES} pages"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str) -> Profile {
        let path = format!("{}/../config/{name}.env", env!("CARGO_MANIFEST_DIR"));
        crate::profile::from_text(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
    }

    fn facts(
        eip_quota: u32,
        eips: u32,
        vpcs: u32,
        vpn: u32,
        roles: &[(ServiceRole, RoleState)],
    ) -> Facts {
        Facts {
            elastic_ip_quota: Ok(eip_quota),
            elastic_ips: Ok(eips),
            vpcs: Ok(vpcs),
            client_vpn_endpoints: Ok(vpn),
            roles: roles.to_vec(),
        }
    }

    fn find<'a>(lines: &'a [Line], what: &str) -> &'a Line {
        lines
            .iter()
            .find(|l| l.text.contains(what))
            .unwrap_or_else(|| panic!("no line about {what}: {lines:?}"))
    }

    #[test]
    fn a_new_vpc_with_a_vpn_needs_a_vpc_eips_an_endpoint_and_four_roles() {
        let p = profile("managed-newcognito-collector-vpn");
        let Network::New { nat_gateways, .. } = p.network else {
            panic!("the profile makes its VPC")
        };
        let n = needs(&p, false, false);
        assert_eq!(n.vpcs, 1);
        assert_eq!(n.elastic_ips, u32::from(nat_gateways));
        assert_eq!(n.client_vpn_endpoints, 1);
        let names: Vec<&str> = n.roles.iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            [
                "AWSServiceRoleForECS",
                "AWSServiceRoleForElasticLoadBalancing",
                "AWSServiceRoleForRDS",
                "AWSServiceRoleForClientVPN"
            ]
        );
        // Deployed already: what the stacks made is usage, not a new need.
        let again = needs(&p, true, true);
        assert_eq!(
            (again.vpcs, again.elastic_ips, again.client_vpn_endpoints),
            (0, 0, 0)
        );
        assert_eq!(again.roles.len(), 4);
    }

    #[test]
    fn no_vpn_needs_no_endpoint_and_no_client_vpn_role() {
        let p = profile("byo-oidc-notelemetry");
        let n = needs(&p, false, false);
        assert_eq!(n.client_vpn_endpoints, 0);
        assert!(n
            .roles
            .iter()
            .all(|r| r.name != "AWSServiceRoleForClientVPN"));
    }

    #[test]
    fn elastic_ips_over_the_quota_fail_with_the_quota_and_how_to_raise_it() {
        let n = Needs {
            vpcs: 1,
            elastic_ips: 2,
            client_vpn_endpoints: 0,
            roles: vec![],
        };
        let l = lines(&n, &facts(5, 4, 1, 0, &[]), "eu-west-1");
        let eip = find(&l, "Elastic IPs");
        assert_eq!(eip.level, Level::Fail);
        assert!(eip.text.contains("4 of 5 allocated"), "{}", eip.text);
        assert!(
            eip.text
                .contains("--quota-code L-0263D0A3 --desired-value 6"),
            "{}",
            eip.text
        );
        let l = lines(&n, &facts(5, 3, 1, 0, &[]), "eu-west-1");
        assert_eq!(find(&l, "Elastic IPs").level, Level::Ok);
    }

    #[test]
    fn counts_over_a_default_quota_warn_and_unknowns_warn() {
        let n = Needs {
            vpcs: 1,
            elastic_ips: 0,
            client_vpn_endpoints: 1,
            roles: vec![],
        };
        let l = lines(&n, &facts(5, 0, 5, 4, &[]), "us-east-1");
        let vpc = find(&l, "VPCs");
        assert_eq!(vpc.level, Level::Warn);
        assert!(
            vpc.text.contains("default quota of 5") && vpc.text.contains("L-F678F1CE"),
            "{}",
            vpc.text
        );
        assert_eq!(find(&l, "Client VPN endpoints").level, Level::Ok);
        assert!(
            l.iter().all(|x| !x.text.contains("Elastic IPs")),
            "no NAT, no EIP line: {l:?}"
        );
        let mut f = facts(5, 0, 1, 0, &[]);
        f.client_vpn_endpoints = Err("AccessDenied: no".into());
        let l = lines(&n, &f, "us-east-1");
        let vpn = find(&l, "Client VPN endpoints not checked");
        assert_eq!(vpn.level, Level::Warn);
        assert!(vpn.text.contains("AccessDenied"), "{}", vpn.text);
    }

    #[test]
    fn a_missing_service_linked_role_warns_with_the_command_that_creates_it() {
        let n = Needs {
            vpcs: 0,
            elastic_ips: 0,
            client_vpn_endpoints: 0,
            roles: vec![ECS, RDS, ELB],
        };
        let l = lines(
            &n,
            &facts(
                5,
                0,
                0,
                0,
                &[
                    (ECS, RoleState::Present),
                    (RDS, RoleState::Missing),
                    (
                        ELB,
                        RoleState::Unknown("AccessDenied: no iam:GetRole".into()),
                    ),
                ],
            ),
            "us-east-1",
        );
        assert_eq!(l.len(), 3, "{l:?}");
        assert_eq!(find(&l, "AWSServiceRoleForECS exists").level, Level::Ok);
        let rds = find(&l, "AWSServiceRoleForRDS");
        assert_eq!(rds.level, Level::Warn);
        assert!(
            rds.text.contains(
                "aws iam create-service-linked-role --aws-service-name rds.amazonaws.com"
            ),
            "{}",
            rds.text
        );
        let elb = find(&l, "AWSServiceRoleForElasticLoadBalancing");
        assert!(
            elb.text.contains("not checked (AccessDenied"),
            "{}",
            elb.text
        );
        assert!(l.iter().all(|x| x.level != Level::Fail));
    }
}
