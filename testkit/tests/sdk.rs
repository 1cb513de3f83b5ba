//! The double, driven by the real AWS SDK for Rust: if the SDK accepts every answer and maps
//! every failure as it would Bedrock's, the double is faithful where the gateway looks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Region, Token};
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::operation::invoke_model_with_response_stream::InvokeModelWithResponseStreamOutput;
use aws_sdk_bedrockruntime::operation::RequestId;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use aws_sdk_bedrockruntime::types::{CountTokensInput, InvokeModelTokensRequest, ResponseStream};
use aws_sdk_bedrockruntime::Client;
use aws_smithy_runtime_api::client::auth::http::HTTP_BEARER_AUTH_SCHEME_ID;
use aws_smithy_types::event_stream::RawMessage;
use serde_json::{json, Value};
use testkit::{message_from_events, Behavior, FakeBedrock, Operation, Options, Reply};

/// A variant test such as `InvokeModelError::is_throttling_exception`.
type IsVariant<E> = fn(&E) -> bool;

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc";

fn config(fake: &FakeBedrock) -> aws_sdk_bedrockruntime::config::Builder {
    aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(fake.url())
        .retry_config(RetryConfig::disabled())
}

fn client_with(fake: &FakeBedrock, creds: Credentials) -> Client {
    Client::from_conf(config(fake).credentials_provider(creds).build())
}

fn client(fake: &FakeBedrock) -> Client {
    let o = Options::default();
    client_with(
        fake,
        Credentials::new(o.access_key_id, o.secret_access_key, None, None, "test"),
    )
}

fn body() -> Value {
    json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1024,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
    })
}

fn blob(v: &Value) -> Blob {
    Blob::new(serde_json::to_vec(v).unwrap())
}

async fn start() -> FakeBedrock {
    FakeBedrock::start(Options::default()).await.unwrap()
}

async fn invoke(c: &Client, model: &str, b: &Value) -> Result<Value, SdkError<InvokeModelError>> {
    let out = c
        .invoke_model()
        .model_id(model)
        .content_type("application/json")
        .accept("application/json")
        .body(blob(b))
        .send()
        .await
        .map_err(|e| e.map_service_error(|s| s))?;
    assert_eq!(out.content_type(), "application/json");
    Ok(serde_json::from_slice(out.body().as_ref()).unwrap())
}

async fn stream(c: &Client, model: &str) -> InvokeModelWithResponseStreamOutput {
    c.invoke_model_with_response_stream()
        .model_id(model)
        .content_type("application/json")
        .accept("application/json")
        .body(blob(&body()))
        .send()
        .await
        .unwrap()
}

/// Receives events until the stream ends or fails: the decoded Anthropic events, and the
/// failure if any.
async fn drain(
    out: &mut InvokeModelWithResponseStreamOutput,
) -> (
    Vec<Value>,
    Option<SdkError<ResponseStreamError, RawMessage>>,
) {
    let mut events = Vec::new();
    loop {
        match out.body.recv().await {
            Ok(Some(ResponseStream::Chunk(part))) => {
                let bytes = part.bytes().expect("chunk bytes");
                events.push(serde_json::from_slice(bytes.as_ref()).unwrap());
            }
            Ok(Some(other)) => panic!("unexpected stream member {other:?}"),
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e)),
        }
    }
}

