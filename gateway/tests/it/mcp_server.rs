//! The MCP endpoint's protocol, over HTTP against a real gateway with the real test IdP behind
//! its authorization server: the token first, then the protocol revision, then the session;
//! `initialize` starts a session, the session belongs to one developer, `DELETE` ends it, `GET`
//! is 405, and every malformed or unknown message gets the JSON-RPC error the client reads.

use serde_json::{json, Value};

use crate::support::flood::Framing;
use crate::support::gateway::Gateway;
use crate::support::idp::{Idp, IdpOptions, TestUser};
use crate::support::mcp::access_token;
use crate::support::runtime;
use crate::support::stack::signin_with;

/// The MCP server on, in front of a project the users are members of (no AWS is reached here).
const SECTIONS: &str = "aws_access:
  sts_endpoint_url: http://127.0.0.1:9
  proxy: {upstream_url: 'http://127.0.0.1:9'}
  mcp: {}
  projects:
    - name: payments
      role_arn: arn:aws:iam::123456789012:role/agent-payments
      regions: [eu-west-1]
      tag: {key: project, value: payments}
      environment: nonprod
      read: ['s3:List*']
  members:
    - {project: payments, groups: [payments], level: read}
";

struct Mcp {
    idp: Idp,
    gw: Gateway,
    base: String,
    http: reqwest::Client,
}

fn start(extra: &str) -> Mcp {
    let users = [
        TestUser::new("ana").groups(&["payments"]),
        TestUser::new("bob").groups(&["payments"]),
    ];
    let (idp, gw, base) = signin_with(&users, IdpOptions::default(), "", extra);
    Mcp {
        idp,
        gw,
        base,
        http: crate::support::client(),
    }
}

/// An answer: status, headers we look at, and the body (JSON when it is JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    session: Option<String>,
    allow: Option<String>,
    challenge: Option<String>,
    content_type: Option<String>,
    body: Value,
    text: String,
}

impl Mcp {
    async fn token(&self, login: &str) -> String {
        crate::support::mcp::sign_in(&self.gw, &self.idp, login)
            .await
            .access_token
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.unwrap();
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (session, allow, challenge, content_type) = (
            h("mcp-session-id"),
            h("allow"),
            h("www-authenticate"),
            h("content-type"),
        );
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        Answer {
            status,
            session,
            allow,
            challenge,
            content_type,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// POSTs `body` to /mcp with `token`, the negotiated revision and `session` when given.
    async fn post(&self, token: Option<&str>, session: Option<&str>, body: &Value) -> Answer {
        let mut req = self
            .http
            .post(format!("{}/mcp", self.base))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        self.send(req).await
    }

    /// A bare POST to /mcp with `token` in `session`, for the requests [`Mcp::post`] would get
    /// right.
    fn in_session(&self, token: &str, session: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(token)
            .header("mcp-session-id", session)
    }

    /// A new session for `token`; its id.
    async fn initialize(&self, token: &str) -> String {
        let a = self
            .post(
                Some(token),
                None,
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "claude-code", "version": "2.1.328"}}}),
            )
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        let sid = a.session.clone().expect("a session id");
        let b = self
            .post(
                Some(token),
                Some(&sid),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(b.status, 202, "{b:?}");
        assert!(b.text.is_empty(), "{b:?}");
        sid
    }
}

fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[test]
fn a_request_without_an_mcp_token_is_challenged_to_authorize() {
    let rt = runtime();
    let m = start(SECTIONS);
    rt.block_on(async {
        let body = request(1, "initialize", json!({"protocolVersion": "2025-11-25"}));
        let none = m.post(None, None, &body).await;
        assert_eq!(none.status, 401, "{none:?}");
        let challenge = none.challenge.clone().unwrap();
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
                m.base
            )),
            "{challenge}"
        );
        assert!(!challenge.contains("invalid_token"), "{challenge}");

        // A gateway session token is not an MCP token, nor is a made-up one, an expired one,
        // or one minted for another gateway's resource.
        let session_token = crate::support::gateway::token("ana", &["payments"]);
        let now = time::OffsetDateTime::now_utc();
        let expired = access_token(
            &m.base,
            "ana",
            &["payments"],
            now - time::Duration::hours(1),
            900,
        );
        let foreign = access_token("https://other.example", "ana", &["payments"], now, 900);
        let good = access_token(&m.base, "ana", &["payments"], now, 900);
        let ok = m.post(Some(&good), None, &body).await;
        assert_eq!(ok.status, 200, "the minted token is a real one: {ok:?}");
        for t in [session_token.as_str(), "not-a-token", &expired, &foreign] {
            let a = m.post(Some(t), None, &body).await;
            assert_eq!(a.status, 401, "{a:?}");
            assert!(
                a.challenge
                    .as_deref()
                    .unwrap_or("")
                    .contains("invalid_token"),
                "{a:?}"
            );
        }
    });
    m.gw.assert_no_secrets();
}

