//! The CLI's one error type and its exit codes, decided here and nowhere else, so scripts and
//! the AWS CLI can tell "sign in again" from "you may not" from "try later".

/// Exit codes (also in the long help and the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Anything else: a local file could not be written, the gateway answered something unexpected.
    pub const FAILED: u8 = 1;
    /// Wrong arguments or setup: no or insecure gateway address, a bad duration, a bad request.
    pub const USAGE: u8 = 2;
    /// Not signed in, or the sign-in expired or was refused: run `claude-aws login`.
    pub const NOT_SIGNED_IN: u8 = 3;
    /// The gateway refused: not a member, window not open or over, write not approved, MFA needed.
    pub const REFUSED: u8 = 4;
    /// The gateway could not be reached, or is unavailable for a moment: try again later.
    pub const UNREACHABLE: u8 = 5;
    /// Stopped by Ctrl-C (128 + SIGINT).
    pub const INTERRUPTED: u8 = 130;
}

/// What went wrong, in words the developer can act on. Never carries a token or an AWS secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong arguments or setup.
    #[error("{0}")]
    Usage(String),
    /// No session, or the gateway no longer accepts it.
    #[error("{0}")]
    NotSignedIn(String),
    /// The gateway said no, with its reason.
    #[error("{0}")]
    Refused(String),
    /// The gateway did not answer, or answered that it is unavailable.
    #[error("{0}")]
    Unreachable(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
    /// Stopped by Ctrl-C.
    #[error("{0}")]
    Interrupted(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::NotSignedIn(_) => exit::NOT_SIGNED_IN,
            Error::Refused(_) => exit::REFUSED,
            Error::Unreachable(_) => exit::UNREACHABLE,
            Error::Failed(_) => exit::FAILED,
            Error::Interrupted(_) => exit::INTERRUPTED,
        }
    }

    /// The error for a gateway's refusal of an API call: HTTP `status` and the message it gave.
    pub fn from_answer(status: u16, message: String) -> Error {
        match status {
            400 | 413 | 422 => Error::Usage(message),
            401 => Error::NotSignedIn(format!("{message} (sign in again: claude-aws login)")),
            403 | 404 | 409 | 410 => Error::Refused(message),
            429 | 502 | 503 | 504 => Error::Unreachable(message),
            _ => Error::Failed(message),
        }
    }

    /// "Not signed in": the hint every such error ends with.
    pub fn not_signed_in(why: &str) -> Error {
        Error::NotSignedIn(format!("{why}: run `claude-aws login`"))
    }
}

/// Text from outside (a gateway's message, a project name) made safe for a terminal: control
/// characters dropped, at most `max` characters.
pub fn printable(text: &str, max: usize) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if text.chars().filter(|c| !c.is_control()).count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_maps_to_its_documented_exit_code() {
        let cases = [
            (400, exit::USAGE),
            (401, exit::NOT_SIGNED_IN),
            (403, exit::REFUSED),
            (404, exit::REFUSED),
            (409, exit::REFUSED),
            (429, exit::UNREACHABLE),
            (500, exit::FAILED),
            (502, exit::UNREACHABLE),
            (503, exit::UNREACHABLE),
            (504, exit::UNREACHABLE),
            (418, exit::FAILED),
        ];
        for (status, code) in cases {
            assert_eq!(
                Error::from_answer(status, "m".into()).exit_code(),
                code,
                "HTTP {status}"
            );
        }
        assert_eq!(Error::Usage(String::new()).exit_code(), 2);
        assert_eq!(Error::not_signed_in("x").exit_code(), 3);
        assert_eq!(Error::Refused(String::new()).exit_code(), 4);
        assert_eq!(Error::Unreachable(String::new()).exit_code(), 5);
        assert_eq!(Error::Failed(String::new()).exit_code(), 1);
        assert_eq!(Error::Interrupted(String::new()).exit_code(), 130);
        assert!(Error::from_answer(401, "expired".into())
            .to_string()
            .contains("claude-aws login"));
    }

    #[test]
    fn text_from_outside_cannot_drive_the_terminal() {
        assert_eq!(printable("a\u{1b}[2Jb\nc", 100), "a[2Jbc");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("abc", 3), "abc");
    }
}
