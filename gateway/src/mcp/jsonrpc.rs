//! JSON-RPC 2.0 as MCP's Streamable HTTP transport carries it: one message per POST body, read
//! into a typed request, notification or response, and the answers written back. Anything the
//! body says is checked here, so later stages see only well-formed messages.

use serde_json::{json, Map, Value};

/// The longest method name accepted, in bytes. MCP's methods are under 40 bytes; a longer one
/// is not a method this server could know.
pub const MAX_METHOD_BYTES: usize = 128;

/// A request id: MCP allows a string or an integer (never null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// An integer id (within the range of `i64`).
    Int(i64),
    /// A string id.
    Str(String),
}

impl Id {
    /// The id as JSON, as it goes back in the answer.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Int(n) => Value::from(*n),
            Self::Str(s) => Value::from(s.as_str()),
        }
    }

    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(Self::Str(s.clone())),
            Value::Number(n) => n.as_i64().map(Self::Int),
            _ => None,
        }
    }
}

/// A request: the client waits for an answer carrying the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id the answer must carry.
    pub id: Id,
    /// The method, at most [`MAX_METHOD_BYTES`] long.
    pub method: String,
    /// The parameters: an object, an array, or none.
    pub params: Option<Value>,
}

/// A notification: no id, no answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method, at most [`MAX_METHOD_BYTES`] long.
    pub method: String,
    /// The parameters: an object, an array, or none.
    pub params: Option<Value>,
}

/// One message from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request, answered with a result or an error.
    Request(Request),
    /// A notification, acknowledged with HTTP 202 and no body.
    Notification(Notification),
    /// The client's answer to a request of the server's; this server sends none, so it is
    /// acknowledged and dropped.
    Response {
        /// The id it answers.
        id: Id,
    },
}

/// The JSON-RPC error codes this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The body is not JSON (-32700).
    ParseError,
    /// The JSON is not a valid message, or a batch (-32600).
    InvalidRequest,
    /// No such method (-32601).
    MethodNotFound,
    /// The method's parameters are wrong (-32602).
    InvalidParams,
    /// The server failed (-32603).
    InternalError,
}

impl Code {
    /// The number on the wire.
    pub fn number(self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
        }
    }
}

/// A JSON-RPC error object: a code and a sentence the client (and its user) can read.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code.
    pub code: Code,
    /// What went wrong, without internals.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `-32601 Method not found`.
    pub fn method_not_found() -> Self {
        Self::new(Code::MethodNotFound, "Method not found")
    }

    /// `-32602` with what is wrong with the parameters.
    pub fn invalid_params(why: impl Into<String>) -> Self {
        Self::new(Code::InvalidParams, why)
    }
}

/// A body that is not a message: the error to answer, with the request's id when it had a
/// valid one (else the answer's id is null, as JSON-RPC says).
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The id of the refused request, when it could be read.
    pub id: Option<Id>,
    /// Why it was refused.
    pub error: RpcError,
}

/// Reads one POST body. The caller bounds its size; JSON nesting is bounded by the parser.
/// A batch (a JSON array) is refused: MCP removed batching in 2025-06-18.
pub fn parse(body: &[u8]) -> Result<Message, Refused> {
    let value: Value = serde_json::from_slice(body).map_err(|_| Refused {
        id: None,
        error: RpcError::new(Code::ParseError, "Parse error: the body is not JSON"),
    })?;
    from_value(&value)
}

/// Reads one message already parsed as JSON (see [`parse`]).
pub fn from_value(value: &Value) -> Result<Message, Refused> {
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => {
            return Err(invalid(None, "Invalid Request: batches are not supported"));
        }
        _ => return Err(invalid(None, "Invalid Request: a message is a JSON object")),
    };
    // An id that is present but neither a string nor an integer makes the id unreadable.
    let id = match obj.get("id") {
        None => None,
        Some(v) => match Id::from_value(v) {
            Some(id) => Some(id),
            None => {
                return Err(invalid(
                    None,
                    "Invalid Request: id must be a string or an integer",
                ));
            }
        },
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(id, "Invalid Request: jsonrpc must be \"2.0\""));
    }
    let Some(method) = obj.get("method") else {
        return response(obj, id);
    };
    let Some(method) = method.as_str() else {
        return Err(invalid(id, "Invalid Request: method must be a string"));
    };
    if method.len() > MAX_METHOD_BYTES {
        return Err(invalid(id, "Invalid Request: method name too long"));
    }
    let params = match obj.get("params") {
        None => None,
        Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p.clone()),
        Some(_) => {
            return Err(invalid(
                id,
                "Invalid Request: params must be an object or an array",
            ));
        }
    };
    let method = method.to_owned();
    Ok(match id {
        Some(id) => Message::Request(Request { id, method, params }),
        None => Message::Notification(Notification { method, params }),
    })
}

/// A message without a method: a response from the client, which needs an id and exactly one
/// of `result` and `error`.
fn response(obj: &Map<String, Value>, id: Option<Id>) -> Result<Message, Refused> {
    let outcome = obj.contains_key("result") as u8 + obj.contains_key("error") as u8;
    match id {
        Some(id) if outcome == 1 => Ok(Message::Response { id }),
        id => Err(invalid(
            id,
            "Invalid Request: neither a request, a notification nor a response",
        )),
    }
}

fn invalid(id: Option<Id>, message: &str) -> Refused {
    Refused {
        id,
        error: RpcError::new(Code::InvalidRequest, message),
    }
}

/// The answer to request `id` with `result`.
pub fn result(id: &Id, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id.to_value(), "result": result })
}

