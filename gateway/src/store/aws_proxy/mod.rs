//! The AWS proxy in PostgreSQL: one file per table, each an `impl Store` block.

mod approvals;

pub use approvals::{CallApprovalRow, CallDecision, CallStatus};