#[test]
fn initialize_starts_a_session_that_carries_the_later_requests() {
    let rt = runtime();
    let m = start(SECTIONS);
    rt.block_on(async {
        let ana = m.token("ana").await;

        // A newer client's probe is "method not found" (so it falls back to initialize), with
        // no session, though its header names a revision this server does not speak.
        let probe = m
            .http
            .post(format!("{}/mcp", m.base))
            .bearer_auth(&ana)
            .header("mcp-protocol-version", "2026-07-28")
            .json(&request(0, "server/discover", json!({})));
        let probe = m.send(probe).await;
        assert_eq!(probe.status, 200, "{probe:?}");
        assert_eq!(probe.body["error"]["code"], -32601, "{probe:?}");
        assert_eq!(probe.session, None);

        let a = m
            .post(
                Some(&ana),
                None,
                &request(
                    1,
                    "initialize",
                    json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
                ),
            )
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        assert!(a
            .content_type
            .as_deref()
            .unwrap_or("")
            .starts_with("application/json"));
        assert_eq!(a.allow.as_deref(), Some("POST, DELETE"));
        assert_eq!(a.body["id"], 1);
        assert_eq!(a.body["result"]["protocolVersion"], "2025-06-18");
        assert_eq!(a.body["result"]["serverInfo"]["name"], "claude-gateway");
        assert!(
            a.body["result"]["capabilities"]["tools"].is_object(),
            "{a:?}"
        );
        let sid = a.session.clone().expect("a session id");
        assert!(
            sid.len() >= 32 && sid.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{sid}"
        );

        // tools/list and ping in the session.
        let tools = m
            .post(Some(&ana), Some(&sid), &request(2, "tools/list", json!({})))
            .await;
        assert_eq!(tools.status, 200, "{tools:?}");
        let names: Vec<&str> = tools.body["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        for expected in ["logs_search", "s3_read", "aws_call"] {
            assert!(names.contains(&expected), "{names:?}");
        }
        let ping = m
            .post(Some(&ana), Some(&sid), &request(3, "ping", json!({})))
            .await;
        assert_eq!(ping.body, json!({"jsonrpc": "2.0", "id": 3, "result": {}}));

        // Without the session: 400 in the words the client reads as "start again".
        let none = m
            .post(Some(&ana), None, &request(4, "tools/list", json!({})))
            .await;
        assert_eq!(none.status, 400, "{none:?}");
        assert!(
            none.text.contains("Mcp-Session-Id header is required"),
            "{none:?}"
        );
        // An unknown session, and ana's session with bob's token: 404.
        let unknown = m
            .post(
                Some(&ana),
                Some("no-such-session"),
                &request(5, "tools/list", json!({})),
            )
            .await;
        assert_eq!(unknown.status, 404, "{unknown:?}");
        let bob = m.token("bob").await;
        let theirs = m
            .post(Some(&bob), Some(&sid), &request(6, "tools/list", json!({})))
            .await;
        assert_eq!(theirs.status, 404, "{theirs:?}");

        // Errors the client can read.
        let cases = [
            (json!([request(7, "ping", json!({}))]), -32600),
            (request(8, "resources/list", json!({})), -32601),
            (
                request(
                    9,
                    "tools/call",
                    json!({"name": "no_such_tool", "arguments": {}}),
                ),
                -32602,
            ),
            (request(10, "tools/call", json!({"arguments": {}})), -32602),
        ];
        for (body, code) in cases {
            let a = m.post(Some(&ana), Some(&sid), &body).await;
            assert_eq!(a.status, 200, "{a:?}");
            assert_eq!(a.body["error"]["code"], code, "{body} -> {a:?}");
        }
        let parse = m
            .send(
                m.in_session(&ana, &sid)
                    .header("content-type", "application/json")
                    .body("{not json"),
            )
            .await;
        assert_eq!(parse.body["error"]["code"], -32700, "{parse:?}");

        // A revision this server does not speak, a body that is not JSON, another origin.
        let old = m
            .send(
                m.in_session(&ana, &sid)
                    .header("mcp-protocol-version", "2024-01-01")
                    .json(&request(11, "ping", json!({}))),
            )
            .await;
        assert_eq!(old.status, 400, "{old:?}");
        let plain = m
            .send(
                m.in_session(&ana, &sid)
                    .header("content-type", "text/plain")
                    .body(request(12, "ping", json!({})).to_string()),
            )
            .await;
        assert_eq!(plain.status, 415, "{plain:?}");
        let foreign = m
            .send(
                m.in_session(&ana, &sid)
                    .header("origin", "https://evil.example")
                    .json(&request(13, "ping", json!({}))),
            )
            .await;
        assert_eq!(foreign.status, 403, "{foreign:?}");

        // GET has no stream; DELETE ends the session, once.
        let get = m
            .send(m.http.get(format!("{}/mcp", m.base)).bearer_auth(&ana))
            .await;
        assert_eq!(get.status, 405, "{get:?}");
        assert_eq!(get.allow.as_deref(), Some("POST, DELETE"));
        let delete = |t: String| {
            m.http
                .delete(format!("{}/mcp", m.base))
                .bearer_auth(t)
                .header("mcp-session-id", &sid)
        };
        assert_eq!(m.send(delete(bob.clone())).await.status, 404);
        assert_eq!(m.send(delete(ana.clone())).await.status, 204);
        assert_eq!(m.send(delete(ana.clone())).await.status, 404);
        let ended = m
            .post(Some(&ana), Some(&sid), &request(14, "ping", json!({})))
            .await;
        assert_eq!(ended.status, 404, "{ended:?}");

        // A second initialize is a second session, and works.
        let again = m.initialize(&ana).await;
        assert_ne!(again, sid);
    });
    let sessions = m.gw.audit("mcp.session");
    assert!(
        sessions
            .iter()
            .any(|e| e["action"] == "start" && e["sub"] == "ana"),
        "{sessions:?}"
    );
    assert!(
        sessions.iter().any(|e| e["action"] == "end"),
        "{sessions:?}"
    );
    m.gw.assert_no_secrets();
}

#[test]
fn without_the_mcp_section_there_is_no_mcp_endpoint() {
    let rt = runtime();
    let m = start("");
    rt.block_on(async {
        let a = m
            .post(Some("x"), None, &request(1, "initialize", json!({})))
            .await;
        assert_eq!(a.status, 404, "{a:?}");
        let get = m.send(m.http.get(format!("{}/mcp", m.base))).await;
        assert_eq!(get.status, 404, "{get:?}");
    });
}

