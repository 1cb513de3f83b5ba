//! Config problems, each tied to the location in gateway.yaml that causes it.

use std::fmt;

/// One problem in a config, with the dotted location it concerns (`listen.public_url`,
/// `upstreams[0].provider`, or the name of an environment variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where: a dotted path, a `${...}` reference or a variable name.
    pub path: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl Issue {
    /// A new issue at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(top level): {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config; boot stops when there is at least one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in the order found.
    pub issues: Vec<Issue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}
