//! The audit stage: the `inference` event each upstream attempt writes when it ends, with its
//! usage and list-price cost.

use std::time::Instant;

use crate::api::usage::Usage;
use crate::auth::token::Identity;
use crate::state::AppState;
use crate::telemetry::prompt_hash::Fingerprints;

/// What the audit `inference` event records about one attempt.
#[derive(Clone)]
pub struct Record {
    /// The shared state (audit stream, clock, prices, metrics).
    pub state: AppState,
    /// The gateway's request id.
    pub request_id: String,
    /// The caller.
    pub who: Identity,
    /// The route.
    pub path: String,
    /// The model the client asked for.
    pub model: String,
    /// The attempt's upstream.
    pub upstream: String,
    /// The upstream's model id.
    pub provider_model: String,
    /// When the request arrived.
    pub started: Instant,
    /// Keyed fingerprints of the prompt and tool inputs, when configured.
    pub fingerprints: Option<Fingerprints>,
}

impl Record {
    /// The list-price (or contracted) cost of `usage` at this attempt's upstream, in USD.
    fn cost_usd(&self, usage: &Usage) -> f64 {
        let (rates, _) = self
            .state
            .prices
            .rates(&self.upstream, &self.provider_model);
        self.state.prices.cost_micros(&rates, usage) as f64 / 1e6
    }

    /// Remembers the answer's AWS-looking tool inputs as this request's turn, for the AWS
    /// proxy to name the turn that made a call (nothing without tool inputs or a proxy).
    pub fn turn(&self, tool_uses: Vec<String>) {
        let Some(proxy) = self
            .state
            .aws_proxy
            .as_ref()
            .filter(|_| !tool_uses.is_empty())
        else {
            return;
        };
        proxy.turns.remember(
            &self.who.sub,
            crate::aws_proxy::turns::Turn {
                at: self.state.clock.now(),
                request_id: self.request_id.clone(),
                prompt_fingerprint: self.fingerprints.as_ref().and_then(|f| f.prompt.clone()),
                inputs: tool_uses,
            },
        );
    }

    /// Writes the event with the attempt's status, usage and any `extra` fields.
    pub fn emit(&self, status: u16, usage: Usage, extra: serde_json::Value) {
        let cost_usd = self.cost_usd(&usage);
        let mut fields = serde_json::json!({
            "request_id": self.request_id,
            "sub": self.who.sub,
            "email": self.who.email,
            "groups": self.who.groups,
            "path": self.path,
            "model": self.model,
            "upstream": self.upstream,
            "status": status,
            "ms": self.started.elapsed().as_millis() as u64,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,
            "cost_usd": cost_usd,
        });
        if let (Some(obj), serde_json::Value::Object(more)) = (fields.as_object_mut(), extra) {
            obj.extend(more);
        }
        if let (Some(obj), Some(f)) = (fields.as_object_mut(), &self.fingerprints) {
            obj.insert("prompt_hmac".into(), f.prompt.clone().into());
            obj.insert("tool_input_hmacs".into(), f.tool_inputs.clone().into());
        }
        self.state.otel.tokens(&self.model, &usage);
        if self.state.meter.is_some() && cost_usd > 0.0 {
            self.state.otel.m.cost.add(
                cost_usd,
                &[opentelemetry::KeyValue::new(
                    "model",
                    crate::telemetry::otel::low_cardinality_model(&self.model),
                )],
            );
        }
        self.state
            .audit
            .emit("inference", self.state.clock.now(), fields);
    }
}
