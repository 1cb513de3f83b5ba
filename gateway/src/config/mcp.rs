//! `aws_access.mcp`: the MCP server at `/mcp`. With this section (and `aws_access.proxy`, whose
//! decision, limits, masking and recording its tools share), developers' clients get a small
//! set of AWS tools, each authorized per user through the gateway's own OAuth authorization
//! server in front of the company IdP.

use serde::{Deserialize, Serialize};

use super::error::Issue;

/// `aws_access.mcp`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mcp {
    /// How long an MCP access token is good for, in seconds.
    #[serde(default = "Mcp::default_access_token_seconds")]
    pub access_token_seconds: u32,
    /// How long a sign-in lasts through refreshes before the browser is needed again, in hours.
    #[serde(default = "Mcp::default_refresh_hours")]
    pub refresh_hours: u32,
    /// How long an MCP session lasts without a request, in seconds.
    #[serde(default = "Mcp::default_session_idle_seconds")]
    pub session_idle_seconds: u32,
    /// The most bytes of text a tool's result carries; past it the text is cut and says so.
    #[serde(default = "Mcp::default_max_result_bytes")]
    pub max_result_bytes: u32,
}

impl Default for Mcp {
    fn default() -> Self {
        Self {
            access_token_seconds: Self::default_access_token_seconds(),
            refresh_hours: Self::default_refresh_hours(),
            session_idle_seconds: Self::default_session_idle_seconds(),
            max_result_bytes: Self::default_max_result_bytes(),
        }
    }
}

impl Mcp {
    fn default_access_token_seconds() -> u32 {
        900
    }
    fn default_refresh_hours() -> u32 {
        12
    }
    fn default_session_idle_seconds() -> u32 {
        8 * 3600
    }
    fn default_max_result_bytes() -> u32 {
        64 * 1024
    }
}

/// The section's problems; `proxy` is whether `aws_access.proxy` is set.
pub fn check(m: &Mcp, proxy: bool) -> Vec<Issue> {
    let mut out = Vec::new();
    if !proxy {
        out.push(Issue::new(
            "aws_access.mcp",
            "needs aws_access.proxy: the MCP tools share its decision, limits, masking and recording",
        ));
    }
    let mut err =
        |path: &str, message: &str| out.push(Issue::new(format!("aws_access.mcp.{path}"), message));
    if !(60..=3600).contains(&m.access_token_seconds) {
        err("access_token_seconds", "must be 60 to 3600");
    }
    if !(1..=720).contains(&m.refresh_hours) {
        err("refresh_hours", "must be 1 to 720");
    }
    if !(60..=7 * 86_400).contains(&m.session_idle_seconds) {
        err("session_idle_seconds", "must be 60 to 604800");
    }
    if !(1024..=1024 * 1024).contains(&m.max_result_bytes) {
        err("max_result_bytes", "must be 1024 to 1048576");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_hold_and_out_of_range_values_are_named() {
        assert!(check(&Mcp::default(), true).is_empty());
        let bad = Mcp {
            access_token_seconds: 10,
            refresh_hours: 0,
            session_idle_seconds: 1,
            max_result_bytes: 1,
        };
        let paths: Vec<String> = check(&bad, false).iter().map(|i| i.path.clone()).collect();
        assert_eq!(
            paths,
            [
                "aws_access.mcp",
                "aws_access.mcp.access_token_seconds",
                "aws_access.mcp.refresh_hours",
                "aws_access.mcp.session_idle_seconds",
                "aws_access.mcp.max_result_bytes"
            ]
        );
    }
}
