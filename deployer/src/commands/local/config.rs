//! The local stack's gateway.yaml, and the environment it is loaded in. Every secret and every
//! value given on the command line reaches the config through a `${LOCAL_…}` reference, so the
//! file written for the operator to read holds no secret and nothing needs quoting.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use claude_gateway::config::{Env, ProcessEnv};

/// Where Bedrock calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Amazon Bedrock in `region`, with the operator's own AWS credentials (the SDK's chain:
    /// environment, profile, SSO, …).
    Bedrock {
        /// The AWS Region.
        region: String,
    },
    /// The bundled Bedrock double at `url`, signing with its test keys.
    Double {
        /// Its base URL.
        url: String,
        /// The access key id it accepts.
        key_id: String,
        /// The secret key it accepts.
        secret: String,
    },
}

/// Everything the config is made of.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The gateway's loopback port.
    pub port: u16,
    /// Bedrock or the double.
    pub upstream: Upstream,
    /// Variables the config references: see [`vars`].
    pub vars: HashMap<String, String>,
}

/// The variables a [`render`]ed config references, from their values.
pub fn vars(
    postgres_url: &str,
    issuer: &str,
    client_id: &str,
    client_secret: &str,
    jwt_secret: &str,
    admin_key: &str,
) -> HashMap<String, String> {
    [
        ("LOCAL_POSTGRES_URL", postgres_url),
        ("LOCAL_OIDC_ISSUER", issuer),
        ("LOCAL_OIDC_CLIENT_ID", client_id),
        ("LOCAL_OIDC_CLIENT_SECRET", client_secret),
        ("LOCAL_JWT_SECRET", jwt_secret),
        ("LOCAL_ADMIN_KEY", admin_key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The gateway.yaml text: loopback listener (and only loopback clients), the IdP, the store,
/// one upstream, an admin key, and a sample group policy (contractors get one small model and no web tools).
pub fn render(parts: &Parts) -> String {
    let port = parts.port;
    let upstream = match &parts.upstream {
        Upstream::Bedrock { region } => format!(
            "  - provider: bedrock
    region: '{}'
    auth: {{}}
",
            region.replace('\'', "''")
        ),
        Upstream::Double { url, .. } => format!(
            "  - provider: bedrock
    region: us-east-1
    base_url: '{}'
    auth:
      aws_access_key_id: '${{LOCAL_DOUBLE_KEY_ID}}'
      aws_secret_access_key: '${{LOCAL_DOUBLE_SECRET}}'
",
            url.replace('\'', "''")
        ),
    };
    format!(
        "# The local stack's gateway config (deployer local). Values in ${{LOCAL_…}} are handed to
# the gateway in memory, not stored here.
listen:
  host: 127.0.0.1
  port: {port}
  public_url: 'http://127.0.0.1:{port}'
oidc:
  issuer: '${{LOCAL_OIDC_ISSUER}}'
  client_id: '${{LOCAL_OIDC_CLIENT_ID}}'
  client_secret: '${{LOCAL_OIDC_CLIENT_SECRET}}'
session:
  jwt_secret: '${{LOCAL_JWT_SECRET}}'
  ttl_hours: 8
store:
  postgres_url: '${{LOCAL_POSTGRES_URL}}'
access_control:
  allow_cidrs: [127.0.0.0/8]
upstreams:
{upstream}admin:
  write_keys:
    - id: local-admin
      key: '${{LOCAL_ADMIN_KEY}}'
  admin_groups: [admins]
  blocked_message: 'This is the local stack''s sample cap of $10 a day for developers.'
managed:
  policies:
    - match: {{groups: [contractors]}}
      cli:
        model: claude-haiku-4-5
        availableModels: [claude-haiku-4-5]
        permissions: {{deny: [WebFetch, WebSearch]}}
    - match: {{}}
      cli:
        permissions: {{deny: [WebSearch]}}
"
    )
}

/// The process environment with the local stack's variables over it, plus the settings a
/// loopback-only stack needs (loopback IdP allowed, a short drain, quiet logs unless asked).
pub struct LocalEnv {
    vars: HashMap<String, String>,
}

impl LocalEnv {
    /// `parts`' variables (and the double's keys) over the process environment.
    pub fn new(parts: &Parts) -> LocalEnv {
        let mut vars = parts.vars.clone();
        if let Upstream::Double { key_id, secret, .. } = &parts.upstream {
            vars.insert("LOCAL_DOUBLE_KEY_ID".into(), key_id.clone());
            vars.insert("LOCAL_DOUBLE_SECRET".into(), secret.clone());
        }
        vars.insert("CLAUDE_GATEWAY_ALLOW_LOOPBACK".into(), "1".into());
        for (key, default) in [
            ("CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS", "3000"),
            ("CLAUDE_GATEWAY_LOG_LEVEL", "warn"),
        ] {
            let value = ProcessEnv.var(key).unwrap_or_else(|| default.to_owned());
            vars.insert(key.into(), value);
        }
        LocalEnv { vars }
    }
}

impl Env for LocalEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .cloned()
            .or_else(|| ProcessEnv.var(name))
    }

    fn read_file(&self, path: &Path) -> io::Result<String> {
        ProcessEnv.read_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(upstream: Upstream) -> Parts {
        Parts {
            port: 18080,
            upstream,
            vars: vars(
                "postgres://postgres:pw@127.0.0.1:5999/postgres",
                "http://127.0.0.1:4000",
                "client",
                "secret with 'quotes' and ${NOT_A_VAR}",
                &"j".repeat(64),
                &"a".repeat(48),
            ),
        }
    }

    #[test]
    fn the_offline_config_loads_with_the_double_and_the_sample_policy() {
        let p = parts(Upstream::Double {
            url: "http://127.0.0.1:4001".into(),
            key_id: "AKIDFAKE".into(),
            secret: "double-secret".into(),
        });
        let text = render(&p);
        let loaded = claude_gateway::config::load(&text, &LocalEnv::new(&p)).unwrap();
        let c = &loaded.config;
        assert_eq!(c.listen.port, 18080);
        assert_eq!(c.upstreams.len(), 1);
        assert_eq!(c.managed.as_ref().map(|m| m.policies.len()), Some(2));
        assert_eq!(c.admin.as_ref().map(|a| a.write_keys.len()), Some(1));
        let oidc = c.oidc.as_ref().unwrap();
        assert_eq!(oidc.client_id, "client");
        // A secret reaches the gateway as given, and the file never holds it.
        assert_eq!(
            oidc.client_secret.as_ref().map(|s| s.expose().to_owned()),
            Some("secret with 'quotes' and ${NOT_A_VAR}".to_owned())
        );
        assert!(!text.contains("double-secret") && !text.contains("quotes"));
    }

    #[test]
    fn the_aws_config_uses_the_operators_credentials_in_the_region() {
        let p = parts(Upstream::Bedrock {
            region: "eu-west-1".into(),
        });
        let text = render(&p);
        assert!(text.contains("region: 'eu-west-1'\n    auth: {}"), "{text}");
        claude_gateway::config::load(&text, &LocalEnv::new(&p)).unwrap();
    }
}
