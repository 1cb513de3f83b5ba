//! `aws_access.proxy`: the gateway in the data path of agents' AWS calls. With this section,
//! developers may take gateway-only credentials (`claude-aws credentials --via-gateway`) whose
//! calls the gateway checks, holds for approval when risky, re-signs, masks and records.

use serde::{Deserialize, Serialize};

use super::error::Issue;

/// `aws_access.proxy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsProxy {
    /// Where re-signed calls go, for every service; none: AWS's own endpoint of the service and
    /// region. An override is for tests and for a private endpoint that fronts AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_url: Option<String>,
    /// The longest request body the proxy reads (it must see the whole body to check its
    /// signature), in bytes.
    #[serde(default = "AwsProxy::default_max_request_bytes")]
    pub max_request_bytes: u64,
    /// How long AWS may take to start answering, and to send a text answer the proxy reads
    /// whole to mask it, in seconds.
    #[serde(default = "AwsProxy::default_upstream_timeout")]
    pub upstream_timeout_seconds: u32,
    /// Calls per user and class in a window, shared by every replica.
    #[serde(default)]
    pub limits: CallLimits,
    /// Which calls a person approves first.
    #[serde(default)]
    pub risk: Risk,
    /// Holding a call for approval.
    #[serde(default)]
    pub approval: CallApproval,
    /// Masking answers (and the parameters recorded).
    #[serde(default)]
    pub masking: Masking,
    /// Recording calls.
    #[serde(default)]
    pub recording: Recording,
}

impl AwsProxy {
    fn default_max_request_bytes() -> u64 {
        16 * 1024 * 1024
    }

    fn default_upstream_timeout() -> u32 {
        60
    }
}

/// `aws_access.proxy.limits`: tiered rate limits per user and call class.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallLimits {
    /// The window, in seconds.
    #[serde(default = "CallLimits::default_window")]
    pub window_seconds: u32,
    /// Reads per window.
    #[serde(default = "CallLimits::default_read")]
    pub read: u32,
    /// Lists per window.
    #[serde(default = "CallLimits::default_list")]
    pub list: u32,
    /// Writes per window.
    #[serde(default = "CallLimits::default_write")]
    pub write: u32,
}

impl CallLimits {
    fn default_window() -> u32 {
        300
    }
    fn default_read() -> u32 {
        100
    }
    fn default_list() -> u32 {
        50
    }
    fn default_write() -> u32 {
        10
    }
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            window_seconds: Self::default_window(),
            read: Self::default_read(),
            list: Self::default_list(),
            write: Self::default_write(),
        }
    }
}

/// `aws_access.proxy.risk`: what makes a call need a person's approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Risk {
    /// Every write.
    #[serde(default = "yes")]
    pub writes: bool,
    /// Every write on a prod project (even with `writes` off).
    #[serde(default = "yes")]
    pub prod: bool,
    /// IAM action patterns (`dynamodb:BatchWriteItem`, `secretsmanager:GetSecretValue`) that
    /// need approval whatever their class.
    #[serde(default = "Risk::default_actions")]
    pub actions: Vec<String>,
    /// A write that names resources with a wildcard (`*` in a parameter value).
    #[serde(default = "yes")]
    pub wildcard_names: bool,
}

fn yes() -> bool {
    true
}

impl Risk {
    fn default_actions() -> Vec<String> {
        ["dynamodb:BatchWriteItem", "sqs:PurgeQueue"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
}

impl Default for Risk {
    fn default() -> Self {
        Self {
            writes: true,
            prod: true,
            actions: Self::default_actions(),
            wildcard_names: true,
        }
    }
}

/// `aws_access.proxy.approval`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallApproval {
    /// How long a call is held while approvers are asked, in seconds; then the agent gets an
    /// error naming the approval link. Below the SDKs' own read timeout (60 s).
    #[serde(default = "CallApproval::default_wait")]
    pub wait_seconds: u32,
    /// How long an approval lets the identical call through again, in seconds.
    #[serde(default = "CallApproval::default_valid")]
    pub valid_seconds: u32,
}

impl CallApproval {
    fn default_wait() -> u32 {
        45
    }
    fn default_valid() -> u32 {
        900
    }
}

impl Default for CallApproval {
    fn default() -> Self {
        Self {
            wait_seconds: Self::default_wait(),
            valid_seconds: Self::default_valid(),
        }
    }
}

/// What happens to an answer body that is not text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binary {
    /// Passed as it is (it is not masked).
    #[default]
    Pass,
    /// Refused.
    Refuse,
}

/// `aws_access.proxy.masking`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Masking {
    /// The largest answer body masked, in bytes.
    #[serde(default = "Masking::default_max_body")]
    pub max_body_bytes: u64,
    /// A text body over `max_body_bytes` is refused instead of passed unmasked.
    #[serde(default)]
    pub strict: bool,
    /// Binary bodies: `pass` or `refuse`.
    #[serde(default)]
    pub binary: Binary,
    /// Mask email addresses.
    #[serde(default)]
    pub emails: bool,
    /// Mask phone numbers.
    #[serde(default)]
    pub phones: bool,
    /// Key paths whose values are masked (`Parameter.Value`, `Items.*.token`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl Masking {
    fn default_max_body() -> u64 {
        1024 * 1024
    }
}

