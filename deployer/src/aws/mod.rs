//! Thin wrappers over the AWS services the deployer calls, with every client built once from one
//! `aws_config` (and one endpoint override for tests and emulators).
//!
//! `DEPLOYER_AWS_ENDPOINT_URL` (or the SDK's own `AWS_ENDPOINT_URL`) points every client at one
//! endpoint, such as a local moto server. `DEPLOYER_POLL_MS` sets how often stack progress is
//! polled (default 5000). `DEPLOYER_INLINE_TEMPLATE_LIMIT` lowers the size above which a template
//! goes through S3 instead of inline (default and maximum: CloudFormation's 51,200 bytes).
//! `DEPLOYER_FOLLOW_TIMEOUT_MINUTES` sets how long the deployer follows one stack operation
//! before it stops waiting (default 120, at most 4320); CloudFormation carries on regardless.

pub mod acm;
pub mod bedrock;
pub mod cfn;
pub mod changeset;
pub mod ecr;
pub mod ecs;
pub mod progress;
pub mod query;
pub mod recovery;
pub mod route53;
pub mod s3;
pub mod secrets;
pub mod session_secret;
pub mod statestore;
pub mod sts;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_smithy_types::error::display::DisplayErrorContext;
use claude_gateway::config::{Env, ProcessEnv};

use crate::error::Error;
use crate::stacks::INLINE_TEMPLATE_LIMIT;

/// The variable that overrides every AWS endpoint.
pub const ENDPOINT_VAR: &str = "DEPLOYER_AWS_ENDPOINT_URL";
/// The variable that sets the progress poll interval in milliseconds.
pub const POLL_VAR: &str = "DEPLOYER_POLL_MS";
/// The shortest pause between two reads of a stack's or a change set's progress.
const MIN_POLL: Duration = Duration::from_millis(10);

/// The variable that sets how long one stack operation is followed, in minutes.
pub const FOLLOW_TIMEOUT_VAR: &str = "DEPLOYER_FOLLOW_TIMEOUT_MINUTES";
/// How long one stack operation is followed by default, in minutes: longer than a gateway stack
/// with a Multi-AZ database and a Client VPN takes to create.
pub const FOLLOW_TIMEOUT_DEFAULT_MINUTES: u64 = 120;
const FOLLOW_TIMEOUT_MAX_MINUTES: u64 = 4320;
/// The variable that lowers the inline template limit.
pub const INLINE_LIMIT_VAR: &str = "DEPLOYER_INLINE_TEMPLATE_LIMIT";

/// Bounds on every AWS call: an endpoint that takes the connection and never answers fails the
/// call instead of holding the deployer forever (the SDK's default bounds only the connect).
fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(180))
        .build()
}

/// Every client the deployer uses, for one Region.
#[derive(Debug, Clone)]
pub struct Aws {
    /// CloudFormation.
    pub cfn: aws_sdk_cloudformation::Client,
    /// Route 53.
    pub route53: aws_sdk_route53::Client,
    /// ACM.
    pub acm: aws_sdk_acm::Client,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// STS.
    pub sts: aws_sdk_sts::Client,
    /// S3 (large templates).
    pub s3: aws_sdk_s3::Client,
    /// Secrets Manager (preflight of bring-your-own OIDC secrets, the deployment's state, session secrets).
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Bedrock runtime in the Bedrock Region (model access preflight).
    pub bedrock: aws_sdk_bedrockruntime::Client,
    /// The Region.
    pub region: String,
    /// How often to poll while CloudFormation works.
    pub poll: Duration,
    /// The endpoint override, when one is set.
    pub endpoint: Option<String>,
    /// Templates larger than this go through S3.
    pub inline_limit: usize,
    /// How long one stack operation is followed before the deployer stops waiting.
    pub follow_timeout: Duration,
    /// The credentials, for the calls signed by [`query`].
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

impl Aws {
    /// Builds every client for `region` (Bedrock in `bedrock_region`).
    pub async fn connect(region: &str, bedrock_region: &str) -> Self {
        let env = ProcessEnv;
        let endpoint = env
            .var(ENDPOINT_VAR)
            .or_else(|| env.var("AWS_ENDPOINT_URL"))
            .filter(|v| !v.is_empty());
        let poll = env
            .var(POLL_VAR)
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(5))
            // At least a few milliseconds between two reads of the same progress.
            .max(MIN_POLL);
        let inline_limit = env
            .var(INLINE_LIMIT_VAR)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(INLINE_TEMPLATE_LIMIT)
            .min(INLINE_TEMPLATE_LIMIT);
        let follow_timeout = Duration::from_secs(60 * follow_minutes(env.var(FOLLOW_TIMEOUT_VAR)));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .timeout_config(timeouts());
        if let Some(url) = &endpoint {
            loader = loader.endpoint_url(url);
        }
        let conf = loader.load().await;
        let bedrock_conf = aws_sdk_bedrockruntime::config::Builder::from(&conf)
            .region(Region::new(bedrock_region.to_owned()))
            .build();
        let s3_conf = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(endpoint.is_some())
            .build();
        Self {
            cfn: aws_sdk_cloudformation::Client::new(&conf),
            route53: aws_sdk_route53::Client::new(&conf),
            acm: aws_sdk_acm::Client::new(&conf),
            ecs: aws_sdk_ecs::Client::new(&conf),
            ecr: aws_sdk_ecr::Client::new(&conf),
            sts: aws_sdk_sts::Client::new(&conf),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            secrets: aws_sdk_secretsmanager::Client::new(&conf),
            bedrock: aws_sdk_bedrockruntime::Client::from_conf(bedrock_conf),
            region: region.to_owned(),
            poll,
            endpoint,
            inline_limit,
            follow_timeout,
            credentials: conf.credentials_provider(),
        }
    }
}

/// Minutes from `DEPLOYER_FOLLOW_TIMEOUT_MINUTES`: a whole number from 1 to 4320, else the default
/// (with a warning for a value that is set but unusable).
fn follow_minutes(value: Option<String>) -> u64 {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return FOLLOW_TIMEOUT_DEFAULT_MINUTES;
    };
    match v.trim().parse::<u64>() {
        Ok(m) if (1..=FOLLOW_TIMEOUT_MAX_MINUTES).contains(&m) => m,
        _ => {
            eprintln!(
                "warning: {FOLLOW_TIMEOUT_VAR}={v:?} is not a whole number of minutes from 1 to {FOLLOW_TIMEOUT_MAX_MINUTES}; following stacks for {FOLLOW_TIMEOUT_DEFAULT_MINUTES} minutes"
            );
            FOLLOW_TIMEOUT_DEFAULT_MINUTES
        }
    }
}

/// Turns an SDK error into the deployer's, with the whole error chain in the message.
pub fn sdk_err<E: std::error::Error>(what: &str, e: E) -> Error {
    Error::failed(format!("{what}: {}", DisplayErrorContext(&e)))
}

/// The error chain as text (to look for codes such as `ValidationError`).
pub fn err_text<E: std::error::Error>(e: &E) -> String {
    DisplayErrorContext(e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_follow_timeout_is_bounded() {
        assert_eq!(follow_minutes(None), 120);
        assert_eq!(follow_minutes(Some("45".into())), 45);
        for bad in ["0", "-5", "ninety", "4321"] {
            assert_eq!(follow_minutes(Some(bad.into())), 120, "{bad}");
        }
    }
}
