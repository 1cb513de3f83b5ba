//! Failover: which upstreams can serve a model, in config order, and which answer the client gets
//! when attempts fail before the first byte.

use crate::api::catalog::{resolve, Resolution};
use crate::config::Config;
use crate::http::error::ApiError;
use crate::upstream::Failure;

/// The upstreams that resolve `model`, as (index, provider model id); or the 400 naming why none
/// does.
pub fn candidates(cfg: &Config, model: &str) -> Result<Vec<(usize, String)>, ApiError> {
    let mut found = Vec::new();
    let mut reasons: Vec<String> = Vec::new();
    for (i, up) in cfg.upstreams.iter().enumerate() {
        match resolve(cfg, up, model) {
            Resolution::Use(id) => found.push((i, id)),
            Resolution::Skip(why) => {
                if !reasons.contains(&why) {
                    reasons.push(why);
                }
            }
        }
    }
    if found.is_empty() {
        return Err(ApiError::BadRequest(reasons.join("; ")));
    }
    Ok(found)
}

/// Collects failed attempts and picks the answer when all of them failed.
#[derive(Debug, Default)]
pub struct Attempts {
    last_throttle: Option<Failure>,
}

impl Attempts {
    /// Records a failure; returns it back when it must be answered now (no failover).
    pub fn record(&mut self, f: Failure) -> Option<Failure> {
        if !f.failover {
            return Some(f);
        }
        if f.status == http::StatusCode::TOO_MANY_REQUESTS {
            self.last_throttle = Some(f);
        }
        None
    }

    /// The answer once every candidate failed over: the last throttle, else 502.
    pub fn exhausted(self, configured: usize) -> ApiError {
        match self.last_throttle {
            Some(f) => ApiError::Upstream(Box::new(f)),
            None => ApiError::AllFailed(configured),
        }
    }
}
