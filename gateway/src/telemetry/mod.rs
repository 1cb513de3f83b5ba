//! Telemetry: the relay of the client's OTLP, the audit stream (JSON lines on stdout) and
//! operational logs (text on stderr).

pub mod audit;
pub mod breaker;
pub mod ingest;
pub mod logging;
pub mod otel;
pub mod prompt_hash;
pub mod relay;
pub mod track;
