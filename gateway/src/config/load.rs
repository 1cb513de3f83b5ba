//! Turns gateway.yaml text into a validated [`Config`]: parse, expand references, type, validate.

use aws_lc_rs::digest;
use serde_yaml::Value;

use super::budget;
use super::env::Env;
use super::error::{ConfigError, Issue};
use super::expand::expand;
use super::schema::Config;
use super::validate::validate;

/// A config that passed every check, with its fingerprint.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The typed, validated config (references expanded).
    pub config: Config,
    /// Hex SHA-256 of the config text as written, before `${VAR}` and `${file:}` references are
    /// expanded: it names the file an operator deployed, and says nothing about the secrets it
    /// references (a digest over expanded secrets would let anyone holding the audit log test
    /// guesses of a weak secret against it).
    pub sha256: String,
}

/// Loads and validates gateway.yaml text in `env`.
pub fn load(text: &str, env: &dyn Env) -> Result<Loaded, ConfigError> {
    let fail = |issues: Vec<Issue>| ConfigError { issues };
    budget::check(text).map_err(|e| fail(vec![Issue::new("", e.to_string())]))?;
    let mut root: Value = serde_yaml::from_str(text)
        .map_err(|e| fail(vec![Issue::new("", format!("not valid YAML: {e}"))]))?;
    match &root {
        Value::Mapping(map) => {
            if map.contains_key("dev") {
                return Err(fail(vec![Issue::new(
                    "dev",
                    "unknown key: `dev:` was removed, the gateway keeps its state in PostgreSQL only (configure store)",
                )]));
            }
        }
        Value::Null => return Err(fail(vec![Issue::new("", "the config is empty")])),
        _ => {
            return Err(fail(vec![Issue::new(
                "",
                "the config must be a mapping of sections",
            )]))
        }
    }

    let mut issues = Vec::new();
    expand(&mut root, env, &mut issues);
    if !issues.is_empty() {
        return Err(fail(issues));
    }

    let config: Config = serde_path_to_error::deserialize(root).map_err(|e| {
        let path = e.path().to_string();
        fail(vec![typed_issue(&path, &e.inner().to_string())])
    })?;

    let issues = validate(&config, env);
    if !issues.is_empty() {
        return Err(fail(issues));
    }
    let sha256 = hex(digest::digest(&digest::SHA256, text.as_bytes()).as_ref());
    Ok(Loaded { config, sha256 })
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Rewrites serde's messages so the location names the key itself.
fn typed_issue(path: &str, message: &str) -> Issue {
    let parent = if path == "." { "" } else { path };
    let join = |key: &str| {
        if parent.is_empty() {
            key.to_owned()
        } else {
            format!("{parent}.{key}")
        }
    };
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(key) = quoted("unknown field `") {
        // The path already ends with the key when the error was raised while reading it.
        let at = if parent == key || parent.ends_with(&format!(".{key}")) {
            parent.to_owned()
        } else {
            join(&key)
        };
        return Issue::new(at, "unknown key");
    }
    if let Some(key) = quoted("missing field `") {
        return Issue::new(join(&key), "required");
    }
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    Issue::new(parent, message)
}

/// The smallest config that loads, for tests of single sections.
#[cfg(test)]
pub(crate) mod test_base {
    /// Listen, one upstream, a session secret, the store and the IdP.
    pub(crate) const BASE: &str = "
listen: {host: 127.0.0.1, port: 8787}
upstreams: [{provider: bedrock, region: us-east-1, auth: {}}]
session: {jwt_secret: 0123456789abcdef0123456789abcdef}
store: {postgres_url: 'postgres://u@127.0.0.1/db'}
oidc: {issuer: 'https://idp.example.com', client_id: c, client_secret: s}
";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::MapEnv;

    use super::test_base::BASE;

    fn env() -> MapEnv {
        MapEnv::new()
    }

    fn issues(yaml: &str) -> Vec<Issue> {
        load(yaml, &env())
            .err()
            .map(|e| e.issues)
            .unwrap_or_default()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = load(BASE, &env()).unwrap().config;
        assert_eq!(c.limits.max_request_bytes, 33_554_432);
        assert_eq!(c.timeouts.upstream_ttfb_ms, 120_000);
        assert_eq!(c.rate_limits.device_authorization.max, 30);
        assert_eq!(c.rate_limits.device_verify.window_seconds, 600);
        assert_eq!(c.store.max_connections, 5);
        assert_eq!(c.store.connect_timeout_seconds, 5);
        assert!((c.session.ttl_hours - 1.0).abs() < f64::EPSILON);
        assert!(c.auto_include_builtin_models);
        let o = c.oidc.unwrap();
        assert_eq!(o.scopes, ["openid", "profile", "email", "offline_access"]);
        assert_eq!(o.groups_claim, "groups");
        assert!(o.use_pkce);
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let i = issues(&format!("{BASE}\nbogus: 1"));
        assert_eq!(i[0].path, "bogus");
        let i = issues(&BASE.replace("port: 8787}", "port: 8787, nope: 2}"));
        assert_eq!(i[0].path, "listen.nope");
        let i = issues(&BASE.replace("auth: {}", "auth: {}, colour: red"));
        assert_eq!(i[0].path, "upstreams[0].colour");
    }

    #[test]
    fn client_timeouts_have_bounds() {
        let c = load(BASE, &env()).unwrap().config;
        assert_eq!(c.timeouts.client_header_read_ms, 30_000);
        assert_eq!(c.timeouts.client_write_stall_ms, 60_000);
        for (key, bad, good) in [
            ("client_header_read_ms", [99, 600_001], [100, 600_000]),
            ("client_write_stall_ms", [99, 3_600_001], [100, 3_600_000]),
        ] {
            for v in bad {
                let i = issues(&format!("{BASE}\ntimeouts: {{{key}: {v}}}"));
                assert_eq!(i[0].path, format!("timeouts.{key}"), "{v}");
            }
            for v in good {
                assert!(issues(&format!("{BASE}\ntimeouts: {{{key}: {v}}}")).is_empty());
            }
        }
    }

    #[test]
    fn numbers_may_come_from_variables() {
        let e = MapEnv::new().with_var("PORT", "9001");
        let c = load(&BASE.replace("8787", "'${PORT}'"), &e).unwrap().config;
        assert_eq!(c.listen.port, 9001);
        let e = MapEnv::new().with_var("PORT", "eighty");
        let err = load(&BASE.replace("8787", "'${PORT}'"), &e).unwrap_err();
        assert_eq!(err.issues[0].path, "listen.port");
    }

    #[test]
    fn unsupported_providers_parse_then_fail_clearly() {
        let i = issues(&BASE.replace(
            "{provider: bedrock, region: us-east-1, auth: {}}",
            "{provider: vertex, region: us-east5, project_id: p, auth: {}}",
        ));
        assert_eq!(i[0].path, "upstreams[0].provider");
        assert!(i[0]
            .message
            .contains("provider vertex is not supported by this gateway"));
    }

    #[test]
    fn private_key_jwt_is_refused_by_name_not_sent_without_a_credential() {
        let yaml = BASE.replace(
            "client_secret: s}",
            "token_endpoint_auth_method: private_key_jwt, client_assertion: {private_key_pem: k, certificate_pem: c}}",
        );
        let i = issues(&yaml);
        assert_eq!(i.len(), 1, "{i:?}");
        assert_eq!(i[0].path, "oidc.token_endpoint_auth_method");
        assert!(i[0]
            .message
            .contains("private_key_jwt is not supported by this gateway"));
        // The two supported methods still load.
        for m in ["client_secret_basic", "client_secret_post"] {
            let yaml = BASE.replace(
                "client_secret: s}",
                &format!("client_secret: s, token_endpoint_auth_method: {m}}}"),
            );
            assert!(issues(&yaml).is_empty(), "{m}");
        }
    }

    #[test]
    fn keys_of_another_provider_are_refused() {
        let i = issues(&BASE.replace(
            "region: us-east-1, auth: {}",
            "region: us-east-1, auth: {api_key: k}",
        ));
        assert_eq!(i[0].path, "upstreams[0].auth.api_key");
    }

    #[test]
    fn the_hash_is_of_the_text_as_written_not_of_expanded_secrets() {
        let yaml = BASE.replace("client_secret: s}", "client_secret: '${IDP_SECRET}'}");
        let one = load(&yaml, &MapEnv::new().with_var("IDP_SECRET", "hunter2")).unwrap();
        let two = load(
            &yaml,
            &MapEnv::new().with_var("IDP_SECRET", "correct horse"),
        )
        .unwrap();
        assert_eq!(
            one.config
                .oidc
                .as_ref()
                .unwrap()
                .client_secret
                .as_ref()
                .unwrap()
                .expose(),
            "hunter2"
        );
        assert_eq!(
            one.sha256, two.sha256,
            "the secret's value does not change it"
        );
        // SHA-256 of the file's bytes, as `sha256sum gateway.yaml` prints it.
        let bytes = digest::digest(&digest::SHA256, yaml.as_bytes());
        assert_eq!(one.sha256, hex(bytes.as_ref()));
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        let other = load(&BASE.replace("8787", "8788"), &env()).unwrap().sha256;
        assert_ne!(load(BASE, &env()).unwrap().sha256, other);
    }

    #[test]
    fn secrets_do_not_print() {
        let c = load(BASE, &env()).unwrap().config;
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789abcdef0123456789abcdef"));
        assert!(!dbg.contains("postgres://u@"));
    }

    #[test]
    fn loopback_needs_the_switch_and_metadata_never_passes() {
        let yaml = BASE.replace("https://idp.example.com", "http://127.0.0.1:9400");
        assert_eq!(issues(&yaml)[0].path, "oidc.issuer");
        let e = MapEnv::new().with_var("CLAUDE_GATEWAY_ALLOW_LOOPBACK", "1");
        assert!(load(&yaml, &e).is_ok());
        let yaml = BASE.replace("https://idp.example.com", "http://169.254.169.254");
        assert!(load(&yaml, &e).is_err());
    }

    #[test]
    fn alias_bombs_are_refused() {
        // Nine levels of ten aliases: a billion values from 400 bytes.
        let mut t = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*l{}", i - 1); 10].join(", ");
            t.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        assert!(load(&t, &env()).is_err());
        // One wide anchor referenced many times: ten million values from 20 KB.
        let wide = format!(
            "{BASE}x: &a [{}]\ny: [{}]\n",
            vec!["0"; 3_200].join(","),
            vec!["*a"; 3_200].join(",")
        );
        let i = issues(&wide);
        assert_eq!(i[0].path, "");
        assert!(i[0].message.contains("YAML aliases"), "{}", i[0].message);
    }

    #[test]
    fn postgres_url_may_come_from_parts() {
        let yaml = BASE.replace(
            "store: {postgres_url: 'postgres://u@127.0.0.1/db'}",
            "store: {}",
        );
        assert_eq!(issues(&yaml)[0].path, "store.postgres_url");
        let e = MapEnv::new().with_var("GATEWAY_PG_HOST", "db.internal");
        assert!(load(&yaml, &e).is_ok());
    }
}
