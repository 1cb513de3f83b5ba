//! claude-gateway: a drop-in Claude apps gateway that serves the stock Claude Code client from
//! Amazon Bedrock, with sign-in through the company IdP and no credential on any laptop.
//!
//! The modules follow a request's path through the gateway:
//!
//! - [`config`]: gateway.yaml, typed and validated before anything starts.
//! - [`server`]: sockets, TLS, graceful shutdown; [`write_stall`] and [`h2_idle`] bound how long a
//!   client may stall a write or hold an HTTP/2 connection that carries no request.
//! - [`shutdown`]: the phases of a stop, watched by the server and open streams.
//! - [`app`]: the one router: every route, behind the layers of [`http`].
//! - [`http`]: the layers every request crosses (request id, security headers, size limits,
//!   client IP and CIDR rules), and the error envelope.
//! - [`auth`]: session tokens (and, with sign-in, the device grant and OIDC relying party).
//! - [`policy`]: group policies: managed settings, the model allowlist, tool denials.
//! - [`inference`]: the Messages API routes: parse, pick upstreams, fail over, relay, audit.
//! - [`api`]: the Messages API's own data (the parsed body, usage, the model catalog, SSE), which
//!   the routes, upstreams, policies, spend and telemetry share.
//! - [`upstream`]: one client per provider (Bedrock, Anthropic) and the translation to and from it.
//! - [`spend`]: prices, caps, reservation and settlement, the Admin API.
//! - [`store`]: PostgreSQL, the only shared state; every SQL statement lives here.
//! - [`telemetry`]: the audit stream and operational logging.
//! - [`aws_access`]: short-lived AWS credentials for developers' agents, per project.
//! - [`aws_proxy`]: the gateway in the data path of those agents' AWS calls (`/aws/`).
//! - [`mcp`]: the MCP server's core: JSON-RPC messages, the lifecycle, and the shape of tools.
//! - [`clock`]: time as an input.

pub mod api;
pub mod app;
pub mod auth;
pub mod aws_access;
pub mod aws_proxy;
pub mod boot;
pub mod clock;
pub mod config;
pub mod h2_idle;
pub mod http;
pub mod inference;
pub mod mcp;
pub mod policy;
pub mod server;
pub mod shutdown;
pub mod spend;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod write_stall;
