//! Thin wrappers over the AWS services the deployer calls, with every client built once from one
//! `aws_config` (and one endpoint override for tests and emulators).
//!
//! `DEPLOYER_AWS_ENDPOINT_URL` (or the SDK's own `AWS_ENDPOINT_URL`) points every client at one
//! endpoint, such as a local moto server. `DEPLOYER_POLL_MS` sets how often stack progress is
//! polled (default 5000). `DEPLOYER_INLINE_TEMPLATE_LIMIT` lowers the size above which a template
//! goes through S3 instead of inline (default and maximum: CloudFormation's 51,200 bytes).

pub mod acm;
pub mod bedrock;
pub mod cfn;
pub mod changeset;
pub mod ecr;
pub mod ecs;
pub mod progress;
pub mod route53;
pub mod s3;
pub mod secrets;
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
/// The variable that lowers the inline template limit.
pub const INLINE_LIMIT_VAR: &str = "DEPLOYER_INLINE_TEMPLATE_LIMIT";

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
    /// Secrets Manager (preflight of bring-your-own OIDC secrets).
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
            .unwrap_or(Duration::from_secs(5));
        let inline_limit = env
            .var(INLINE_LIMIT_VAR)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(INLINE_TEMPLATE_LIMIT)
            .min(INLINE_TEMPLATE_LIMIT);
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
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
