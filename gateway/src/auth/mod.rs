//! Who is calling: session tokens minted after sign-in and checked on every bearer request.

pub mod bearer;
pub mod caller;
pub mod token;
