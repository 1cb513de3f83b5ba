//! Everything the CLI reads from its environment, read once in one place so tests feed it with a
//! map instead of setting variables.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::Error;

/// The variables the CLI looks at.
pub const VARS: [&str; 6] = [
    "CLAUDE_AWS_CONFIG_DIR",
    "CLAUDE_AWS_GATEWAY",
    "XDG_CONFIG_HOME",
    "HOME",
    "USERPROFILE",
    "AWS_CONFIG_FILE",
];

/// The prefix of the AWS SDKs' per-service endpoint variables (`AWS_ENDPOINT_URL_S3`, …), which
/// win over `AWS_ENDPOINT_URL`.
pub const SERVICE_ENDPOINT_PREFIX: &str = "AWS_ENDPOINT_URL_";

/// The environment, as read at start.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    /// The names of the per-service endpoint variables set (values not kept).
    service_endpoints: Vec<String>,
}

impl Env {
    /// The process environment (only [`VARS`], and only non-empty values).
    #[allow(clippy::disallowed_methods)] // this is the one place that reads the process environment
    pub fn process() -> Env {
        let mut env = Env::from_pairs(
            VARS.iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))),
        );
        env.service_endpoints = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with(SERVICE_ENDPOINT_PREFIX))
            .collect();
        env
    }

    /// An environment from pairs (for tests).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Env {
        let pairs: Vec<(String, String)> = pairs.into_iter().collect();
        Env {
            service_endpoints: pairs
                .iter()
                .filter(|(k, _)| k.starts_with(SERVICE_ENDPOINT_PREFIX))
                .map(|(k, _)| k.clone())
                .collect(),
            vars: pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        }
    }

    /// The per-service endpoint variables that are set (`AWS_ENDPOINT_URL_S3`, …).
    pub fn service_endpoints(&self) -> &[String] {
        &self.service_endpoints
    }

    /// One variable.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    fn home(&self) -> Result<PathBuf, Error> {
        self.var("HOME")
            .or_else(|| self.var("USERPROFILE"))
            .map(PathBuf::from)
            .ok_or_else(|| Error::Usage("HOME is not set, so there is no home directory".into()))
    }

    /// `CLAUDE_AWS_CONFIG_DIR` when set (the session then always lives in a file there).
    pub fn config_dir_override(&self) -> Option<PathBuf> {
        self.var("CLAUDE_AWS_CONFIG_DIR").map(PathBuf::from)
    }

    /// Where the session file and its lock live: `CLAUDE_AWS_CONFIG_DIR`, else
    /// `$XDG_CONFIG_HOME/claude-aws`, else `~/.config/claude-aws`.
    pub fn config_dir(&self) -> Result<PathBuf, Error> {
        if let Some(dir) = self.config_dir_override() {
            return Ok(dir);
        }
        let base = match self.var("XDG_CONFIG_HOME") {
            Some(x) if PathBuf::from(x).is_absolute() => PathBuf::from(x),
            _ => self.home()?.join(".config"),
        };
        Ok(base.join("claude-aws"))
    }

    /// The AWS CLI's config file: `AWS_CONFIG_FILE`, else `~/.aws/config`.
    pub fn aws_config_file(&self) -> Result<PathBuf, Error> {
        match self.var("AWS_CONFIG_FILE") {
            Some(f) => Ok(PathBuf::from(f)),
            None => Ok(self.home()?.join(".aws").join("config")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn the_config_dir_follows_the_override_then_xdg_then_home() {
        let e = env(&[
            ("HOME", "/h"),
            ("XDG_CONFIG_HOME", "/x"),
            ("CLAUDE_AWS_CONFIG_DIR", "/c"),
        ]);
        assert_eq!(e.config_dir().unwrap(), PathBuf::from("/c"));
        let e = env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")]);
        assert_eq!(e.config_dir().unwrap(), PathBuf::from("/x/claude-aws"));
        // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
        let e = env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "rel")]);
        assert_eq!(
            e.config_dir().unwrap(),
            PathBuf::from("/h/.config/claude-aws")
        );
        assert!(matches!(env(&[]).config_dir(), Err(Error::Usage(_))));
    }

    #[test]
    fn the_aws_config_file_honours_aws_config_file() {
        let e = env(&[("HOME", "/h")]);
        assert_eq!(
            e.aws_config_file().unwrap(),
            PathBuf::from("/h/.aws/config")
        );
        let e = env(&[("HOME", "/h"), ("AWS_CONFIG_FILE", "/elsewhere")]);
        assert_eq!(e.aws_config_file().unwrap(), PathBuf::from("/elsewhere"));
    }
}
