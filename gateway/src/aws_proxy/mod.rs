//! The gateway in the data path of agents' AWS calls: a SigV4 proxy at `/aws/`. Calls signed
//! with a gateway-only credential are checked, held for a person when risky, re-signed with a
//! just-in-time project credential, their answers masked, and every one recorded. The stages,
//! each a module:
//!
//! - [`sigv4`]: the client's AWS Signature Version 4 checked (header and presigned forms, clock
//!   skew, payload hash, S3's chunk signatures).
//! - [`operation`]: the operation a request names (`s3:GetObject`, `logs:FilterLogEvents`) and
//!   its class (read, list or write).
//! - [`params`]: the call's parameters as a person and a record may see them (masked), and the
//!   fingerprint that makes a retry the identical call.
//! - [`decide`]: the pure decision: denies, regions, level, allowlist, MFA, limits, risk.
//! - [`limits`]: the shared counters behind the tiered rate limits.
//! - [`hold`]: a risky call held while a person approves it ([`held`]: the call, and this
//!   replica's waiters).
//! - [`upstream`]: the call re-signed for AWS and sent.
//! - [`answer`] and [`mask`]: the answer's secrets and personal data replaced by `[MASKED:kind]`.
//! - [`record`]: what a call's recording and its `aws.call` audit line hold, bounded; [`recorder`]
//!   writes the recordings in the background, [`recordings`] is their Admin API.
//! - [`fault`]: the proxy's one error type, written as AWS writes errors.
//! - [`turns`]: the model turn whose tool call made a call, remembered from the answers the
//!   gateway relays.
//! - [`serve`]: the stages after the signature, in order, shared by the route and the MCP
//!   server's tools; it records each call.
//! - [`proxy`]: the route: the credential and signature checked, then [`serve`].

pub mod answer;
pub mod decide;
pub mod fault;
pub mod held;
pub mod hold;
pub mod limits;
pub mod mask;
pub mod operation;
pub mod params;
pub mod proxy;
pub mod record;
pub mod recorder;
pub mod recordings;
pub mod serve;
pub mod sigv4;
pub mod turns;
pub mod upstream;

#[cfg(test)]
mod vectors;

use std::time::Duration;

use crate::config::aws_proxy::AwsProxy;

/// The proxy's long-lived parts.
#[derive(Debug)]
pub struct Proxy {
    /// Where calls go.
    pub upstream: upstream::Upstream,
    /// What answers and parameters are masked by.
    pub rules: mask::Rules,
    /// This replica's recent model turns with AWS-looking tool calls, per user.
    pub turns: turns::Turns,
}

impl Proxy {
    /// The proxy of `cfg`, sending with `client`.
    pub fn new(cfg: &AwsProxy, client: reqwest::Client) -> Result<Self, String> {
        let base = match &cfg.upstream_url {
            Some(u) => Some(
                url::Url::parse(u).map_err(|e| format!("aws_access.proxy.upstream_url: {e}"))?,
            ),
            None => None,
        };
        let m = &cfg.masking;
        let rules = mask::Rules::default()
            .with_max_body_bytes(usize::try_from(m.max_body_bytes).unwrap_or(usize::MAX))
            .with_emails(m.emails)
            .with_phones(m.phones)
            .with_paths(&m.paths)
            .map_err(|e| format!("aws_access.proxy.masking.paths: {e}"))?;
        Ok(Self {
            upstream: upstream::Upstream::new(
                client,
                base,
                Duration::from_secs(u64::from(cfg.upstream_timeout_seconds)),
            ),
            rules,
            turns: turns::Turns::new(cfg.recording.turn_window_seconds),
        })
    }
}