#[test]
fn a_tool_call_as_large_as_its_arguments_allow_is_read_and_larger_bodies_are_refused() {
    let rt = runtime();
    let m = start(SECTIONS);
    rt.block_on(async {
        let now = time::OffsetDateTime::now_utc();
        let ana = access_token(&m.base, "ana", &["payments"], now, 900);
        let sid = m.initialize(&ana).await;
        // s3_put takes up to 256 Ki characters of content: far over the 16 KiB of the forms.
        let content = "x".repeat(200_000);
        let call = request(
            1,
            "tools/call",
            json!({"name": "s3_put", "arguments": {
                "bucket": "payments-reports", "key": "big.txt", "content": content}}),
        );
        let a = m.post(Some(&ana), Some(&sid), &call).await;
        assert_eq!(
            a.status,
            200,
            "{}",
            a.text.chars().take(300).collect::<String>()
        );
        assert_eq!(a.body["id"], 1);
        // ana holds read access: the write reaches the decision and is refused there.
        assert_eq!(a.body["result"]["isError"], true, "{:?}", a.body);
        let text = a.body["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("");
        assert!(text.contains("read access"), "{text}");

        // Past the endpoint's budget: 413, before the message is read. Sent over raw TCP that
        // stops writing once the answer comes, since the gateway may close before the body ends.
        let extra = format!(
            "Authorization: Bearer {ana}\r\nMcp-Session-Id: {sid}\r\n\
             Mcp-Protocol-Version: 2025-11-25\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\n"
        );
        let port = m.gw.port;
        let (res, _sent) = tokio::task::spawn_blocking(move || {
            crate::support::flood::post(port, "/mcp", &extra, 3 << 20, Framing::Length)
        })
        .await
        .unwrap();
        assert_eq!(res.status, 413, "{res:?}");

        // A session header of 10 KB is an unknown session.
        let long = "s".repeat(10 * 1024);
        let a = m
            .post(Some(&ana), Some(&long), &request(3, "ping", json!({})))
            .await;
        assert_eq!(a.status, 404, "{a:?}");
    });
    m.gw.assert_no_secrets();
}

#[test]
fn a_developer_holds_a_bounded_number_of_sessions_however_often_they_initialize() {
    let rt = runtime();
    let m = start(SECTIONS);
    rt.block_on(async {
        let now = time::OffsetDateTime::now_utc();
        let ana = access_token(&m.base, "ana", &["payments"], now, 900);
        let bob = access_token(&m.base, "bob", &["payments"], now, 900);
        let bobs = m.initialize(&bob).await;
        let cap = usize::from(claude_gateway::mcp::session::MAX_SESSIONS_PER_USER);
        let mut sids = Vec::new();
        for _ in 0..(cap + 8) {
            sids.push(m.initialize(&ana).await);
        }
        let mut live = 0;
        for (i, sid) in sids.iter().enumerate() {
            let a = m
                .post(Some(&ana), Some(sid), &request(1, "ping", json!({})))
                .await;
            assert!(matches!(a.status, 200 | 404), "{a:?}");
            if a.status == 200 {
                live += 1;
            }
            if i == sids.len() - 1 {
                assert_eq!(a.status, 200, "the newest session works");
            }
        }
        assert_eq!(live, cap, "at most {cap} of ana's sessions live");
        // Another developer's session is not one of ana's.
        let a = m
            .post(Some(&bob), Some(&bobs), &request(2, "ping", json!({})))
            .await;
        assert_eq!(a.status, 200, "{a:?}");
    });
}

/// The token is checked from the request's head: a caller without one gets its 401 while the
/// body it announced has not even been sent (a server that read the body first would wait for
/// it, and answer 408 when the body deadline passed).
#[test]
fn nobody_without_a_token_makes_the_gateway_read_a_body() {
    use std::io::{Read, Write};
    let m = start(SECTIONS);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", m.gw.port)).unwrap();
    s.write_all(
        b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 401", "{}", String::from_utf8_lossy(&head));
}
