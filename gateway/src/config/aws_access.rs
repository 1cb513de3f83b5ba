//! `aws_access`: the projects whose AWS accounts developers' agents may reach through the gateway,
//! and who may reach them, at what level and for how long. Projects come only from config; the
//! members here are the static ones (the Admin API adds more at run time).

use serde::{Deserialize, Serialize};

use super::error::Issue;
use super::Secret;
use crate::aws_access::policy::session_policy;
use crate::aws_access::session::{MAX_SESSION, MIN_SESSION};

/// `aws_access`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsAccess {
    /// The projects.
    pub projects: Vec<AwsProject>,
    /// Members given in config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<AwsMember>,
    /// How old a multi-factor sign-in may be for prod write credentials, in seconds.
    #[serde(default = "AwsAccess::default_mfa_max_age")]
    pub mfa_max_age_seconds: u32,
    /// How old a gateway session token may be when it asks for credentials, in seconds: an older
    /// one is refused (401) so the client refreshes it, which asks the IdP again (a developer
    /// removed from a group there gets nothing after at most this long).
    #[serde(default = "AwsAccess::default_token_max_age")]
    pub token_max_age_seconds: u32,
    /// The STS endpoint; none: the SDK's own for the gateway's region (an override is for tests
    /// and private endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_endpoint_url: Option<String>,
    /// Where new write requests are announced (Slack-compatible JSON); a secret, as such URLs
    /// carry their own credential. https, or http on a loopback address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<Secret>,
    /// The gateway in the data path (`--via-gateway` credentials); none: agents hold STS
    /// credentials only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<super::aws_proxy::AwsProxy>,
    /// The MCP server at `/mcp` (needs `proxy`); none: no MCP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<super::mcp::Mcp>,
}

impl AwsAccess {
    fn default_mfa_max_age() -> u32 {
        900
    }

    fn default_token_max_age() -> u32 {
        600
    }
}

/// `aws_access.projects[]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsProject {
    /// Lowercase letters, digits and `-`; what developers name.
    pub name: String,
    /// The role in the project's account the gateway assumes.
    pub role_arn: String,
    /// Regions the project's resources live in.
    pub regions: Vec<String>,
    /// The tag the project's resources carry.
    pub tag: ProjectTag,
    /// `prod` or `nonprod`.
    pub environment: Environment,
    /// IAM actions of the `read` level (the default level).
    pub read: Vec<String>,
    /// IAM actions `write` adds to `read`; none: the project has no write level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<String>,
    /// Denied besides the built-in list; a deny wins over any allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Longest credential, in seconds: 900 to 3600.
    #[serde(default = "AwsProject::default_max_session")]
    pub max_session_seconds: u32,
    /// IdP groups whose members approve write requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Whether write needs a person's approval: `required` (the default), or `auto` (nonprod only).
    #[serde(default)]
    pub write_approval: WriteApproval,
}

impl AwsProject {
    fn default_max_session() -> u32 {
        3600
    }

    /// The levels the project has: `read`, and `write` when it lists write actions.
    pub fn levels(&self) -> Vec<Level> {
        if self.write.is_empty() {
            vec![Level::Read]
        } else {
            vec![Level::Read, Level::Write]
        }
    }

    /// The IAM actions a credential at `level` is allowed: `read`'s, and at `write` `write`'s too.
    pub fn actions(&self, level: Level) -> Vec<String> {
        match level {
            Level::Read => self.read.clone(),
            Level::Write => self.read.iter().chain(&self.write).cloned().collect(),
        }
    }
}

/// A project's resource tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectTag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

/// A project's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production: write credentials need recent MFA.
    Prod,
    /// Anything else.
    Nonprod,
}

/// Whether a write level needs approval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteApproval {
    /// A person approves each request.
    #[default]
    Required,
    /// Granted on request (nonprod projects only).
    Auto,
}

/// An access level.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The project's `read` actions.
    #[default]
    Read,
    /// `read` and `write` actions.
    Write,
}

impl Level {
    /// `read` or `write`, as written in config, tags and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
        }
    }
}

