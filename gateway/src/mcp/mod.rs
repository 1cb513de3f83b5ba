//! The MCP server's core, kept pure so every decision is tested without HTTP: the messages of
//! MCP's Streamable HTTP transport, the lifecycle (version negotiation, `initialize`, what each
//! method asks the server to do), and the shape of tools and their results.
//!
//! - [`jsonrpc`]: one POST body read as a JSON-RPC 2.0 message, and the answers written.
//! - [`protocol`]: the protocol revisions, `initialize`, the `MCP-Protocol-Version` header, and
//!   the dispatch of a message to what the server does with it.
//! - [`tool`]: a tool as `tools/list` lists it, and a tool's result as the model reads it.

pub mod jsonrpc;
pub mod protocol;
pub mod tool;
