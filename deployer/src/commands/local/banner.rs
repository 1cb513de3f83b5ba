//! What `deployer local` prints once everything is up: how to point Claude Code at the gateway,
//! whom to sign in as, and where the parts are. Tests read these lines, so their prefixes are
//! part of the command's interface.

use std::fmt::Write;

use super::idp::USERS;

/// The line that says the stack is up (last of the banner).
pub const READY: &str = "Ready. Press Ctrl-C to stop everything and remove";

/// What the banner shows.
pub struct Banner<'a> {
    /// `http://127.0.0.1:<port>`.
    pub gateway: &'a str,
    /// The Claude Code config folder holding the settings that point at the gateway.
    pub claude_dir: &'a str,
    /// The stack's folder.
    pub dir: &'a str,
    /// `None` with the operator's own IdP.
    pub demo_issuer: Option<&'a str>,
    /// Where Bedrock calls go, in words.
    pub upstream: &'a str,
    /// The Admin API key (the stack's own, gone with it).
    pub admin_key: &'a str,
    /// `PostgreSQL <port>`.
    pub postgres: &'a str,
}

/// The banner's text.
pub fn render(b: &Banner<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(out, "claude-gateway is running at {}", b.gateway);
    let _ = writeln!(out, "  upstream:   {}", b.upstream);
    let _ = writeln!(out, "  store:      {}", b.postgres);
    let _ = writeln!(out, "  config:     {}/gateway.yaml", b.dir);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Point Claude Code at it (in another terminal), then type /login and press Enter on the gateway screen:"
    );
    let _ = writeln!(out, "  export CLAUDE_CONFIG_DIR={}", b.claude_dir);
    let _ = writeln!(out, "  claude");
    let _ = writeln!(out);
    match b.demo_issuer {
        Some(issuer) => {
            let _ = writeln!(
                out,
                "Sign in at the demo IdP ({issuer}) with a user name (there is no password):"
            );
            for u in USERS {
                let _ = writeln!(
                    out,
                    "  user: {:<8} groups: {}",
                    u.login,
                    u.groups.join(", ")
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "Sign in with your own IdP account (its client must allow the redirect URI {}/oauth/callback).",
                b.gateway
            );
        }
    }
    let _ = writeln!(
        out,
        "Sample policy: contractors get claude-haiku-4-5 only and no web tools; everyone else no WebSearch."
    );
    let _ = writeln!(
        out,
        "Sample spend cap: $10 a day for each member of developers. Try the Admin API:"
    );
    let _ = writeln!(
        out,
        "  curl -s {}/v1/organizations/spend_limits -H 'x-api-key: {}'",
        b.gateway, b.admin_key
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "{READY} {}", b.dir);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_gives_the_two_client_lines_and_the_demo_users() {
        let text = render(&Banner {
            gateway: "http://127.0.0.1:8080",
            claude_dir: "/tmp/x/claude",
            dir: "/tmp/x",
            demo_issuer: Some("http://127.0.0.1:9000"),
            upstream: "the bundled Bedrock double (--offline)",
            admin_key: "k",
            postgres: "PostgreSQL on 127.0.0.1:5432",
        });
        assert!(text.contains("\n  export CLAUDE_CONFIG_DIR=/tmp/x/claude\n  claude\n"));
        assert!(text.contains("user: alice    groups: developers, admins"));
        assert!(text.trim_end().ends_with(&format!("{READY} /tmp/x")));
    }
}