/// The error answer to request `id` (null when the id could not be read).
pub fn error(id: Option<&Id>, error: &RpcError) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id.map_or(Value::Null, Id::to_value),
        "error": { "code": error.code.number(), "message": error.message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refused(body: &str) -> Refused {
        match parse(body.as_bytes()) {
            Err(r) => r,
            Ok(m) => panic!("accepted {body}: {m:?}"),
        }
    }

    fn code(body: &str) -> i64 {
        refused(body).error.code.number()
    }

    #[test]
    fn a_request_with_an_integer_or_string_id_is_read() {
        let m = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#);
        assert_eq!(
            m,
            Ok(Message::Request(Request {
                id: Id::Int(1),
                method: "tools/list".into(),
                params: Some(json!({})),
            }))
        );
        let m = parse(br#"{"jsonrpc":"2.0","id":"a-1","method":"ping"}"#);
        assert_eq!(
            m,
            Ok(Message::Request(Request {
                id: Id::Str("a-1".into()),
                method: "ping".into(),
                params: None
            }))
        );
    }

    #[test]
    fn a_message_without_id_is_a_notification() {
        let m = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(
            m,
            Ok(Message::Notification(Notification {
                method: "notifications/initialized".into(),
                params: None,
            }))
        );
    }

    #[test]
    fn a_response_from_the_client_is_read_as_one() {
        let m = parse(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#);
        assert_eq!(m, Ok(Message::Response { id: Id::Int(7) }));
        let m = parse(br#"{"jsonrpc":"2.0","id":"x","error":{"code":-1,"message":"no"}}"#);
        assert_eq!(
            m,
            Ok(Message::Response {
                id: Id::Str("x".into())
            })
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":7}"#), -32600);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":7,"result":1,"error":{}}"#),
            -32600
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","result":{}}"#), -32600);
    }

    #[test]
    fn not_json_is_a_parse_error_with_a_null_id() {
        let r = refused("{not json");
        assert_eq!(r.error.code, Code::ParseError);
        assert_eq!(r.id, None);
        assert_eq!(code(""), -32700);
    }

    #[test]
    fn a_batch_is_refused() {
        let r = refused(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
        assert_eq!(r.error.code, Code::InvalidRequest);
        assert!(r.error.message.contains("batch"), "{}", r.error.message);
    }

    #[test]
    fn ids_other_than_string_or_integer_are_refused() {
        for id in ["null", "1.5", "true", "{}", "[1]", "18446744073709551615"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            let r = refused(&body);
            assert_eq!(r.error.code, Code::InvalidRequest, "{id}");
            assert_eq!(r.id, None, "{id}");
        }
    }

    #[test]
    fn the_envelope_is_checked_and_the_id_kept_when_valid() {
        let r = refused(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#);
        assert_eq!(
            (r.error.code, r.id),
            (Code::InvalidRequest, Some(Id::Int(3)))
        );
        assert_eq!(code(r#"{"id":3,"method":"ping"}"#), -32600);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":3,"method":5}"#), -32600);
        assert_eq!(code(r#""ping""#), -32600);
        assert_eq!(code("3"), -32600);
    }

    #[test]
    fn params_must_be_an_object_or_an_array() {
        for p in ["1", "\"x\"", "null", "true"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{p}}}"#);
            assert_eq!(code(&body), -32600, "{p}");
        }
        let ok = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn method_names_are_bounded() {
        let at = "m".repeat(MAX_METHOD_BYTES);
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{at}"}}"#);
        assert!(parse(body.as_bytes()).is_ok());
        let over = "m".repeat(MAX_METHOD_BYTES + 1);
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{over}"}}"#);
        assert_eq!(code(&body), -32600);
    }

    #[test]
    fn answers_carry_the_id_and_the_code() {
        assert_eq!(
            result(&Id::Str("a".into()), json!({})),
            json!({"jsonrpc":"2.0","id":"a","result":{}})
        );
        assert_eq!(
            error(Some(&Id::Int(4)), &RpcError::method_not_found()),
            json!({"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"Method not found"}})
        );
        assert_eq!(
            error(None, &RpcError::new(Code::ParseError, "p")),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"p"}})
        );
        let codes = [
            (Code::InvalidRequest, -32600),
            (Code::InvalidParams, -32602),
            (Code::InternalError, -32603),
        ];
        for (c, n) in codes {
            assert_eq!(c.number(), n);
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just("2.0".to_owned()),
                Just("id".to_owned()),
                Just("method".to_owned()),
                ".{0,8}",
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("jsonrpc".to_owned()),
                            Just("id".to_owned()),
                            Just("method".to_owned()),
                            Just("params".to_owned()),
                            Just("result".to_owned()),
                            Just("error".to_owned()),
                            ".{0,6}",
                        ],
                        inner,
                    ),
                    0..6
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_bytes_are_read_or_refused_without_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..512)
        ) {
            if let Err(r) = parse(&bytes) {
                let answer = error(r.id.as_ref(), &r.error);
                prop_assert_eq!(&answer["jsonrpc"], "2.0");
            }
        }

        #[test]
        fn any_json_is_read_or_refused_with_a_json_rpc_code(v in json_value()) {
            let body = v.to_string();
            match parse(body.as_bytes()) {
                Ok(Message::Request(r)) => {
                    prop_assert!(r.method.len() <= MAX_METHOD_BYTES);
                    prop_assert!(matches!(r.params, None | Some(Value::Object(_) | Value::Array(_))));
                }
                Ok(Message::Notification(n)) => {
                    prop_assert!(n.method.len() <= MAX_METHOD_BYTES);
                }
                Ok(Message::Response { .. }) => {}
                Err(r) => prop_assert_eq!(r.error.code, Code::InvalidRequest),
            }
        }
    }
}
