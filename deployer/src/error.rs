//! The deployer's one error type and the exit codes it maps to.
//!
//! Exit codes (also in `deployer --help`): 0 success; 1 a deployment, AWS call or check against
//! the account failed; 2 the command line or the profile is wrong (nothing was changed).

use std::fmt;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code when a deployment, an AWS call or a live check failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code when the command line or the profile is invalid.
pub const EXIT_USAGE: i32 = 2;

/// What went wrong, and which exit code it deserves.
#[derive(Debug)]
pub enum Error {
    /// The profile or the arguments are wrong; nothing was touched.
    Usage(String),
    /// Something failed while talking to AWS or while checking a deployment.
    Failed(String),
}

impl Error {
    /// A usage or configuration error.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
    /// A failure against the account.
    pub fn failed(msg: impl Into<String>) -> Self {
        Error::Failed(msg.into())
    }
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Failed(_) => EXIT_FAILED,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// The deployer's result type.
pub type Result<T> = std::result::Result<T, Error>;
