//! What a request costs: list prices per Claude model on Bedrock (USD per million tokens, as of the
//! date below), `pricing.overrides` per upstream and model, `pricing.multiplier`, and the
//! unknown-model tier. Costs are exact integers of micro-dollars (1e-6 USD): spend sums and cap
//! checks never round.

use super::estimate::{CacheWrite, Estimate};
use crate::api::catalog::built_in;
use crate::api::usage::Usage;
use crate::config::Pricing;

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

    /// The cost of `usage` in micro-dollars, 1-hour cache writes at their own rate.
    pub fn cost_micros(&self, rates: &Rates, usage: &Usage) -> u64 {
        let write_1h = usage
            .cache_creation_1h_input_tokens
            .min(usage.cache_creation_input_tokens);
        let write_5m = usage.cache_creation_input_tokens - write_1h;
        // Tokens × USD per million tokens = micro-dollars.
        let raw = usage.input_tokens as f64 * rates.input
            + usage.output_tokens as f64 * rates.output
            + usage.cache_read_input_tokens as f64 * rates.cache_read
            + write_5m as f64 * rates.cache_write_5m
            + write_1h as f64 * rates.cache_write_1h;
        (raw * self.multiplier).round().max(0.0) as u64
    }

    /// The most a request can cost, in micro-dollars: its input bounded as [`input_bound`] says,
    /// every input token at the dearest input-side rate the request can incur, and `max_tokens`
    /// of output (a context window when absent). Saturates at [`WORST_CASE_CEILING_MICROS`], never
    /// wraps.
    pub fn worst_case_micros(&self, rates: &Rates, e: &Estimate) -> u64 {
        let mut input_rate = rates.input.max(rates.cache_read);
        if e.cache_write >= CacheWrite::FiveMinutes {
            input_rate = input_rate.max(rates.cache_write_5m);
        }
        if e.cache_write >= CacheWrite::OneHour {
            input_rate = input_rate.max(rates.cache_write_1h);
        }
        let output = e.max_tokens.unwrap_or(CONTEXT_TOKENS).min(CONTEXT_TOKENS);
        let raw = input_bound(e) as f64 * input_rate + output as f64 * rates.output;
        let micros = (raw * self.multiplier).ceil();
        if micros.is_nan() || micros >= WORST_CASE_CEILING_MICROS as f64 {
            // Meets every cap, and sums of reservations in the store cannot overflow.
            WORST_CASE_CEILING_MICROS
        } else {
            micros.max(0.0) as u64
        }
    }
}

/// The largest context window (input and output together) of any Claude model: no request can
/// be billed more input tokens than this, nor more output.
pub const CONTEXT_TOKENS: u64 = 1_000_000;

/// The most tokens one image costs. Images are scaled down to about 1.15 megapixels, at most
/// about 1,600 tokens; the allowance is three times that.
pub const IMAGE_TOKENS: u64 = 5_000;

/// Input the model reads that the body does not spell out, for any request: the prompt's own
/// framing (the JSON around each message already outweighs it).
pub const OVERHEAD_TOKENS: u64 = 256;

/// The system prompt the API adds when a request declares tools (a few hundred tokens).
pub const TOOL_USE_TOKENS: u64 = 1_024;

/// The most one Anthropic-defined tool (`bash_…`, `text_editor_…`, `computer_…`) adds: its full
/// definition and its part of the system prompt (under 1,300 tokens for the computer tool).
pub const TYPED_TOOL_TOKENS: u64 = 2_048;

