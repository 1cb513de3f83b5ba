//! What a request costs: list prices per Claude model on Bedrock (USD per million tokens, as of the
//! date below), `pricing.overrides` per upstream and model, `pricing.multiplier`, and the
//! unknown-model tier. Costs are exact integers of micro-dollars (1e-6 USD): spend sums and cap
//! checks never round.

use crate::config::Pricing;
use crate::inference::catalog::built_in;
use crate::inference::usage::Usage;

/// The date the list prices below were last checked.
pub const PRICES_AS_OF: &str = "2026-11-01";

/// Rates in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Uncached input.
    pub input: f64,
    /// Output.
    pub output: f64,
    /// Cache reads.
    pub cache_read: f64,
    /// Cache writes with the 5-minute lifetime.
    pub cache_write_5m: f64,
    /// Cache writes with the 1-hour lifetime.
    pub cache_write_1h: f64,
}

/// The largest worst case a reservation states: a billion dollars, far past any cap, and small
/// enough that thousands of such reservations still add up inside an `i64`.
pub const WORST_CASE_CEILING_MICROS: u64 = 1_000_000_000_000_000;

const fn claude(input: f64, output: f64) -> Rates {
    // Anthropic's published ratios: cache read 0.1×, 5-minute write 1.25×, 1-hour write 2× input.
    Rates {
        input,
        output,
        cache_read: input * 0.1,
        cache_write_5m: input * 1.25,
        cache_write_1h: input * 2.0,
    }
}

/// The unknown-model tier: $5 / $25 per million input / output tokens.
pub const UNKNOWN: Rates = claude(5.0, 25.0);

/// List price of a built-in model (by catalog id); `None` for models the table does not know.
pub fn list_price(catalog_id: &str) -> Option<Rates> {
    let r = match catalog_id {
        "claude-opus-4" | "claude-opus-4-1" => claude(15.0, 75.0),
        "claude-opus-4-5" | "claude-opus-4-6" | "claude-opus-4-7" | "claude-opus-4-8"
        | "claude-opus-5" | "claude-opus-5-5" => claude(5.0, 25.0),
        "claude-sonnet-4" | "claude-sonnet-4-5" | "claude-sonnet-4-6" | "claude-sonnet-5"
        | "claude-sonnet-5-5" | "claude-3-7-sonnet" => claude(3.0, 15.0),
        "claude-haiku-4-5" | "claude-haiku-5-5" => claude(1.0, 5.0),
        "claude-3-5-haiku" => claude(0.8, 4.0),
        _ => return None,
    };
    Some(r)
}

/// The price list the gateway meters with.
#[derive(Debug, Clone)]
pub struct PriceBook {
    overrides: Vec<(String, String, Rates)>,
    multiplier: f64,
}

