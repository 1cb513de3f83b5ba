//! The AWS proxy in PostgreSQL: one file per table, each an `impl Store` block: the calls'
//! recordings (`calls`), the per-user call counts behind its rate limits (`counts`) and single
//! calls held for approval (`approvals`).

mod approvals;
pub mod calls;
mod counts;

pub use approvals::{CallApprovalRow, CallDecision, CallStatus};
