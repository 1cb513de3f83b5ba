//! Why a developer gets no AWS credential, in words they can act on. One type for the whole
//! subsystem; the credential endpoint maps it to its JSON answer in one place.

use crate::clock::rfc3339;
use time::OffsetDateTime;

/// Why no credential is issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No project of that name.
    #[error("there is no project {project}")]
    NoProject {
        /// The name asked for.
        project: String,
    },
    /// No member entry covers the developer.
    #[error("you are not a member of project {project}")]
    NotMember {
        /// The project.
        project: String,
    },
    /// The window has not opened.
    #[error("your access to project {project} starts at {}", rfc3339(*.from))]
    NotYet {
        /// The project.
        project: String,
        /// When the window opens.
        from: OffsetDateTime,
    },
    /// Less than the shortest session is left (or nothing at all).
    #[error("your access to project {project} ends at {}", rfc3339(*.ends))]
    Ending {
        /// The project.
        project: String,
        /// When access ends.
        ends: OffsetDateTime,
    },
    /// The developer may hold only read on the project.
    #[error("you may hold read access to project {project}, not write")]
    ReadOnly {
        /// The project.
        project: String,
    },
    /// Write needs an approved request, and there is none in force.
    #[error("write access to project {project} needs an approved request: ask with `claude-aws request --project {project}`")]
    WriteNotApproved {
        /// The project.
        project: String,
    },
    /// A prod write needs a recent multi-factor sign-in.
    #[error("write access to project {project} needs a sign-in with MFA in the last {minutes} minutes: run `claude-aws login` again")]
    MfaNeeded {
        /// The project.
        project: String,
        /// The allowed age of the sign-in.
        minutes: i64,
    },
}
