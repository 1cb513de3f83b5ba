//! Route 53: the hosted zone the gateway's name goes into.

use super::{sdk_err, Aws};
use crate::error::Result;

/// What preflight needs to know about a zone.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Zone name, without the trailing dot.
    pub name: String,
    /// Whether it is a private zone.
    pub private: bool,
}

/// Reads a hosted zone.
pub async fn zone(aws: &Aws, id: &str) -> Result<Zone> {
    let out = aws
        .route53
        .get_hosted_zone()
        .id(id)
        .send()
        .await
        .map_err(|e| {
            sdk_err(
                &format!("hosted zone {id} (HOSTED_ZONE_ID) cannot be read"),
                e,
            )
        })?;
    let z = out.hosted_zone();
    Ok(Zone {
        name: z
            .map(|z| z.name().trim_end_matches('.').to_owned())
            .unwrap_or_default(),
        private: z
            .and_then(|z| z.config())
            .map(|c| c.private_zone())
            .unwrap_or(false),
    })
}
