//! The MCP server's core, kept pure so every decision is tested without HTTP: the messages of
//! MCP's Streamable HTTP transport, the lifecycle (version negotiation, `initialize`, what each
//! method asks the server to do), and the shape of tools and their results.
//!
//! - [`jsonrpc`]: one POST body read as a JSON-RPC 2.0 message, and the answers written.
//! - [`protocol`]: the protocol revisions, `initialize`, the `MCP-Protocol-Version` header, and
//!   the dispatch of a message to what the server does with it.
//! - [`tool`]: a tool as `tools/list` lists it, and a tool's result as the model reads it.
//! - [`oauth`]: who may call: the authorization server and the access tokens of `/mcp`.
//! - [`tools`]: the AWS tools, run through the data path's stages.
//! - [`server`]: the endpoint; [`session`]: its sessions.

pub mod jsonrpc;
pub mod oauth;
pub mod protocol;
pub mod server;
pub mod session;
pub mod tool;
pub mod tools;

use axum::Router;

use crate::state::AppState;

/// The MCP server's routes: the endpoint and its authorization server.
pub fn routes() -> Router<AppState> {
    Router::new().merge(oauth::routes()).merge(server::routes())
}
