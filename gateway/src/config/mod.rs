//! gateway.yaml: the one definition of the gateway's configuration, compatible with the Claude apps
//! gateway's file. Parsing, `${VAR}`/`${file:}` expansion and validation all happen here, before
//! anything binds a port; the deployer builds the same types and serializes them.

pub mod aws_access;
pub mod aws_proxy;
mod budget;
mod env;
mod error;
mod expand;
mod lenient;
mod load;
pub mod mcp;
pub mod net;
mod schema;
mod summary;
mod validate;

pub use budget::{MAX_CONFIG_BYTES, MAX_CONFIG_VALUES};
pub use env::{read_capped, Env, MapEnv, ProcessEnv};
pub use error::{ConfigError, Issue};
pub use load::{hex, load, Loaded};
pub use schema::*;
pub use summary::summary;
pub use validate::{origin, ALLOW_LOOPBACK_VAR, PG_HOST_VAR};