/// `aws_access.members[]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsMember {
    /// The project's name.
    pub project: String,
    /// IdP groups whose members this entry covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Emails this entry covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    /// The highest level they may hold.
    #[serde(default)]
    pub level: Level,
    /// Start of the window (RFC 3339); none: open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// End of the window (RFC 3339): the developer's time on the project ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

fn rfc3339(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty()))
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// https anywhere, http only to a loopback address.
fn is_webhook_url(s: &str) -> bool {
    let Ok(u) = url::Url::parse(s) else {
        return false;
    };
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    u.host().is_some() && (u.scheme() == "https" || (u.scheme() == "http" && loopback))
}

/// Every rule of the section, as issues with their paths.
pub fn check(a: &AwsAccess) -> Vec<Issue> {
    let mut out = Vec::new();
    let mut err = |path: String, message: String| out.push(Issue::new(path, message));
    if a.projects.is_empty() {
        err("aws_access.projects".into(), "at least one project".into());
    }
    if !(60..=86_400).contains(&a.mfa_max_age_seconds) {
        err(
            "aws_access.mfa_max_age_seconds".into(),
            "must be 60 to 86400".into(),
        );
    }
    if !(60..=86_400).contains(&a.token_max_age_seconds) {
        err(
            "aws_access.token_max_age_seconds".into(),
            "must be 60 to 86400".into(),
        );
    }
    if let Some(u) = &a.sts_endpoint_url {
        if !matches!(url::Url::parse(u), Ok(p) if matches!(p.scheme(), "https" | "http")) {
            err(
                "aws_access.sts_endpoint_url".into(),
                "must be an http(s) URL".into(),
            );
        }
    }
    if let Some(u) = &a.webhook_url {
        if !is_webhook_url(u.expose()) {
            // The URL is a secret: the message does not repeat it.
            err(
                "aws_access.webhook_url".into(),
                "must be an https URL (http only on a loopback address)".into(),
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, p) in a.projects.iter().enumerate() {
        let at = format!("aws_access.projects[{i}]");
        if !is_name(&p.name) {
            err(
                format!("{at}.name"),
                "1 to 64 lowercase letters, digits and -".into(),
            );
        } else if !seen.insert(p.name.as_str()) {
            err(
                format!("{at}.name"),
                format!("{:?} is listed twice", p.name),
            );
        }
        if !is_role_arn(&p.role_arn) {
            err(
                format!("{at}.role_arn"),
                "must be an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)".into(),
            );
        }
        if p.regions.is_empty() {
            err(format!("{at}.regions"), "at least one region".into());
        }
        for (j, r) in p.regions.iter().enumerate() {
            if !is_region(r) {
                err(
                    format!("{at}.regions[{j}]"),
                    format!("{r:?} is not an AWS region name"),
                );
            }
        }
        if p.tag.key.is_empty() || p.tag.key.chars().count() > 128 {
            err(format!("{at}.tag.key"), "1 to 128 characters".into());
        }
        if p.tag.value.is_empty() || p.tag.value.chars().count() > 256 {
            err(format!("{at}.tag.value"), "1 to 256 characters".into());
        } else if !p.tag.value.chars().all(tag_char_ok) {
            // Every credential carries it as its `project` session tag, which the project role
            // compares with the resources' tag: a character STS refuses would not match.
            err(
                format!("{at}.tag.value"),
                "letters, digits, spaces and _.:/=+-@ only (it is a session tag value)".into(),
            );
        }
        let min = MIN_SESSION.whole_seconds();
        let max = MAX_SESSION.whole_seconds();
        if !(min..=max).contains(&i64::from(p.max_session_seconds)) {
            err(
                format!("{at}.max_session_seconds"),
                format!("must be {min} to {max}"),
            );
        }
        if let Err(e) = session_policy(&p.read, &p.deny) {
            err(format!("{at}.read"), format!("project {}: {e}", p.name));
        }
        if !p.write.is_empty() {
            let both: Vec<String> = p.read.iter().chain(&p.write).cloned().collect();
            if let Err(e) = session_policy(&both, &p.deny) {
                err(
                    format!("{at}.write"),
                    format!("project {}: with read, {e}", p.name),
                );
            }
            if p.write_approval == WriteApproval::Required && p.approvers.is_empty() {
                err(
                    format!("{at}.approvers"),
                    "a write level that needs approval needs approvers".into(),
                );
            }
            let shortest = crate::aws_access::session::MIN_WRITE_GRANT_SECONDS;
            if p.write_approval == WriteApproval::Required
                && i64::from(p.max_session_seconds) < shortest
            {
                // Write requests last up to max_session_seconds and at least `shortest`.
                err(
                    format!("{at}.max_session_seconds"),
                    format!("at least {shortest} on a project whose write needs approval"),
                );
            }
        }
        if p.write_approval == WriteApproval::Auto && p.environment == Environment::Prod {
            err(
                format!("{at}.write_approval"),
                "auto is for nonprod projects only".into(),
            );
        }
    }
    for (i, m) in a.members.iter().enumerate() {
        let at = format!("aws_access.members[{i}]");
        match a.projects.iter().find(|p| p.name == m.project) {
            None => err(
                format!("{at}.project"),
                format!("{:?} is no project", m.project),
            ),
            Some(p) if m.level == Level::Write && p.write.is_empty() => {
                err(
                    format!("{at}.level"),
                    format!("project {} has no write level", p.name),
                );
            }
            Some(_) => {}
        }
        if m.groups.is_empty() && m.emails.is_empty() {
            err(at.clone(), "name groups or emails".into());
        }
        let from = m.from.as_deref().map(|s| (s, rfc3339(s)));
        let until = m.until.as_deref().map(|s| (s, rfc3339(s)));
        for (key, v) in [("from", from), ("until", until)] {
            if let Some((s, None)) = v {
                err(
                    format!("{at}.{key}"),
                    format!("{s:?} is not an RFC 3339 time"),
                );
            }
        }
        if let (Some((_, Some(f))), Some((_, Some(u)))) = (from, until) {
            if f >= u {
                err(format!("{at}.until"), "must be after from".into());
            }
        }
    }
    if let Some(p) = &a.proxy {
        out.extend(super::aws_proxy::check(p));
    }
    if let Some(m) = &a.mcp {
        out.extend(super::mcp::check(m, a.proxy.is_some()));
    }
    out
}

/// Whether STS allows `c` in a session tag value (letters, digits, spaces and `_.:/=+-@`).
pub fn tag_char_ok(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c)
}

/// A prod project with read and write levels, for tests.
#[cfg(test)]
pub(crate) fn example_project(
    environment: Environment,
    write_approval: WriteApproval,
) -> AwsProject {
    AwsProject {
        name: "payments".into(),
        role_arn: "arn:aws:iam::123456789012:role/agent-payments".into(),
        regions: vec!["eu-west-1".into()],
        tag: ProjectTag {
            key: "project".into(),
            value: "payments".into(),
        },
        environment,
        read: vec!["s3:Get*".into()],
        write: vec!["s3:PutObject".into()],
        deny: vec![],
        max_session_seconds: 3600,
        approvers: vec!["leads".into()],
        write_approval,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{load, MapEnv};

    use crate::config::load::test_base::BASE;

    const PROJECT: &str = "
aws_access:
  projects:
    - name: payments
      role_arn: arn:aws:iam::123456789012:role/agent-payments
      regions: [eu-west-1]
      tag: {key: project, value: payments}
      environment: prod
      read: ['logs:FilterLogEvents', 's3:Get*', 's3:List*']
      write: ['s3:PutObject']
      approvers: [payments-leads]
  members:
    - {project: payments, groups: [payments], level: write, from: '2026-11-01T00:00:00Z', until: '2027-03-01T00:00:00Z'}
";

    fn issues(yaml: &str) -> Vec<(String, String)> {
        load(yaml, &MapEnv::new())
            .err()
            .map(|e| e.issues.into_iter().map(|i| (i.path, i.message)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_project_with_its_members_loads_with_its_defaults() {
        let c = load(&format!("{BASE}{PROJECT}"), &MapEnv::new())
            .unwrap()
            .config;
        let a = c.aws_access.unwrap();
        assert_eq!(a.projects[0].max_session_seconds, 3600);
        assert_eq!(a.projects[0].write_approval, super::WriteApproval::Required);
        assert_eq!(a.members[0].level, super::Level::Write);
        assert_eq!(a.mfa_max_age_seconds, 900);
        assert_eq!(a.token_max_age_seconds, 600);
        assert!(load(BASE, &MapEnv::new())
            .unwrap()
            .config
            .aws_access
            .is_none());
    }

    #[test]
    fn every_rule_names_its_path() {
        let cases = [
            (
                "name: payments",
                "name: Payments",
                "aws_access.projects[0].name",
            ),
            (
                "::123456789012:role/",
                "::1234:role/",
                "aws_access.projects[0].role_arn",
            ),
            (
                "[eu-west-1]",
                "[europe]",
                "aws_access.projects[0].regions[0]",
            ),
            ("'s3:Get*'", "'S3:Get*'", "aws_access.projects[0].read"),
            (
                "approvers: [payments-leads]",
                "approvers: []",
                "aws_access.projects[0].approvers",
            ),
            (
                "approvers: [payments-leads]",
                "write_approval: auto",
                "aws_access.projects[0].write_approval",
            ),
            (
                "project: payments,",
                "project: billing,",
                "aws_access.members[0].project",
            ),
            ("groups: [payments], ", "", "aws_access.members[0]"),
            (
                "until: '2027-03-01T00:00:00Z'",
                "until: '2026-10-01T00:00:00Z'",
                "aws_access.members[0].until",
            ),
            (
                "from: '2026-11-01T00:00:00Z'",
                "from: 'soon'",
                "aws_access.members[0].from",
            ),
            (
                "environment: prod",
                "environment: prod\n      max_session_seconds: 60",
                "aws_access.projects[0].max_session_seconds",
            ),
            (
                "environment: prod",
                "environment: prod\n      max_session_seconds: 900",
                "aws_access.projects[0].max_session_seconds",
            ),
            (
                "value: payments}",
                "value: 'payments#1'}",
                "aws_access.projects[0].tag.value",
            ),
            (
                "  members:",
                "  mfa_max_age_seconds: 5\n  members:",
                "aws_access.mfa_max_age_seconds",
            ),
            (
                "  members:",
                "  token_max_age_seconds: 0\n  members:",
                "aws_access.token_max_age_seconds",
            ),
            (
                "  members:",
                "  sts_endpoint_url: sts.example.com\n  members:",
                "aws_access.sts_endpoint_url",
            ),
            (
                "  members:",
                "  webhook_url: http://hooks.example.com/T0\n  members:",
                "aws_access.webhook_url",
            ),
        ];
        for (from, to, path) in cases {
            let yaml = format!("{BASE}{}", PROJECT.replacen(from, to, 1));
            let found = issues(&yaml);
            assert!(
                found.iter().any(|(p, _)| p == path),
                "{from} -> {to}: expected {path}, got {found:?}"
            );
        }
    }

    #[test]
    fn a_webhook_is_https_or_loopback_http() {
        for ok in [
            "https://hooks.slack.com/services/T0/B0/x",
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://localhost/hook",
        ] {
            assert!(super::is_webhook_url(ok), "{ok}");
        }
        for bad in [
            "http://hooks.example.com/x",
            "http://10.0.0.1/x",
            "ftp://example.com/x",
            "hooks.slack.com/x",
            "https://",
        ] {
            assert!(!super::is_webhook_url(bad), "{bad}");
        }
    }

    #[test]
    fn a_session_policy_over_the_sts_limit_is_refused_at_load_naming_the_project() {
        let many: Vec<String> = (0..150)
            .map(|i| format!("'ec2:DescribeThing{i}'"))
            .collect();
        let yaml = format!(
            "{BASE}{}",
            PROJECT.replace(
                "read: ['logs:FilterLogEvents', 's3:Get*', 's3:List*']",
                &format!("read: [{}]", many.join(", "))
            )
        );
        let found = issues(&yaml);
        let (path, message) = found
            .iter()
            .find(|(p, _)| p == "aws_access.projects[0].read")
            .unwrap_or_else(|| panic!("{found:?}"));
        assert_eq!(path, "aws_access.projects[0].read");
        assert!(
            message.starts_with("project payments: its session policy is"),
            "{message}"
        );
    }
}
