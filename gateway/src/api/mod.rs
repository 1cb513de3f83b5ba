//! The Messages API's own data, shared by the handlers (`inference`), the upstreams, group
//! policies, spend and telemetry: the request body as parsed once, an answer's usage, the model
//! catalog, and server-sent events.

pub mod body;
pub mod catalog;
pub mod sse;
pub mod usage;
