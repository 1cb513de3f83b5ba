//! Operational logs: human-readable lines on stderr through `tracing`, with the level taken from
//! `CLAUDE_GATEWAY_LOG_LEVEL` (debug, info, warn, error; default info).

use tracing_subscriber::EnvFilter;

use crate::config::Env;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(env: &dyn Env) {
    let level = env
        .var("CLAUDE_GATEWAY_LOG_LEVEL")
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| matches!(l.as_str(), "debug" | "info" | "warn" | "error" | "trace"))
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::new(format!(
        "warn,claude_gateway={level},claude_gateway::telemetry={level}"
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}
