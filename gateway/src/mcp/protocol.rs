//! The MCP lifecycle as pure decisions: which protocol revision to answer, what `initialize`
//! returns, whether a request's `MCP-Protocol-Version` header is one this server speaks, and
//! what the server does with each message, so the route only carries out a [`Dispatch`].

use serde_json::{json, Map, Value};

use super::jsonrpc::{self, Id, Message, RpcError};

/// The revisions this server speaks, newest first. Claude Code 2.1.328 knows each of them.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// The newest revision, answered to a client asking for one this server does not speak.
pub const LATEST_VERSION: &str = SUPPORTED_VERSIONS[0];

/// The revision a request without an `MCP-Protocol-Version` header is assumed to speak, as the
/// transport specification says.
pub const VERSION_WITHOUT_HEADER: &str = "2025-03-26";

/// The name this server gives in `serverInfo`.
pub const SERVER_NAME: &str = "claude-gateway";

/// What `initialize` tells the model about this server.
pub const INSTRUCTIONS: &str = "AWS tools for your projects, run by claude-gateway with your \
project access: each call is checked against the project's policy, writes may wait for a \
person's approval, and outputs are masked and bounded.";

/// The revision to answer a client asking for `requested`: the same one when this server
/// speaks it (the lifecycle's MUST), else the newest this server speaks.
pub fn negotiate(requested: &str) -> &'static str {
    SUPPORTED_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(LATEST_VERSION)
}

/// An `MCP-Protocol-Version` header naming a revision this server does not speak; the route
/// answers it with HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported MCP-Protocol-Version; this server speaks 2025-11-25, 2025-06-18 and 2025-03-26"
)]
pub struct UnsupportedVersion;

/// The revision a request speaks, from its `MCP-Protocol-Version` header (`None` when absent).
pub fn header_version(header: Option<&str>) -> Result<&'static str, UnsupportedVersion> {
    match header {
        None => Ok(VERSION_WITHOUT_HEADER),
        Some(h) => SUPPORTED_VERSIONS
            .iter()
            .find(|v| **v == h)
            .copied()
            .ok_or(UnsupportedVersion),
    }
}

/// The result of `initialize`, answering `protocol_version` (from [`negotiate`]) as server
/// version `server_version`. Tools are the only capability, and their list never changes
/// during a session.
pub fn initialize_result(protocol_version: &str, server_version: &str) -> Value {
    json!({
        "protocolVersion": protocol_version,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": { "name": SERVER_NAME, "version": server_version },
        "instructions": INSTRUCTIONS,
    })
}

/// The result of `ping`: an empty object.
pub fn ping_result() -> Value {
    json!({})
}

/// What the route does with one POST body.
#[derive(Debug, Clone, PartialEq)]
pub enum Dispatch {
    /// Answer `initialize` with [`initialize_result`] for `protocol_version`, and start a
    /// session.
    Initialize {
        /// The request's id.
        id: Id,
        /// The revision to answer, already negotiated.
        protocol_version: &'static str,
    },
    /// `notifications/initialized`: HTTP 202, no body.
    Initialized,
    /// Answer `tools/list`.
    ToolsList {
        /// The request's id.
        id: Id,
    },
    /// Run a tool and answer with its result.
    ToolsCall {
        /// The request's id.
        id: Id,
        /// The tool's name, not yet looked up.
        name: String,
        /// The tool's arguments (an empty object when the client sent none), not yet checked
        /// against the tool's schema.
        arguments: Map<String, Value>,
    },
    /// Answer `ping` with [`ping_result`].
    Ping {
        /// The request's id.
        id: Id,
    },
    /// Answer with this JSON-RPC error (HTTP 200); `id` is `None` when the body had no
    /// readable id.
    Error {
        /// The id of the request answered.
        id: Option<Id>,
        /// The error.
        error: RpcError,
    },
    /// Any other notification, or a response from the client: HTTP 202, no body.
    Accepted,
}

/// What to do with one POST body (see [`jsonrpc::parse`] for what is refused).
pub fn dispatch_body(body: &[u8]) -> Dispatch {
    match jsonrpc::parse(body) {
        Ok(message) => dispatch(message),
        Err(refused) => Dispatch::Error {
            id: refused.id,
            error: refused.error,
        },
    }
}

