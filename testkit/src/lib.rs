//! Test doubles for claude-gateway.
//!
//! [`FakeBedrock`] is a loopback Bedrock runtime close enough to the real one that the AWS SDK
//! for Rust cannot tell the difference:
//!
//! - the REST routes `POST /model/{modelId}/invoke`, `/invoke-with-response-stream` and
//!   `/count-tokens`, with the model id percent-encoded in the path;
//! - SigV4 verification recomputed from the request (or a Bedrock API key as a bearer token);
//! - Bedrock's validation of the Anthropic body (`anthropic_version` required, `model` refused);
//! - errors as Bedrock sends them (`x-amzn-ErrorType`, `{"message": ...}`);
//! - the binary event stream, encoded here independently of the SDK, with Bedrock's `chunk`
//!   payloads and mid-stream exceptions;
//! - scripted failures: errors, stalls, broken connections, exceptions inside a stream.

pub mod eventstream;
mod reply;
mod server;
pub mod sigv4;

pub use reply::{
    estimate_input_tokens, invocation_metrics, message_from_events, Reply, ReplyBuilder,
};
pub use server::{
    Behavior, FakeBedrock, Operation, Options, Recorded, ANTHROPIC_VERSION, DEFAULT_MODEL,
    DEFAULT_TEXT,
};
