//! The gateway in the data path of agents' AWS calls: a SigV4 proxy at `/aws/`. Requests signed
//! for the gateway are checked, re-signed for AWS, and their answers masked before they reach the
//! agent or a record. These are its pure cores; the proxy route itself (decide, re-sign for the
//! real endpoint, relay, record) comes later and is built on them. The stages, each a module:
//!
//! - [`sigv4`]: the client's AWS Signature Version 4 checked (header and presigned forms, clock
//!   skew, payload hash, S3's chunked bodies and their chunk signatures), and what the proxy
//!   needs from it: key, scope, signed headers, payload.
//! - [`operation`]: the operation a request names (`s3:GetObject`, `logs:FilterLogEvents`) and
//!   its class (read, list or write), from the credential scope's service and the request.
//! - [`mask`]: the answer's secrets and personal data replaced by `[MASKED:kind]`, in JSON, XML
//!   and text bodies.

pub mod mask;
pub mod operation;
pub mod sigv4;

#[cfg(test)]
mod vectors;