/// What to do with one POST body arriving with `header` as its `MCP-Protocol-Version`: the
/// header is checked first, except on a `server/discover` request. That probe names a newer
/// revision in its header, and must still get its -32601 (not a 400) so the client falls back
/// to `initialize`.
pub fn dispatch_versioned(
    header: Option<&str>,
    body: &[u8],
) -> Result<Dispatch, UnsupportedVersion> {
    let message = match jsonrpc::parse(body) {
        Ok(m) => m,
        Err(refused) => {
            header_version(header)?;
            return Ok(Dispatch::Error {
                id: refused.id,
                error: refused.error,
            });
        }
    };
    let probe = matches!(&message, Message::Request(r) if r.method == DISCOVER);
    if !probe {
        header_version(header)?;
    }
    Ok(dispatch(message))
}

/// The method a newer revision's client probes with before `initialize`.
const DISCOVER: &str = "server/discover";

/// What to do with one message.
pub fn dispatch(message: Message) -> Dispatch {
    let request = match message {
        Message::Request(r) => r,
        Message::Notification(n) if n.method == "notifications/initialized" => {
            return Dispatch::Initialized;
        }
        Message::Notification(_) | Message::Response { .. } => return Dispatch::Accepted,
    };
    let id = request.id;
    let params = request.params.as_ref();
    let decided = match request.method.as_str() {
        "initialize" => initialize(params).map(|protocol_version| Dispatch::Initialize {
            id: id.clone(),
            protocol_version,
        }),
        "tools/list" => tools_list(params).map(|()| Dispatch::ToolsList { id: id.clone() }),
        "tools/call" => tools_call(params).map(|(name, arguments)| Dispatch::ToolsCall {
            id: id.clone(),
            name,
            arguments,
        }),
        "ping" => Ok(Dispatch::Ping { id: id.clone() }),
        // `server/discover` is a newer revision's probe; "not found" makes the client fall back
        // to `initialize`, like any method this server does not know.
        _ => Err(RpcError::method_not_found()),
    };
    decided.unwrap_or_else(|error| Dispatch::Error {
        id: Some(id),
        error,
    })
}

fn object(params: Option<&Value>) -> Result<Option<&Map<String, Value>>, RpcError> {
    match params {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(RpcError::invalid_params("params must be an object")),
    }
}

fn initialize(params: Option<&Value>) -> Result<&'static str, RpcError> {
    object(params)?
        .and_then(|p| p.get("protocolVersion"))
        .and_then(Value::as_str)
        .map(negotiate)
        .ok_or_else(|| {
            RpcError::invalid_params("initialize needs params.protocolVersion, a string")
        })
}

/// All tools fit one page, so no cursor is ever handed out and any cursor is not one of ours.
fn tools_list(params: Option<&Value>) -> Result<(), RpcError> {
    match object(params)?.and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(RpcError::invalid_params("unknown cursor")),
    }
}