#[tokio::test]
async fn invoke_returns_the_assembled_message() {
    let fake = start().await;
    let reply = Reply::multi_block("claude-sonnet-4-5-20250929");
    fake.push(Behavior::Reply(reply.clone()));
    let c = client(&fake);
    let out = c
        .invoke_model()
        .model_id(MODEL)
        .content_type("application/json")
        .accept("application/json")
        .body(blob(&body()))
        .send()
        .await
        .unwrap();
    let msg: Value = serde_json::from_slice(out.body().as_ref()).unwrap();
    assert_eq!(msg, message_from_events(&reply.events));
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert!(msg["id"].as_str().unwrap().starts_with("msg_bdrk_"));
    assert_eq!(msg["stop_reason"], "tool_use");
    assert_eq!(msg["stop_sequence"], Value::Null);
    assert_eq!(msg["content"][2]["input"], json!({"command": "ls -la"}));
    assert_eq!(msg["usage"]["cache_read_input_tokens"], 1000);

    let r = &fake.requests()[0];
    assert_eq!(r.operation, Operation::Invoke);
    assert_eq!(r.method, "POST");
    assert!(r.signature_valid);
    assert_eq!(r.model_id, MODEL);
    assert_eq!(
        r.path,
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    );
    assert_eq!(r.body, body());
    assert!(r
        .header("authorization")
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256 "));
    assert!(r.header("x-amz-date").is_some());
}

#[tokio::test]
async fn invoke_answers_with_bedrock_headers() {
    // The SDK keeps no response headers beyond content type; read them with a raw request the
    // double accepts unsigned.
    let fake = FakeBedrock::start(Options {
        accept_unsigned: true,
        ..Options::default()
    })
    .await
    .unwrap();
    fake.push(Behavior::Reply(Reply::multi_block("m")));
    let (head, body) = raw_post(
        &fake,
        "/model/m/invoke",
        &serde_json::to_vec(&body()).unwrap(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    for h in [
        "content-type: application/json",
        "x-amzn-requestid: ",
        "x-amzn-bedrock-input-token-count: 120",
        "x-amzn-bedrock-output-token-count: 87",
        "x-amzn-bedrock-invocation-latency: ",
        "x-amzn-bedrock-cache-read-input-token-count: 1000",
        "x-amzn-bedrock-cache-write-input-token-count: 50",
    ] {
        assert!(lower.contains(h), "missing {h} in {head}");
    }
    let msg: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(msg["usage"]["output_tokens"], 87);
    assert!(!fake.requests()[0].signature_valid);
}

/// A minimal HTTP/1.1 POST over loopback: the response head, and the body (de-chunked).
async fn raw_post(fake: &FakeBedrock, path: &str, body: &[u8]) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = fake.url().trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(all[..split].to_vec()).unwrap();
    let mut rest = all[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let line_end = at + rest[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[at..line_end]).unwrap(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            at = line_end + 2 + size + 2;
        }
        rest = out;
    }
    (head, rest)
}

#[tokio::test]
async fn stream_yields_exactly_the_scripted_events() {
    let fake = start().await;
    let c = client(&fake);
    for reply in [
        Reply::multi_block("claude-sonnet-4-5-20250929"),
        Reply::text(
            "claude-sonnet-4-5-20250929",
            "The quick brown fox jumps.",
            9,
            6,
        ),
        Reply::builder("m")
            .usage(3, 4)
            .text("ünïcödé and \"quotes\"\nand newlines")
            .tool_use(
                "toolu_7",
                "Edit",
                &json!({"path": "/a b/c", "old": "x", "new": "y"}),
            )
            .build(),
    ] {
        fake.push(Behavior::Reply(reply.clone()));
        let mut out = stream(&c, MODEL).await;
        assert_eq!(out.content_type(), "application/json");
        let (events, err) = drain(&mut out).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(events, reply.events);
    }
    let r = fake.requests();
    assert_eq!(r.len(), 3);
    assert!(r
        .iter()
        .all(|r| r.signature_valid && r.operation == Operation::InvokeStream));
    assert_eq!(fake.open_streams(), 0);
}

#[tokio::test]
async fn stream_final_event_carries_invocation_metrics() {
    let fake = start().await;
    let c = client(&fake);
    // A script without metrics gets them from the double.
    let mut reply = Reply::text("m", "a b c", 11, 3);
    reply
        .events
        .last_mut()
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("amazon-bedrock-invocationMetrics");
    fake.push(Behavior::Reply(reply));
    let (events, _) = drain(&mut stream(&c, MODEL).await).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "message_stop");
    let m = &last["amazon-bedrock-invocationMetrics"];
    assert_eq!(m["inputTokenCount"], 11);
    assert_eq!(m["outputTokenCount"], 3);
    assert!(m["invocationLatency"].is_u64() && m["firstByteLatency"].is_u64());
}

#[tokio::test]
async fn stream_is_paced_and_not_buffered() {
    let fake = start().await;
    let c = client(&fake);
    let reply = Reply::text("m", "one two three", 1, 1)
        .with_delays(Duration::from_millis(150), Duration::from_millis(60));
    let n = reply.events.len();
    fake.push(Behavior::Reply(reply));
    let t0 = Instant::now();
    let mut out = stream(&c, MODEL).await;
    let first = out.body.recv().await.unwrap().unwrap();
    let first_at = t0.elapsed();
    assert!(matches!(first, ResponseStream::Chunk(_)));
    let (rest, err) = drain(&mut out).await;
    let total = t0.elapsed();
    assert!(err.is_none());
    assert_eq!(rest.len() + 1, n);
    assert!(first_at >= Duration::from_millis(150), "{first_at:?}");
    // The first event arrives long before the last one is written.
    let all_written = Duration::from_millis(150 + 60 * (n as u64 - 1));
    assert!(
        first_at < all_written - Duration::from_millis(200),
        "{first_at:?}"
    );
    assert!(total >= all_written, "{total:?}");
}

#[tokio::test]
async fn invoke_waits_for_the_whole_answer_unless_told_not_to() {
    let paced = Reply::text("m", "one two three", 1, 1)
        .with_delays(Duration::from_millis(100), Duration::from_millis(60));
    let generation = Duration::from_millis(100 + 60 * (paced.events.len() as u64 - 1));
    let fake = start().await;
    fake.push(Behavior::Reply(paced.clone()));
    let t0 = Instant::now();
    invoke(&client(&fake), MODEL, &body()).await.unwrap();
    assert!(t0.elapsed() >= generation, "{:?}", t0.elapsed());

    let fake = FakeBedrock::start(Options {
        pace_invoke: false,
        ..Options::default()
    })
    .await
    .unwrap();
    fake.push(Behavior::Reply(paced));
    let t0 = Instant::now();
    let msg = invoke(&client(&fake), MODEL, &body()).await.unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < generation - Duration::from_millis(200), "{took:?}");
    assert_eq!(msg["content"][0]["text"], "one two three");
}