impl PriceBook {
    /// From `pricing` (absent: list prices, multiplier 1).
    pub fn new(p: Option<&Pricing>) -> Self {
        let overrides = p
            .map(|p| {
                p.overrides
                    .iter()
                    .map(|o| {
                        let r = Rates {
                            input: o.input,
                            output: o.output,
                            cache_read: o.cache_read,
                            cache_write_5m: o.cache_write,
                            cache_write_1h: o.cache_write,
                        };
                        (o.upstream.clone(), o.model.to_ascii_lowercase(), r)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            overrides,
            multiplier: p.map_or(1.0, |p| p.multiplier),
        }
    }

    /// Rates for `model` served by `upstream`: an override for the upstream (by the exact id, or
    /// the same built-in model), else the list price, else the unknown tier. The flag says whether
    /// the model was known.
    pub fn rates(&self, upstream: &str, model: &str) -> (Rates, bool) {
        let lower = model.to_ascii_lowercase();
        let catalog = built_in(model).map(|b| b.id);
        for (up, m, r) in &self.overrides {
            if up == upstream
                && (*m == lower || (catalog.is_some() && built_in(m).map(|b| b.id) == catalog))
            {
                return (*r, true);
            }
        }
        match catalog.and_then(list_price) {
            Some(r) => (r, true),
            None => (UNKNOWN, false),
        }
    }

    /// The cost of `usage` in micro-dollars. `cache_write_1h` tokens are the part of the cache
    /// writes made with the 1-hour lifetime.
    pub fn cost_micros(&self, rates: &Rates, usage: &Usage, cache_write_1h: u64) -> u64 {
        let write_5m = usage
            .cache_creation_input_tokens
            .saturating_sub(cache_write_1h);
        // Tokens × USD per million tokens = micro-dollars.
        let raw = usage.input_tokens as f64 * rates.input
            + usage.output_tokens as f64 * rates.output
            + usage.cache_read_input_tokens as f64 * rates.cache_read
            + write_5m as f64 * rates.cache_write_5m
            + cache_write_1h.min(usage.cache_creation_input_tokens) as f64 * rates.cache_write_1h;
        (raw * self.multiplier).round().max(0.0) as u64
    }

    /// The most a request can cost: its input estimated high (a token per 3 bytes of body, at the
    /// input rate) plus `max_tokens` of output, saturating at [`WORST_CASE_CEILING_MICROS`] (so a
    /// huge `max_tokens` meets every cap, and sums of reservations cannot overflow).
    pub fn worst_case_micros(&self, rates: &Rates, body_bytes: usize, max_tokens: u64) -> u64 {
        let input = (body_bytes as u64).div_ceil(3);
        let raw =
            input as f64 * rates.input.max(rates.cache_write_1h) + max_tokens as f64 * rates.output;
        let worst = (raw * self.multiplier).ceil();
        if worst.is_nan() || worst >= WORST_CASE_CEILING_MICROS as f64 {
            return WORST_CASE_CEILING_MICROS;
        }
        worst.max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64, r: u64, w: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cache_read_input_tokens: r,
            cache_creation_input_tokens: w,
        }
    }

    #[test]
    fn list_prices_are_exact_micro_dollars() {
        let book = PriceBook::new(None);
        let (r, known) = book.rates("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert!(known);
        // 10 input + 50,000 output at $3 / $15 per MTok = $0.75003.
        assert_eq!(book.cost_micros(&r, &usage(10, 50_000, 0, 0), 0), 750_030);
        // Cache: 1,000 read at $0.30, 1,000 written (5 min) at $3.75, 1,000 (1 h) at $6.
        assert_eq!(
            book.cost_micros(&r, &usage(0, 0, 1_000, 2_000), 1_000),
            300 + 3_750 + 6_000
        );
    }

    #[test]
    fn overrides_multiplier_and_unknown_models() {
        let yaml = "listen: {host: 127.0.0.1}\nupstreams: [{provider: bedrock, region: us-east-1}]\nsession: {jwt_secret: 0123456789abcdef0123456789abcdef}\nstore: {postgres_url: 'postgres://x@h/d'}\noidc: {issuer: 'https://i.example.com', client_id: c, client_secret: s}\nadmin: {}\npricing: {multiplier: 0.5, overrides: [{upstream: bedrock, model: claude-haiku-4-5, input: 2, output: 10, cache_read: 0.2, cache_write: 2.5}]}\n";
        let cfg = crate::config::load(yaml, &crate::config::MapEnv::new())
            .unwrap()
            .config;
        let book = PriceBook::new(cfg.pricing.as_ref());
        let (r, _) = book.rates("bedrock", "claude-haiku-4-5-20251001");
        assert_eq!(
            r.input, 2.0,
            "the override covers every spelling of the model"
        );
        assert_eq!(
            book.cost_micros(&r, &usage(1_000, 1_000, 0, 0), 0),
            6_000,
            "(2 + 10) × 1000 × 0.5"
        );
        let (r, known) = book.rates("other", "claude-haiku-4-5");
        assert!(known);
        assert_eq!(r.input, 1.0, "overrides are per upstream");
        let (r, known) = book.rates("bedrock", "mystery-model");
        assert!(!known);
        assert_eq!(r, UNKNOWN);
    }

    #[test]
    fn a_huge_max_tokens_saturates_at_the_ceiling() {
        let book = PriceBook::new(None);
        let (r, _) = book.rates("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
        for (bytes, max_tokens) in [
            (0, u64::MAX),
            (usize::MAX, 0),
            (usize::MAX, u64::MAX),
            (10, i64::MAX as u64),
            (10, 1 << 62),
        ] {
            let worst = book.worst_case_micros(&r, bytes, max_tokens);
            assert_eq!(
                worst, WORST_CASE_CEILING_MICROS,
                "{bytes} bytes, {max_tokens}"
            );
        }
        // Thousands of such reservations on top of a large balance still fit the store's i64.
        let sum = (WORST_CASE_CEILING_MICROS as i64)
            .checked_mul(9_000)
            .and_then(|s| s.checked_add(i64::MAX / 100));
        assert!(sum.is_some());
        // Ordinary requests are not near it.
        assert!(book.worst_case_micros(&r, 1 << 25, 128_000) < WORST_CASE_CEILING_MICROS / 1000);
    }

    #[test]
    fn worst_case_covers_the_actual_cost() {
        let book = PriceBook::new(None);
        let (r, _) = book.rates("b", "claude-opus-4-8");
        let worst = book.worst_case_micros(&r, 3_000, 4_096);
        let actual = book.cost_micros(&r, &usage(1_000, 4_096, 0, 0), 0);
        assert!(worst >= actual, "{worst} < {actual}");
    }
}
