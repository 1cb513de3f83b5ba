//! Inference rate limits (the reference has none): requests per minute, tokens per minute and
//! streams open at once, per user and shared per policy, with a stricter per-user tier for
//! requests that offer write-capable tools. Counters live in PostgreSQL, so every replica sees the
//! same numbers. Requests per minute and streams are counted at admission, every limit of a
//! request in one statement; tokens when usage is known, so a request is refused when the minute's
//! tokens are already spent.

use serde_json::Value;
use time::Duration;

use crate::api::body::RawObject;
use crate::auth::token::Identity;
use crate::config::{PolicyRateLimits, RateLimit};
use crate::http::error::{ApiError, RateLimited};
use crate::spend::settler::LimitsDone;
use crate::state::AppState;
use crate::store::slots::RateCheck;

/// Tools that change files or run commands.
pub const WRITE_TOOLS: &[&str] = &["Bash", "Edit", "MultiEdit", "Write", "NotebookEdit"];
const MINUTE: Duration = Duration::seconds(60);
/// A stream slot outlives a gateway that died with the stream open for at most this long.
const STREAMS_TTL: Duration = Duration::hours(1);

/// Whether the request offers a write-capable tool.
pub fn offers_write_tools(body: &RawObject) -> bool {
    body.tools()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .any(|n| WRITE_TOOLS.contains(&n))
}

/// One counter family's key prefix and limits.
struct Scope {
    key: String,
    limit: RateLimit,
}

/// What an admitted request holds: stream slots to free and token windows to count into when it
/// ends.
#[derive(Debug, Clone, Default)]
pub struct Held {
    slots: Vec<(String, String)>,
    tokens: Vec<String>,
}

impl Held {
    /// The accounting to write when the request has used `tokens`.
    pub fn done(self, tokens: u64) -> LimitsDone {
        LimitsDone {
            token_keys: self.tokens,
            tokens: i64::try_from(tokens).unwrap_or(i64::MAX),
            slots: self.slots,
        }
    }
}

fn scopes(policy_key: &str, sub: &str, limits: &PolicyRateLimits, writes: bool) -> Vec<Scope> {
    let mut out = Vec::new();
    if let Some(u) = limits.user {
        out.push(Scope {
            key: format!("u:{sub}"),
            limit: u,
        });
    }
    if writes {
        if let Some(w) = limits.write_tools {
            out.push(Scope {
                key: format!("uw:{sub}"),
                limit: w,
            });
        }
    }
    if let Some(g) = limits.group {
        out.push(Scope {
            key: format!("p:{policy_key}"),
            limit: g,
        });
    }
    out
}

fn refuse(state: &AppState, what: &'static str, retry_after: i64, who: &Identity) -> ApiError {
    state
        .otel
        .m
        .ratelimit_rejected
        .add(1, &[opentelemetry::KeyValue::new("limit", what)]);
    state.audit.emit(
        "ratelimit.blocked",
        state.clock.now(),
        serde_json::json!({"sub": who.sub, "email": who.email, "groups": who.groups, "limit": what, "retry_after": retry_after}),
    );
    ApiError::RateLimited(Box::new(RateLimited {
        message: format!("rate limit exceeded: {what}"),
        retry_after: retry_after.max(1),
    }))
}

/// Checks and counts a request in one statement, recording what it takes in `held` (the
/// request's guard, which gives it back however the request ends, a refusal here included). A
/// store failure admits (rate limits are a brake, not a bill).
#[allow(clippy::too_many_arguments)]
pub async fn admit(
    state: &AppState,
    policy_key: &str,
    who: &Identity,
    limits: &PolicyRateLimits,
    body: &RawObject,
    stream: bool,
    request_id: &str,
    held: &mut Held,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let writes = offers_write_tools(body);
    let mut checks = Vec::new();
    for s in scopes(policy_key, &who.sub, limits, writes) {
        let limit = |n: u32| i64::from(n);
        if let Some(tpm) = s.limit.tokens_per_minute {
            let key = format!("rl:tpm:{}", s.key);
            checks.push(RateCheck::TokensPerMinute(
                key.clone(),
                i64::try_from(tpm).unwrap_or(i64::MAX),
            ));
            held.tokens.push(key);
        }
        if let Some(rpm) = s.limit.requests_per_minute {
            checks.push(RateCheck::RequestsPerMinute(
                format!("rl:rpm:{}", s.key),
                limit(rpm),
            ));
        }
        if let (Some(max), true) = (s.limit.concurrent_streams, stream) {
            checks.push(RateCheck::Streams(
                format!("rl:streams:{}", s.key),
                limit(max),
            ));
        }
    }
    if checks.is_empty() {
        return Ok(());
    }
    let admitted = match state
        .store
        .rate_admit(&checks, request_id, now + STREAMS_TTL, now, MINUTE)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!("rate limits not checked, admitting: {e}");
            return Ok(());
        }
    };
    held.slots.extend(
        admitted
            .taken
            .into_iter()
            .map(|scope| (scope, request_id.to_owned())),
    );
    match admitted.refused {
        None => Ok(()),
        Some((limit, retry_after)) => {
            let what = match limit.as_str() {
                "tokens_per_minute" => "tokens_per_minute",
                "requests_per_minute" => "requests_per_minute",
                _ => "concurrent_streams",
            };
            Err(refuse(state, what, retry_after, who))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_tools_pick_the_stricter_tier() {
        let body = RawObject::parse(br#"{"tools":[{"name":"Read"},{"name":"Bash"}]}"#).unwrap();
        assert!(offers_write_tools(&body));
        assert!(!offers_write_tools(
            &RawObject::parse(br#"{"tools":[{"name":"Read"}]}"#).unwrap()
        ));
        let limits = PolicyRateLimits {
            user: Some(RateLimit::default()),
            group: Some(RateLimit::default()),
            write_tools: Some(RateLimit::default()),
        };
        let keys: Vec<String> = scopes("0", "u", &limits, true)
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(keys, ["u:u", "uw:u", "p:0"]);
        assert_eq!(scopes("0", "u", &limits, false).len(), 2);
    }
}