#[tokio::test]
async fn count_tokens_works() {
    let fake = start().await;
    let c = client(&fake);
    let b = body();
    let out = c
        .count_tokens()
        .model_id(MODEL)
        .input(CountTokensInput::InvokeModel(
            InvokeModelTokensRequest::builder()
                .body(blob(&b))
                .build()
                .unwrap(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.input_tokens() as u64,
        testkit::estimate_input_tokens(&b)
    );
    assert!(out.input_tokens() > 0);
    let r = &fake.requests()[0];
    assert_eq!(r.operation, Operation::CountTokens);
    assert!(r.signature_valid);
    assert_eq!(r.body, b, "the decoded inner InvokeModel body is recorded");
    assert_eq!(
        r.path,
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens"
    );

    // The inner body is validated like InvokeModel's.
    let mut bad = body();
    bad["model"] = "claude".into();
    let err = c
        .count_tokens()
        .model_id(MODEL)
        .input(CountTokensInput::InvokeModel(
            InvokeModelTokensRequest::builder()
                .body(blob(&bad))
                .build()
                .unwrap(),
        ))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
}

#[tokio::test]
async fn errors_map_to_their_sdk_variants() {
    let fake = start().await;
    let c = client(&fake);
    let cases: [(u16, &str, IsVariant<InvokeModelError>); 8] = [
        (
            429,
            "ThrottlingException",
            InvokeModelError::is_throttling_exception,
        ),
        (
            400,
            "ValidationException",
            InvokeModelError::is_validation_exception,
        ),
        (
            403,
            "AccessDeniedException",
            InvokeModelError::is_access_denied_exception,
        ),
        (
            404,
            "ResourceNotFoundException",
            InvokeModelError::is_resource_not_found_exception,
        ),
        (
            500,
            "InternalServerException",
            InvokeModelError::is_internal_server_exception,
        ),
        (
            503,
            "ServiceUnavailableException",
            InvokeModelError::is_service_unavailable_exception,
        ),
        (
            424,
            "ModelErrorException",
            InvokeModelError::is_model_error_exception,
        ),
        (
            408,
            "ModelTimeoutException",
            InvokeModelError::is_model_timeout_exception,
        ),
    ];
    for (status, kind, is_variant) in cases {
        let message = format!("scripted {kind}");
        fake.push(Behavior::error(status, kind, &message));
        let err = invoke(&c, MODEL, &body()).await.unwrap_err();
        assert_eq!(err.raw_response().unwrap().status().as_u16(), status);
        let service = err.into_service_error();
        assert!(is_variant(&service), "{kind}: {service:?}");
        assert_eq!(service.code(), Some(kind));
        assert_eq!(service.message(), Some(message.as_str()));
        assert!(service.meta().request_id().is_some(), "{kind}: request id");
    }
    // Bedrock's answer to an over-long prompt.
    fake.push(Behavior::error(
        400,
        "ValidationException",
        "Input is too long for requested model.",
    ));
    let service = invoke(&c, MODEL, &body())
        .await
        .unwrap_err()
        .into_service_error();
    assert!(service.is_validation_exception());
    assert_eq!(
        service.message(),
        Some("Input is too long for requested model.")
    );

    // Errors before a stream starts are plain HTTP errors too.
    fake.push(Behavior::error(
        429,
        "ThrottlingException",
        "Too many requests",
    ));
    let err = c
        .invoke_model_with_response_stream()
        .model_id(MODEL)
        .body(blob(&body()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");
}

#[tokio::test]
async fn bodies_bedrock_refuses_are_refused() {
    let fake = start().await;
    let c = client(&fake);
    let mut with_model = body();
    with_model["model"] = "claude-sonnet-4-5".into();
    let mut without_version = body();
    without_version
        .as_object_mut()
        .unwrap()
        .remove("anthropic_version");
    for (b, needle) in [
        (with_model, "extraneous key [model]"),
        (without_version, "required key [anthropic_version]"),
    ] {
        let err = invoke(&c, MODEL, &b)
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_validation_exception(), "{err:?}");
        assert!(err.message().unwrap().contains(needle), "{err:?}");
    }
    // A refused body does not use up a queued behaviour.
    fake.push(Behavior::error(429, "ThrottlingException", "slow down"));
    let mut bad = body();
    bad["model"] = "x".into();
    assert!(invoke(&c, MODEL, &bad)
        .await
        .unwrap_err()
        .into_service_error()
        .is_validation_exception());
    assert!(invoke(&c, MODEL, &body())
        .await
        .unwrap_err()
        .into_service_error()
        .is_throttling_exception());
}

#[tokio::test]
async fn exceptions_mid_stream_surface_as_their_variants() {
    let fake = start().await;
    let c = client(&fake);
    let cases: [(&str, IsVariant<ResponseStreamError>); 6] = [
        (
            "modelStreamErrorException",
            ResponseStreamError::is_model_stream_error_exception,
        ),
        (
            "throttlingException",
            ResponseStreamError::is_throttling_exception,
        ),
        (
            "internalServerException",
            ResponseStreamError::is_internal_server_exception,
        ),
        (
            "validationException",
            ResponseStreamError::is_validation_exception,
        ),
        (
            "serviceUnavailableException",
            ResponseStreamError::is_service_unavailable_exception,
        ),
        (
            "modelTimeoutException",
            ResponseStreamError::is_model_timeout_exception,
        ),
    ];
    let default_events = match Options::default().default_behavior {
        Behavior::Reply(r) => r.events,
        _ => unreachable!(),
    };
    for (kind, is_variant) in cases {
        fake.push(Behavior::exception_after(
            3,
            kind,
            &format!("{kind} mid-stream"),
        ));
        let mut out = stream(&c, MODEL).await;
        let (events, err) = drain(&mut out).await;
        assert_eq!(events, default_events[..3].to_vec(), "{kind}");
        let err = err.expect("an exception").into_service_error();
        assert!(is_variant(&err), "{kind}: {err:?}");
        assert_eq!(err.message(), Some(format!("{kind} mid-stream").as_str()));
        // The response ended after the exception.
        assert!(matches!(out.body.recv().await, Ok(None) | Err(_)));
    }
    // Where a stream would carry the exception, InvokeModel gets the matching HTTP error.
    fake.push(Behavior::exception_after(0, "throttlingException", "later"));
    assert!(invoke(&c, MODEL, &body())
        .await
        .unwrap_err()
        .into_service_error()
        .is_throttling_exception());
    assert_eq!(fake.open_streams(), 0);
}

#[tokio::test]
async fn wrong_secret_is_an_invalid_signature() {
    let fake = start().await;
    let c = client_with(
        &fake,
        Credentials::new("AKIDFAKEBEDROCK", "not-the-secret", None, None, "test"),
    );
    let err = invoke(&c, MODEL, &body()).await.unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 403);
    let service = err.into_service_error();
    assert_eq!(service.code(), Some("InvalidSignatureException"));
    assert!(service
        .message()
        .unwrap()
        .contains("signature we calculated does not match"));
    let r = &fake.requests()[0];
    assert!(!r.signature_valid);

    // An unknown key id is an unrecognized client.
    let c = client_with(
        &fake,
        Credentials::new(
            "AKIDSOMEONEELSE",
            "fake-bedrock-secret-key",
            None,
            None,
            "test",
        ),
    );
    let service = invoke(&c, MODEL, &body())
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(service.code(), Some("UnrecognizedClientException"));

    // A client signing for another region is refused.
    let o = Options::default();
    let c = Client::from_conf(
        config(&fake)
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new(
                o.access_key_id,
                o.secret_access_key,
                None,
                None,
                "test",
            ))
            .build(),
    );
    let service = invoke(&c, MODEL, &body())
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(service.code(), Some("InvalidSignatureException"));
    assert!(service.message().unwrap().contains("region"), "{service:?}");
    assert!(fake.requests().iter().all(|r| !r.signature_valid));
}

#[tokio::test]
async fn session_tokens_are_signed_and_accepted() {
    let fake = start().await;
    let o = Options::default();
    let c = client_with(
        &fake,
        Credentials::new(
            o.access_key_id,
            o.secret_access_key,
            Some("FwoGZXIvYXdzEXAMPLE//session+token=".into()),
            None,
            "test",
        ),
    );
    invoke(&c, MODEL, &body()).await.unwrap();
    let r = &fake.requests()[0];
    assert!(r.signature_valid);
    assert_eq!(
        r.header("x-amz-security-token"),
        Some("FwoGZXIvYXdzEXAMPLE//session+token=")
    );
}

#[tokio::test]
async fn bearer_tokens_are_accepted_when_configured() {
    let token = "ABSKZmFrZS1iZWRyb2NrLWFwaS1rZXk=";
    let fake = FakeBedrock::start(Options {
        bearer_token: Some(token.into()),
        ..Options::default()
    })
    .await
    .unwrap();
    let bearer_client = |t: &str| {
        Client::from_conf(
            config(&fake)
                .bearer_token(Token::new(t, None))
                .auth_scheme_preference([HTTP_BEARER_AUTH_SCHEME_ID])
                .build(),
        )
    };
    invoke(&bearer_client(token), MODEL, &body()).await.unwrap();
    let r = &fake.requests()[0];
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(r.signature_valid);

    let err = invoke(&bearer_client("ABSKd3Jvbmc="), MODEL, &body())
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 403);
    assert!(!fake.requests()[1].signature_valid);
    // Signatures still work beside the API key.
    invoke(&client(&fake), MODEL, &body()).await.unwrap();
    assert!(fake.requests()[2].signature_valid);
}

