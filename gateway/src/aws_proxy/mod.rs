//! The gateway in the data path of developers' AWS calls: requests signed for the gateway are
//! checked, re-signed for AWS, and their answers masked before they reach the agent or a record.
//!
//! - [`mask`]: the answer's secrets and personal data replaced by `[MASKED:kind]`, in JSON, XML
//!   and text bodies.

pub mod mask;