fn tools_call(params: Option<&Value>) -> Result<(String, Map<String, Value>), RpcError> {
    let p =
        object(params)?.ok_or_else(|| RpcError::invalid_params("tools/call needs params.name"))?;
    let name = p
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("tools/call needs params.name, a string"))?;
    let arguments = match p.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => {
            return Err(RpcError::invalid_params(
                "tools/call params.arguments must be an object",
            ));
        }
    };
    Ok((name.to_owned(), arguments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::Code;
    use proptest::prelude::*;

    fn body(v: Value) -> Dispatch {
        dispatch_body(v.to_string().as_bytes())
    }

    fn code(d: &Dispatch) -> Option<i64> {
        match d {
            Dispatch::Error { error, .. } => Some(error.code.number()),
            _ => None,
        }
    }

    /// The initialize request Claude Code 2.1.328 sends on its legacy path.
    fn claude_code_initialize(version: &str) -> Value {
        json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": { "roots": {}, "elicitation": {} },
                "clientInfo": { "name": "claude-code", "title": "Claude Code", "version": "2.1.328" },
            },
        })
    }

    #[test]
    fn a_supported_version_is_echoed() {
        for v in SUPPORTED_VERSIONS {
            assert_eq!(negotiate(v), v);
        }
        assert_eq!(
            body(claude_code_initialize("2025-11-25")),
            Dispatch::Initialize {
                id: Id::Int(0),
                protocol_version: "2025-11-25"
            }
        );
    }

    #[test]
    fn an_unsupported_version_gets_the_latest() {
        for v in ["2024-11-05", "2024-10-07", "2026-07-28", "", "latest"] {
            assert_eq!(negotiate(v), "2025-11-25", "{v}");
        }
        assert_eq!(
            body(claude_code_initialize("2024-11-05")),
            Dispatch::Initialize {
                id: Id::Int(0),
                protocol_version: "2025-11-25"
            }
        );
    }

    #[test]
    fn initialize_without_a_version_is_invalid_params() {
        let d = body(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}));
        assert_eq!(code(&d), Some(-32602));
        let d = body(json!({"jsonrpc":"2.0","id":1,"method":"initialize"}));
        assert_eq!(code(&d), Some(-32602));
        let d = body(
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":20251125}}),
        );
        assert_eq!(code(&d), Some(-32602));
    }

    #[test]
    fn the_initialize_result_names_tools_as_the_only_capability() {
        let r = initialize_result("2025-06-18", "1.2.3");
        assert_eq!(r["protocolVersion"], "2025-06-18");
        assert_eq!(r["capabilities"], json!({"tools": {"listChanged": false}}));
        assert_eq!(
            r["serverInfo"],
            json!({"name": "claude-gateway", "version": "1.2.3"})
        );
        assert!(r["instructions"].as_str().is_some_and(|s| !s.is_empty()));
    }

    #[test]
    fn the_header_version_is_checked() {
        assert_eq!(header_version(None), Ok("2025-03-26"));
        assert_eq!(header_version(Some("2025-11-25")), Ok("2025-11-25"));
        assert_eq!(header_version(Some("2025-06-18")), Ok("2025-06-18"));
        for bad in ["2024-11-05", "2026-07-28", "", " 2025-11-25"] {
            assert_eq!(
                header_version(Some(bad)),
                Err(UnsupportedVersion),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn server_discover_is_method_not_found_with_its_id() {
        // The probe Claude Code sends first to an http server.
        let d = body(json!({
            "jsonrpc": "2.0", "id": 0, "method": "server/discover",
            "params": { "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": { "name": "claude-code", "version": "2.1.328" },
            }},
        }));
        let Dispatch::Error { id, error } = d else {
            panic!("{d:?}")
        };
        assert_eq!(id, Some(Id::Int(0)));
        assert_eq!(error.code, Code::MethodNotFound);
        assert_eq!(
            jsonrpc::error(id.as_ref(), &error),
            json!({"jsonrpc":"2.0","id":0,"error":{"code":-32601,"message":"Method not found"}})
        );
    }

    #[test]
    fn the_header_is_checked_before_dispatch_except_on_the_probe() {
        let probe = json!({"jsonrpc":"2.0","id":0,"method":"server/discover","params":{}});
        let d = dispatch_versioned(Some("2026-07-28"), probe.to_string().as_bytes());
        assert_eq!(d.as_ref().ok().and_then(code), Some(-32601));
        let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string();
        assert_eq!(
            dispatch_versioned(Some("2026-07-28"), list.as_bytes()),
            Err(UnsupportedVersion)
        );
        assert_eq!(
            dispatch_versioned(Some("2025-11-25"), list.as_bytes()),
            Ok(Dispatch::ToolsList { id: Id::Int(1) })
        );
        assert_eq!(
            dispatch_versioned(None, list.as_bytes()),
            Ok(Dispatch::ToolsList { id: Id::Int(1) })
        );
        let note = json!({"jsonrpc":"2.0","method":"server/discover"}).to_string();
        assert_eq!(
            dispatch_versioned(Some("1999-01-01"), note.as_bytes()),
            Err(UnsupportedVersion)
        );
        assert_eq!(dispatch_versioned(Some("x"), b"{"), Err(UnsupportedVersion));
        let d = dispatch_versioned(None, b"{");
        assert_eq!(d.as_ref().ok().and_then(code), Some(-32700));
    }

    #[test]
    fn unknown_methods_are_not_found() {
        for m in [
            "resources/list",
            "prompts/get",
            "tools/List",
            "completion/complete",
        ] {
            let d = body(json!({"jsonrpc":"2.0","id":"q","method":m}));
            assert_eq!(code(&d), Some(-32601), "{m}");
        }
    }

    #[test]
    fn notifications_and_responses_get_no_answer() {
        let d = body(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert_eq!(d, Dispatch::Initialized);
        for m in [
            "notifications/cancelled",
            "notifications/roots/list_changed",
            "server/discover",
            "initialize",
        ] {
            let d = body(json!({"jsonrpc":"2.0","method":m,"params":{}}));
            assert_eq!(d, Dispatch::Accepted, "{m}");
        }
        let d = body(json!({"jsonrpc":"2.0","id":5,"result":{"roots":[]}}));
        assert_eq!(d, Dispatch::Accepted);
    }

    #[test]
    fn ping_and_tools_list() {
        let d = body(json!({"jsonrpc":"2.0","id":2,"method":"ping"}));
        assert_eq!(d, Dispatch::Ping { id: Id::Int(2) });
        assert_eq!(ping_result(), json!({}));
        let d = body(json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}));
        assert_eq!(d, Dispatch::ToolsList { id: Id::Int(3) });
        let d = body(json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{}}}));
        assert_eq!(d, Dispatch::ToolsList { id: Id::Int(3) });
        let d =
            body(json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":"abc"}}));
        assert_eq!(code(&d), Some(-32602));
    }

    #[test]
    fn tools_call_carries_the_name_and_arguments() {
        let d = body(json!({"jsonrpc":"2.0","id":9,"method":"tools/call",
            "params":{"name":"s3_get","arguments":{"bucket":"b"}}}));
        let mut args = Map::new();
        args.insert("bucket".into(), json!("b"));
        assert_eq!(
            d,
            Dispatch::ToolsCall {
                id: Id::Int(9),
                name: "s3_get".into(),
                arguments: args
            }
        );
        let d =
            body(json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"whoami"}}));
        assert_eq!(
            d,
            Dispatch::ToolsCall {
                id: Id::Int(9),
                name: "whoami".into(),
                arguments: Map::new()
            }
        );
    }

    #[test]
    fn malformed_tools_call_is_invalid_params() {
        for params in [
            json!({}),
            json!({"name": 3}),
            json!({"name": "x", "arguments": [1]}),
            json!({"name": "x", "arguments": "a=1"}),
            json!(["x"]),
        ] {
            let d = body(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":params}));
            assert_eq!(code(&d), Some(-32602), "{params}");
            let Dispatch::Error { id, .. } = d else {
                continue;
            };
            assert_eq!(id, Some(Id::Int(1)));
        }
        let d = body(json!({"jsonrpc":"2.0","id":1,"method":"tools/call"}));
        assert_eq!(code(&d), Some(-32602));
    }

    #[test]
    fn refused_bodies_become_errors() {
        assert_eq!(code(&dispatch_body(b"nope")), Some(-32700));
        assert_eq!(code(&dispatch_body(b"[]")), Some(-32600));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_request_gets_an_answer_and_any_notification_none(
            method in prop_oneof![
                Just("initialize".to_owned()),
                Just("tools/list".to_owned()),
                Just("tools/call".to_owned()),
                Just("ping".to_owned()),
                Just("server/discover".to_owned()),
                "[a-z/_]{0,20}",
            ],
            params in prop_oneof![
                Just(None),
                Just(Some(json!({}))),
                Just(Some(json!([]))),
                Just(Some(json!({"protocolVersion":"2025-06-18"}))),
                Just(Some(json!({"name":"t","arguments":{"a":1}}))),
                Just(Some(json!({"name":"t","arguments":null}))),
                Just(Some(json!({"cursor":"c"}))),
            ],
            id in prop::option::of(prop_oneof![
                any::<i64>().prop_map(Value::from),
                ".{0,8}".prop_map(Value::from),
            ]),
        ) {
            let mut msg = json!({"jsonrpc":"2.0","method":method});
            if let Some(p) = params { msg["params"] = p; }
            if let Some(i) = id.clone() { msg["id"] = i; }
            let d = body(msg);
            match id {
                None => prop_assert!(matches!(d, Dispatch::Initialized | Dispatch::Accepted)),
                Some(i) => {
                    let answered = match &d {
                        Dispatch::Initialize { id, .. }
                        | Dispatch::ToolsList { id }
                        | Dispatch::ToolsCall { id, .. }
                        | Dispatch::Ping { id } => Some(id.to_value()),
                        Dispatch::Error { id, .. } => id.as_ref().map(Id::to_value),
                        Dispatch::Initialized | Dispatch::Accepted => None,
                    };
                    prop_assert_eq!(answered, Some(i));
                }
            }
        }
    }
}