#[tokio::test]
async fn model_ids_with_colons_and_slashes_round_trip() {
    let fake = start().await;
    let c = client(&fake);
    for model in [MODEL, ARN, "anthropic.claude-3-5-haiku-20241022-v1:0"] {
        invoke(&c, model, &body()).await.unwrap();
        let (events, err) = drain(&mut stream(&c, model).await).await;
        assert!(err.is_none() && !events.is_empty());
    }
    let r = fake.requests();
    assert_eq!(r.len(), 6);
    assert!(r.iter().all(|r| r.signature_valid), "{r:?}");
    assert_eq!(r[2].model_id, ARN);
    assert_eq!(
        r[2].path,
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc/invoke"
    );
    assert_eq!(r[3].operation, Operation::InvokeStream);
    assert_eq!(r[3].model_id, ARN);
}

#[tokio::test]
async fn stall_delays_the_answer() {
    let fake = start().await;
    let c = client(&fake);
    fake.push(Behavior::StallBeforeHeaders(Duration::from_millis(400)));
    let t0 = Instant::now();
    let msg = invoke(&c, MODEL, &body()).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(400));
    assert_eq!(msg["content"][0]["text"], testkit::DEFAULT_TEXT);

    // A client that gives up first sees a timeout.
    fake.push(Behavior::StallBeforeHeaders(Duration::from_secs(3)));
    let impatient = Client::from_conf(
        config(&fake)
            .credentials_provider(Credentials::new(
                "AKIDFAKEBEDROCK",
                "fake-bedrock-secret-key",
                None,
                None,
                "test",
            ))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_millis(200))
                    .build(),
            )
            .build(),
    );
    let t0 = Instant::now();
    let err = impatient
        .invoke_model_with_response_stream()
        .model_id(MODEL)
        .body(blob(&body()))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn break_drops_the_connection_mid_stream() {
    let fake = start().await;
    let c = client(&fake);
    fake.push(Behavior::BreakAfterEvents(2));
    let mut out = stream(&c, MODEL).await;
    let (events, err) = drain(&mut out).await;
    assert_eq!(events.len(), 2);
    let err = err.expect("the stream fails rather than ending");
    assert!(
        // The SDK reads a connection closed inside a chunked body as a transport failure.
        matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "{err:?}"
    );
    // InvokeModel's body is cut short too.
    fake.push(Behavior::BreakAfterEvents(2));
    let err = invoke(&c, MODEL, &body()).await.unwrap_err();
    assert!(!matches!(err, SdkError::ServiceError(_)), "{err:?}");
    // The double goes on serving.
    invoke(&c, MODEL, &body()).await.unwrap();
    assert_eq!(fake.open_streams(), 0);
}