/// An upper bound of a request's input tokens. A token is never less than a byte of the text it
/// encodes (JSON escapes only make the body longer), so the body's bytes bound its text; images
/// get [`IMAGE_TOKENS`] each instead of their base64 bytes, and declared tools what the API adds
/// for them. Input the bytes do not bound (a PDF,
/// content by URL or file id, server tools, MCP servers, a container) gets a whole context
/// window. Server tools that run several sampling iterations, and their per-use fees, are
/// beyond this bound.
pub fn input_bound(e: &Estimate) -> u64 {
    if e.opaque {
        return CONTEXT_TOKENS;
    }
    let tools = if e.tools { TOOL_USE_TOKENS } else { 0 };
    e.text_bytes
        .saturating_add(e.images.saturating_mul(IMAGE_TOKENS))
        .saturating_add(e.typed_tools.saturating_mul(TYPED_TOOL_TOKENS))
        .saturating_add(tools)
        .saturating_add(OVERHEAD_TOKENS)
        .min(CONTEXT_TOKENS)
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
            cache_creation_1h_input_tokens: 0,
        }
    }

    #[test]
    fn list_prices_are_exact_micro_dollars() {
        let book = PriceBook::new(None);
        let (r, known) = book.rates("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert!(known);
        // 10 input + 50,000 output at $3 / $15 per MTok = $0.75003.
        assert_eq!(book.cost_micros(&r, &usage(10, 50_000, 0, 0)), 750_030);
        // Cache: 1,000 read at $0.30, 1,000 written (5 min) at $3.75, 1,000 (1 h) at $6.
        assert_eq!(
            book.cost_micros(
                &r,
                &Usage {
                    cache_creation_1h_input_tokens: 1_000,
                    ..usage(0, 0, 1_000, 2_000)
                }
            ),
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
            book.cost_micros(&r, &usage(1_000, 1_000, 0, 0)),
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

    fn estimate(json: &str) -> Estimate {
        let obj = crate::api::body::RawObject::parse(json.as_bytes()).unwrap();
        Estimate::of(&obj, json.len())
    }

    /// A body of `n` bytes: one user message of `x`s.
    fn text_body(n: usize, extra: &str) -> String {
        let head = format!(
            r#"{{"model":"m","max_tokens":4096{extra},"messages":[{{"role":"user","content":""#
        );
        let tail = r#""}]}"#;
        let fill = n.saturating_sub(head.len() + tail.len());
        format!("{head}{}{tail}", "x".repeat(fill))
    }

    #[test]
    fn worst_case_covers_the_most_each_kind_of_request_can_cost() {
        let book = PriceBook::new(None);
        let (r, _) = book.rates("b", "claude-sonnet-4-5"); // $3 in, $15 out, 1h write $6
        let img = |data: &str| {
            format!(
                r#"{{"type":"image","source":{{"type":"base64","media_type":"image/png","data":"{data}"}}}}"#
            )
        };
        let msg = |content: &str| {
            format!(
                r#"{{"model":"m","max_tokens":1000,"messages":[{{"role":"user","content":[{content}]}}]}}"#
            )
        };
        // (case, body, the largest usage it can be billed for)
        let long_text = text_body(30_000, "");
        let cached_1h = text_body(
            30_000,
            r#","system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral","ttl":"1h"}}]"#,
        );
        // A tiny, highly compressible image still costs up to ~1,600 tokens.
        let tiny_image = msg(&img("iVBORw0KGgo="));
        let big_image = msg(&img(&"A".repeat(2_000_000)));
        let pdf = msg(
            r#"{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}"#,
        );
        let by_url =
            msg(r#"{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}"#);
        let by_file = msg(r#"{"type":"document","source":{"type":"file","file_id":"file_011"}}"#);
        let server_tool = r#"{"model":"m","max_tokens":1000,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[]}"#.to_owned();
        // Base64 image data outside an image block is text the model reads.
        let smuggled = format!(
            r#"{{"model":"m","max_tokens":1000,"messages":[{{"role":"assistant","content":[{{"type":"tool_use","id":"t","name":"x","input":{{"source":{{"type":"base64","media_type":"image/png","data":"{}"}}}}}}]}},{{"role":"user","content":[{}]}}]}}"#,
            "A".repeat(400_000),
            img("iVBORw0KGgo=")
        );
        // A computer-use declaration of 60 bytes expands to over a thousand tokens.
        let computer = r#"{"model":"m","max_tokens":1000,"tools":[{"type":"computer_20250124","name":"computer","display_width_px":1024,"display_height_px":768}],"messages":[{"role":"user","content":"hi"}]}"#.to_owned();
        let no_max = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#.to_owned();
        let escaped = msg(
            r#"{"type":"\u0069mage","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}"#,
        );
        let cases: Vec<(&str, &String, Usage)> = vec![
            (
                "text: a token per byte, all written to a 1h cache",
                &cached_1h,
                Usage {
                    cache_creation_1h_input_tokens: 30_000,
                    ..usage(0, 4_096, 0, 30_000)
                },
            ),
            (
                "text: a token per byte",
                &long_text,
                usage(30_000, 4_096, 0, 0),
            ),
            ("a tiny image", &tiny_image, usage(1_600, 1_000, 0, 0)),
            ("a large image", &big_image, usage(1_600, 1_000, 0, 0)),
            (
                "a PDF: its pages, not its bytes",
                &pdf,
                usage(900_000, 1_000, 0, 0),
            ),
            ("an image by URL", &by_url, usage(900_000, 1_000, 0, 0)),
            (
                "a document by file id",
                &by_file,
                usage(900_000, 1_000, 0, 0),
            ),
            (
                "a server tool's results",
                &server_tool,
                usage(900_000, 1_000, 0, 0),
            ),
            (
                "image data outside an image block",
                &smuggled,
                usage(400_000, 1_000, 0, 0),
            ),
            ("a computer-use tool", &computer, usage(1_300, 1_000, 0, 0)),
            ("no max_tokens", &no_max, usage(10, 128_000, 0, 0)),
            ("an escaped block type", &escaped, usage(1_600, 1_000, 0, 0)),
        ];
        for (case, body, most) in cases {
            let worst = book.worst_case_micros(&r, &estimate(body));
            let actual = book.cost_micros(&r, &most);
            assert!(worst >= actual, "{case}: {worst} < {actual}");
        }
        let e = estimate(&computer);
        assert!(e.tools);
        assert_eq!(e.typed_tools, 1);
        // Image bytes are priced as images, not as text: a 2 MB image reserves little.
        let e = estimate(&big_image);
        assert_eq!(e.images, 1);
        assert!(input_bound(&e) < 20_000, "{e:?}");
        // A 5-minute cache write is priced at its rate, not the 1-hour one.
        let five = text_body(
            30_000,
            r#","system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]"#,
        );
        let e = estimate(&five);
        assert_eq!(e.cache_write, CacheWrite::FiveMinutes);
        assert_eq!(
            book.worst_case_micros(&r, &e),
            ((30_000 + OVERHEAD_TOKENS) as f64 * 3.75 + 4_096.0 * 15.0).ceil() as u64
        );
    }

    #[test]
    fn worst_case_saturates_instead_of_wrapping() {
        let book = PriceBook::new(None);
        let (r, _) = book.rates("b", "claude-opus-4-8");
        for max in [u64::MAX, u64::MAX / 2, 1 << 63, CONTEXT_TOKENS + 1] {
            let body = format!(r#"{{"model":"m","max_tokens":{max},"messages":[]}}"#);
            let worst = book.worst_case_micros(&r, &estimate(&body));
            // Output is never billed past a context window: 1M × $25 plus the input.
            assert!(worst >= 25_000_000, "{max}: {worst}");
            assert!(worst < u64::MAX, "{max}: {worst}");
        }
        let e = Estimate {
            text_bytes: u64::MAX,
            images: u64::MAX,
            tools: true,
            typed_tools: u64::MAX,
            opaque: false,
            max_tokens: Some(u64::MAX),
            cache_write: CacheWrite::OneHour,
        };
        assert_eq!(input_bound(&e), CONTEXT_TOKENS);
        let huge = PriceBook {
            overrides: Vec::new(),
            multiplier: f64::MAX,
        };
        assert_eq!(huge.worst_case_micros(&r, &e), WORST_CASE_CEILING_MICROS);
    }

    #[test]
    fn no_model_has_a_larger_context_than_the_bound() {
        for b in crate::api::catalog::BUILT_IN {
            assert!(u64::from(b.max_input_tokens) <= CONTEXT_TOKENS, "{}", b.id);
        }
    }

    #[test]
    fn the_worst_case_stops_at_a_ceiling_the_store_can_sum() {
        let book = PriceBook::new(None);
        let (r, _) = book.rates("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
        let dear = Rates {
            input: f64::MAX,
            output: f64::MAX,
            cache_read: f64::MAX,
            cache_write_5m: f64::MAX,
            cache_write_1h: f64::MAX,
        };
        let e = estimate(&format!(r#"{{"max_tokens":{},"messages":[]}}"#, u64::MAX));
        assert_eq!(book.worst_case_micros(&dear, &e), WORST_CASE_CEILING_MICROS);
        // Thousands of such reservations on top of a large balance still fit the store's i64.
        let sum = (WORST_CASE_CEILING_MICROS as i64)
            .checked_mul(9_000)
            .and_then(|s| s.checked_add(i64::MAX / 100));
        assert!(sum.is_some());
        // Ordinary requests are not near it.
        assert!(book.worst_case_micros(&r, &e) < WORST_CASE_CEILING_MICROS / 1000);
    }

    #[test]
    fn worst_case_covers_the_actual_cost() {
        let book = PriceBook::new(None);
        let (r, _) = book.rates("b", "claude-opus-4-8");
        let worst = book.worst_case_micros(&r, &estimate(&text_body(3_000, "")));
        let actual = book.cost_micros(&r, &usage(3_000, 4_096, 0, 0));
        assert!(worst >= actual, "{worst} < {actual}");
    }
}
