//! Minting: one `sts:AssumeRole` call from the gateway's own role (the ECS task role in
//! production), sent as [`super::assume`] built it, and STS's answer read into [`Credentials`] or
//! an [`AwsError`] that says what went wrong. The STS client is built on first use, from the
//! default credential chain, with the configured endpoint when there is one; every call is
//! bounded in time.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::types::Tag;
use aws_sdk_sts::Client;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use super::assume::AssumeRequest;
use super::credentials::Credentials;
use super::wire::AwsError;
use crate::config::Secret;

/// The longest one `AssumeRole` call may take, retries included.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `AssumeRole` calls.
#[derive(Debug)]
pub struct Minter {
    endpoint: Option<String>,
    client: OnceCell<Client>,
}

impl Minter {
    /// A minter for STS at `endpoint` (none: the SDK's own for the gateway's region).
    pub fn new(endpoint: Option<String>) -> Self {
        Self {
            endpoint,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
                let mut conf = aws_sdk_sts::config::Builder::from(&shared)
                    .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .connect_timeout(Duration::from_secs(5))
                            .operation_attempt_timeout(Duration::from_secs(5))
                            .build(),
                    );
                if shared.region().is_none() {
                    conf = conf.region(aws_sdk_sts::config::Region::new("us-east-1"));
                }
                if let Some(url) = &self.endpoint {
                    conf = conf.endpoint_url(url.trim_end_matches('/'));
                }
                Client::from_conf(conf.build())
            })
            .await
    }

    /// Assumes `req.role_arn` for project `project`.
    pub async fn assume(
        &self,
        project: &str,
        req: &AssumeRequest,
    ) -> Result<Credentials, AwsError> {
        let sts = |detail: String| AwsError::Sts {
            project: project.to_owned(),
            detail,
        };
        let mut tags = Vec::with_capacity(req.tags.len());
        for (k, v) in &req.tags {
            let tag = Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| sts(e.to_string()))?;
            tags.push(tag);
        }
        let call = self
            .client()
            .await
            .assume_role()
            .role_arn(&req.role_arn)
            .role_session_name(&req.session_name)
            .source_identity(&req.source_identity)
            .set_tags(Some(tags))
            .policy(&req.policy)
            .duration_seconds(req.duration_seconds)
            .send();
        let out = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| sts(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))?
            .map_err(|e| failure(project, &e))?;
        let c = out
            .credentials()
            .ok_or_else(|| sts("the answer carried no credentials".into()))?;
        let expiration = OffsetDateTime::from_unix_timestamp(c.expiration().secs())
            .map_err(|_| sts("the answer's expiration is out of range".into()))?;
        if c.access_key_id().is_empty() || c.secret_access_key().is_empty() {
            return Err(sts("the answer's credentials are empty".into()));
        }
        Ok(Credentials {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: Secret::new(c.secret_access_key()),
            session_token: Secret::new(c.session_token()),
            expiration,
        })
    }
}

/// What a failed call means, from STS's error code and message (pure). The developer is told the
/// code; STS's own text, which names the gateway's role and account, stays in the gateway's log,
/// except the packed-size percentage, which says how much to cut.
pub fn refused(project: &str, code: Option<&str>, message: Option<&str>) -> AwsError {
    let text: String = message.unwrap_or("no message").chars().take(300).collect();
    match code {
        Some("PackedPolicyTooLarge") => AwsError::PolicyTooLarge {
            project: project.to_owned(),
            detail: format!("PackedPolicyTooLarge: {text}"),
        },
        _ => {
            tracing::warn!(project, code, "sts:AssumeRole refused: {text}");
            let code: String = code
                .unwrap_or("no error code")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
                .take(64)
                .collect();
            AwsError::Sts {
                project: project.to_owned(),
                detail: format!("{code}; the gateway's log has the details"),
            }
        }
    }
}

fn failure(project: &str, e: &SdkError<AssumeRoleError>) -> AwsError {
    match e.as_service_error() {
        Some(AssumeRoleError::PackedPolicyTooLargeException(x)) => {
            refused(project, Some("PackedPolicyTooLarge"), x.message())
        }
        Some(s) => refused(project, s.code(), s.message()),
        None => {
            tracing::warn!(project, "sts:AssumeRole failed: {e}");
            AwsError::Sts {
                project: project.to_owned(),
                detail: "STS could not be reached".into(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_size_refusal_names_the_project_and_what_to_do() {
        let e = refused(
            "payments",
            Some("PackedPolicyTooLarge"),
            Some("Packed size of policy and tags is 112% of the allowed limit"),
        );
        assert_eq!(e.status_code().1, "policy_too_large");
        let text = e.to_string();
        assert!(text.contains("project payments"), "{text}");
        assert!(text.contains("112%"), "{text}");
        assert!(text.contains("shorten its action lists"), "{text}");
    }

    #[test]
    fn other_refusals_carry_the_code_and_not_the_gateways_role() {
        let said = "User: arn:aws:sts::999999999999:assumed-role/gateway-task/abc is not \
                    authorized to perform: sts:AssumeRole on resource: arn:aws:iam::1:role/x";
        let e = refused("payments", Some("AccessDenied"), Some(said));
        assert_eq!(e.status_code().1, "sts_error");
        let text = e.to_string();
        assert!(text.contains("AccessDenied"), "{text}");
        assert!(
            !text.contains("999999999999") && !text.contains("gateway-task"),
            "{text}"
        );
        let long = "x".repeat(5000);
        let e = refused("payments", Some(&long), Some(&long));
        assert!(e.to_string().len() < 200, "{e}");
    }
}
