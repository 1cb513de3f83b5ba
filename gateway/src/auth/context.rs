//! Small things every sign-in handler needs: the caller's address, the request id, rate limits,
//! and audit events that carry both.

use std::net::IpAddr;

use http::request::Parts;
use serde_json::Value;

use super::throttle::{network_key, Limit};

use crate::config::Window;
use crate::http::access::ClientIp;
use crate::http::edge::RequestId;
use crate::state::AppState;

/// Per-request facts for audit and limits.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Resolved client address.
    pub ip: Option<String>,
    /// The same address, parsed.
    pub addr: Option<IpAddr>,
    /// The request id.
    pub request_id: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx::from_extensions(&parts.extensions))
    }
}

impl Ctx {
    /// The context from a request's extensions (client address and request id).
    pub fn from_extensions(extensions: &http::Extensions) -> Ctx {
        let addr = extensions.get::<ClientIp>().and_then(|c| c.0);
        Ctx {
            ip: addr.map(|ip| ip.to_string()),
            addr,
            request_id: extensions
                .get::<RequestId>()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
        }
    }

    /// Writes an audit event with `client_ip` and `request_id` added.
    pub fn audit(&self, state: &AppState, evt: &str, mut fields: Value) {
        if let Some(o) = fields.as_object_mut() {
            o.insert("client_ip".into(), self.ip.clone().into());
            o.insert("request_id".into(), self.request_id.clone().into());
        }
        state.audit.emit(evt, state.clock.now(), fields);
    }

    /// Counts a hit against the window of the caller's network (see [`network_key`]). A store
    /// failure is [`Limit::Unavailable`]: sign-in needs the store anyway, so the caller refuses
    /// (failing open would unthrottle code guessing), but says the service is unavailable.
    pub async fn over_limit(&self, state: &AppState, bucket: &str, w: &Window) -> Limit {
        let net = self.addr.map(network_key);
        let key = format!("rl:{bucket}:{}", net.as_deref().unwrap_or("unknown"));
        let window = time::Duration::seconds(i64::from(w.window_seconds));
        match state.store.kv_incr(&key, window, state.clock.now()).await {
            Ok(n) if n > i64::from(w.max) => Limit::Over,
            Ok(_) => Limit::Within,
            Err(e) => {
                tracing::warn!("rate-limit counter unavailable: {e}");
                Limit::Unavailable
            }
        }
    }
}