impl Default for Masking {
    fn default() -> Self {
        Self {
            max_body_bytes: Self::default_max_body(),
            strict: false,
            binary: Binary::Pass,
            emails: false,
            phones: false,
            paths: Vec::new(),
        }
    }
}

/// `aws_access.proxy.recording`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    /// The most bytes of a (masked) answer body a recording keeps.
    #[serde(default = "Recording::default_body")]
    pub body_bytes: u32,
    /// How long recordings are kept, in days.
    #[serde(default = "Recording::default_retention")]
    pub retention_days: u32,
    /// How far apart a call and the model turn that asked for it may be, in seconds, to be
    /// matched.
    #[serde(default = "Recording::default_turn_window")]
    pub turn_window_seconds: u32,
}

impl Recording {
    fn default_body() -> u32 {
        16 * 1024
    }
    fn default_retention() -> u32 {
        90
    }
    fn default_turn_window() -> u32 {
        120
    }
}

impl Default for Recording {
    fn default() -> Self {
        Self {
            body_bytes: Self::default_body(),
            retention_days: Self::default_retention(),
            turn_window_seconds: Self::default_turn_window(),
        }
    }
}

/// Every rule of the section, as issues with their paths.
pub fn check(p: &AwsProxy) -> Vec<Issue> {
    let mut out = Vec::new();
    let mut err = |path: &str, message: String| {
        out.push(Issue::new(format!("aws_access.proxy.{path}"), message))
    };
    if let Some(u) = &p.upstream_url {
        if !matches!(url::Url::parse(u), Ok(p) if matches!(p.scheme(), "https" | "http") && p.host().is_some())
        {
            err("upstream_url", "must be an http(s) URL".into());
        }
    }
    if !(1024..=5 * 1024 * 1024 * 1024).contains(&p.max_request_bytes) {
        err("max_request_bytes", "must be 1024 to 5368709120".into());
    }
    if !(1..=900).contains(&p.upstream_timeout_seconds) {
        err("upstream_timeout_seconds", "must be 1 to 900".into());
    }
    let l = &p.limits;
    if !(10..=86_400).contains(&l.window_seconds) {
        err("limits.window_seconds", "must be 10 to 86400".into());
    }
    for (key, n) in [("read", l.read), ("list", l.list), ("write", l.write)] {
        if n == 0 || n > 1_000_000 {
            err(&format!("limits.{key}"), "must be 1 to 1000000".into());
        }
    }
    for (i, a) in p.risk.actions.iter().enumerate() {
        if !is_action_pattern(a) {
            err(
                &format!("risk.actions[{i}]"),
                format!("{a:?} is not an IAM action pattern (service:Action, service:Prefix*, *:Prefix*)"),
            );
        }
    }
    if p.risk.actions.len() > 256 {
        err("risk.actions", "at most 256 patterns".into());
    }
    // Below botocore's and the SDKs' 60-second read timeout, so the held call is answered.
    if !(1..=55).contains(&p.approval.wait_seconds) {
        err("approval.wait_seconds", "must be 1 to 55".into());
    }
    if !(60..=86_400).contains(&p.approval.valid_seconds) {
        err("approval.valid_seconds", "must be 60 to 86400".into());
    }
    if !(1024..=64 * 1024 * 1024).contains(&p.masking.max_body_bytes) {
        err("masking.max_body_bytes", "must be 1024 to 67108864".into());
    }
    if let Err(e) = crate::aws_proxy::mask::Rules::default().with_paths(&p.masking.paths) {
        err("masking.paths", e.to_string());
    }
    if p.recording.body_bytes > 1024 * 1024 {
        err("recording.body_bytes", "must be at most 1048576".into());
    }
    if !(1..=3650).contains(&p.recording.retention_days) {
        err("recording.retention_days", "must be 1 to 3650".into());
    }
    if !(1..=3600).contains(&p.recording.turn_window_seconds) {
        err("recording.turn_window_seconds", "must be 1 to 3600".into());
    }
    out
}

/// `service:Action`, `service:Prefix*`, `service:*` or `*:Prefix*`.
fn is_action_pattern(s: &str) -> bool {
    let Some((service, name)) = s.split_once(':') else {
        return false;
    };
    let service_ok = service == "*"
        || (!service.is_empty()
            && service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    let stem = name.strip_suffix('*').unwrap_or(name);
    service_ok
        && (name == "*"
            || (!stem.is_empty()
                && stem.len() <= 128
                && stem.bytes().all(|b| b.is_ascii_alphanumeric())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let p: AwsProxy = serde_yaml::from_str("{}").unwrap();
        assert!(check(&p).is_empty(), "{:?}", check(&p));
        assert_eq!(
            (p.limits.read, p.limits.list, p.limits.write),
            (100, 50, 10)
        );
        let bad: AwsProxy = serde_yaml::from_str(
            "{upstream_url: 'ftp://x', limits: {write: 0}, risk: {actions: ['s3 Get']},
              approval: {wait_seconds: 120}, masking: {paths: ['']}}",
        )
        .unwrap();
        let paths: Vec<String> = check(&bad).into_iter().map(|i| i.path).collect();
        for want in [
            "aws_access.proxy.upstream_url",
            "aws_access.proxy.limits.write",
            "aws_access.proxy.risk.actions[0]",
            "aws_access.proxy.approval.wait_seconds",
            "aws_access.proxy.masking.paths",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} in {paths:?}");
        }
        assert!(serde_yaml::from_str::<AwsProxy>("{nope: 1}").is_err());
    }
}
