//! The HTTP layers every request crosses on its way in, in order: edge (request id, security
//! headers, error envelope) → access (client IP, CIDR rules) → limits (URL, headers, sign-in rate
//! limits, each route's body size and read deadline) → the route (see [`crate::app`]); and the
//! error every route answers with.

pub mod access;
pub mod body;
pub mod edge;
pub mod error;
pub mod health;
pub mod limits;
pub mod pages;