#[tokio::test]
async fn dropping_the_receiver_releases_the_stream() {
    let fake = start().await;
    let c = client(&fake);
    let text: String = (0..200).map(|i| format!("w{i} ")).collect();
    fake.push(Behavior::Reply(
        Reply::text("m", &text, 1, 200).with_delays(Duration::ZERO, Duration::from_millis(20)),
    ));
    let mut out = stream(&c, MODEL).await;
    for _ in 0..3 {
        out.body.recv().await.unwrap().unwrap();
    }
    assert_eq!(fake.open_streams(), 1);
    drop(out);
    let t0 = Instant::now();
    while fake.open_streams() != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the stream stayed open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn concurrent_streams_are_counted() {
    let fake = start().await;
    let c = client(&fake);
    let reply = Reply::text("m", "a b c d e f", 1, 6)
        .with_delays(Duration::ZERO, Duration::from_millis(100));
    fake.push(Behavior::Reply(reply.clone()));
    fake.push(Behavior::Reply(reply.clone()));
    let mut a = stream(&c, MODEL).await;
    let mut b = stream(&c, MODEL).await;
    a.body.recv().await.unwrap();
    b.body.recv().await.unwrap();
    assert_eq!(fake.open_streams(), 2);
    let ((ea, _), (eb, _)) = tokio::join!(drain(&mut a), drain(&mut b));
    assert_eq!(ea.len() + 1, reply.events.len());
    assert_eq!(eb.len() + 1, reply.events.len());
    let t0 = Instant::now();
    while fake.open_streams() != 0 {
        assert!(t0.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn unknown_operations_are_refused() {
    let fake = start().await;
    let c = client(&fake);
    let err = c.converse().model_id(MODEL).send().await.unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 404);
    assert_eq!(
        err.into_service_error().code(),
        Some("UnknownOperationException")
    );
    let r = &fake.requests()[0];
    assert_eq!(r.operation, Operation::Unknown);
    assert!(r.signature_valid);
}

/// Replaces the request body after the SDK has signed it.
#[derive(Debug)]
struct TamperAfterSigning;

impl aws_sdk_bedrockruntime::config::Intercept for TamperAfterSigning {
    fn name(&self) -> &'static str {
        "TamperAfterSigning"
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _rc: &aws_sdk_bedrockruntime::config::RuntimeComponents,
        _cfg: &mut aws_sdk_bedrockruntime::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let mut b = body();
        b["max_tokens"] = 1025.into();
        let bytes = serde_json::to_vec(&b).unwrap();
        assert_eq!(bytes.len(), serde_json::to_vec(&body()).unwrap().len());
        *ctx.request_mut().body_mut() = aws_smithy_types::body::SdkBody::from(bytes);
        Ok(())
    }
}

#[tokio::test]
async fn a_body_changed_after_signing_is_refused() {
    let fake = start().await;
    let o = Options::default();
    let c = Client::from_conf(
        config(&fake)
            .credentials_provider(Credentials::new(
                o.access_key_id,
                o.secret_access_key,
                None,
                None,
                "test",
            ))
            .interceptor(TamperAfterSigning)
            .build(),
    );
    let service = invoke(&c, MODEL, &body())
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(service.code(), Some("InvalidSignatureException"));
    let r = &fake.requests()[0];
    assert!(!r.signature_valid);
    assert_eq!(r.body["max_tokens"], 1025);
}
