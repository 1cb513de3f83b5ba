//! Property tests for every parser of outside input the gateway exposes: whatever the bytes, a
//! parser answers Ok or a clear error, never panics, and what it accepts means what it said.
//! Parsers private to their module (SSE framing, Bedrock chunks, the `/device` form, Admin API
//! bodies) carry their properties next to their code.

mod body;
mod config;
mod forms;
mod token;
