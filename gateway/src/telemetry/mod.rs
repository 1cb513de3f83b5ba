//! What the gateway says about itself: the audit stream (JSON lines on stdout) and operational
//! logs (text on stderr).

pub mod audit;
pub mod logging;
