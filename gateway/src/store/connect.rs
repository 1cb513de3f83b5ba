//! How the gateway finds its database: `store.postgres_url`, or the URL assembled from the
//! `GATEWAY_PG_*` variables (how ECS hands over RDS credentials), with user and password
//! percent-encoded here so generated passwords with `#`, `%`, `&`, `@` or `/` work unchanged.
//! Every connection carries `store.statement_timeout_ms` as its statement and idle-transaction
//! timeouts.

use std::str::FromStr;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;

use crate::config::{Env, Store as StoreConfig, PG_HOST_VAR};

/// Everything but unreserved characters is encoded in the user-info part of the URL.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why connection options could not be built. Never carries the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Neither a URL nor `GATEWAY_PG_HOST`.
    #[error("store.postgres_url is not set and neither is {PG_HOST_VAR}")]
    Missing,
    /// The URL or a variable does not parse.
    #[error("{0}")]
    Invalid(String),
}

/// Builds connection options from the config and environment.
pub fn connect_options(cfg: &StoreConfig, env: &dyn Env) -> Result<PgConnectOptions, ConnectError> {
    let url = match &cfg.postgres_url {
        Some(u) => u.expose().to_owned(),
        None => assemble_url(env)?,
    };
    let mut opts = PgConnectOptions::from_str(&url).map_err(|_| {
        ConnectError::Invalid(
            "the Postgres URL does not parse (percent-encode special characters in the password, or use store.password)"
                .into(),
        )
    })?;
    if let Some(user) = &cfg.username {
        opts = opts.username(user);
    }
    if let Some(pw) = &cfg.password {
        opts = opts.password(pw.expose());
    }
    // Every statement, and every transaction left idle, is bounded on the server itself: a
    // stuck query or a lock held by a lost task cannot hold a pooled connection for long.
    let bound = cfg.statement_timeout_ms.to_string();
    Ok(opts
        .options([
            ("statement_timeout", bound.as_str()),
            ("idle_in_transaction_session_timeout", bound.as_str()),
        ])
        .application_name("claude-gateway")
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2))
        .log_statements(tracing::log::LevelFilter::Trace))
}

/// `postgres://user:password@host:port/db?sslmode=...` from `GATEWAY_PG_*`.
pub fn assemble_url(env: &dyn Env) -> Result<String, ConnectError> {
    let host = env.var(PG_HOST_VAR).ok_or(ConnectError::Missing)?;
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return Err(ConnectError::Invalid(format!(
            "{PG_HOST_VAR} is not a host name"
        )));
    }
    let port = env.var("GATEWAY_PG_PORT").unwrap_or_else(|| "5432".into());
    port.parse::<u16>()
        .map_err(|_| ConnectError::Invalid("GATEWAY_PG_PORT is not a port number".into()))?;
    let user = env
        .var("GATEWAY_PG_USER")
        .unwrap_or_else(|| "postgres".into());
    let db = env
        .var("GATEWAY_PG_DB")
        .unwrap_or_else(|| "postgres".into());
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let mut url = format!("postgres://{}", utf8_percent_encode(&user, USERINFO));
    if let Some(pw) = env.var("GATEWAY_PG_PASSWORD") {
        url.push(':');
        url.extend(utf8_percent_encode(&pw, USERINFO));
    }
    url.push_str(&format!(
        "@{host}:{port}/{}",
        utf8_percent_encode(&db, USERINFO)
    ));
    if let Some(mode) = env.var("GATEWAY_PG_SSLMODE") {
        let ok = [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ];
        if !ok.contains(&mode.as_str()) {
            return Err(ConnectError::Invalid(format!(
                "GATEWAY_PG_SSLMODE must be one of {}",
                ok.join(", ")
            )));
        }
        url.push_str(&format!("?sslmode={mode}"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    #[test]
    fn password_with_url_characters_round_trips() {
        let pw = "p#a%s&s@w/o:r?d";
        let env = MapEnv::new()
            .with_var("GATEWAY_PG_HOST", "db.internal")
            .with_var("GATEWAY_PG_PORT", "6543")
            .with_var("GATEWAY_PG_USER", "gw user")
            .with_var("GATEWAY_PG_PASSWORD", pw)
            .with_var("GATEWAY_PG_DB", "gateway")
            .with_var("GATEWAY_PG_SSLMODE", "require");
        let url = assemble_url(&env).unwrap();
        assert!(!url.contains(pw));
        let opts = PgConnectOptions::from_str(&url).unwrap();
        assert_eq!(opts.get_host(), "db.internal");
        assert_eq!(opts.get_port(), 6543);
        assert_eq!(opts.get_username(), "gw user");
        assert_eq!(opts.get_database(), Some("gateway"));
        // The password is only observable by connecting; the real-Postgres test does that.
    }

    #[test]
    fn bad_parts_are_refused_without_echoing_secrets() {
        let env = MapEnv::new()
            .with_var("GATEWAY_PG_HOST", "db")
            .with_var("GATEWAY_PG_SSLMODE", "sometimes");
        assert!(matches!(assemble_url(&env), Err(ConnectError::Invalid(_))));
        assert!(matches!(
            assemble_url(&MapEnv::new()),
            Err(ConnectError::Missing)
        ));
    }
}
