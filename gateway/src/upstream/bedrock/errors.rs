//! Bedrock errors in the Anthropic error vocabulary. Bedrock's messages can name accounts, roles
//! and resources: the client gets a generic sentence unless the message is known to be safe and
//! useful (the "input is too long" family that Claude Code's auto-compact keys on).

use http::StatusCode;

use crate::upstream::failure::{is_safe_message, mask, Failure};

/// The exact sentence Claude Code's recovery matches for an over-long prompt on Bedrock.
pub const INPUT_TOO_LONG: &str = "Input is too long.";

/// Classifies an error answer of the runtime's HTTP API: the code from `x-amzn-ErrorType` (or
/// the body's `__type`, or the status), the message from the body's `message`.
pub fn from_response(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> Failure {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |k: &str| json.get(k).and_then(serde_json::Value::as_str);
    let code = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).trim().to_owned())
        .or_else(|| text("__type").map(|t| t.rsplit('#').next().unwrap_or(t).to_owned()))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| code_of_status(status).to_owned());
    let message = text("message")
        .or_else(|| text("Message"))
        .unwrap_or_default();
    classify(&code, message)
}

/// The error code Bedrock uses with `status`, for an answer that names none.
fn code_of_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "ValidationException",
        401 | 403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// An error and its sources, on one line.
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        s.push_str(": ");
        s.push_str(&e.to_string());
        source = e.source();
    }
    s
}

/// Maps a Bedrock error code and message (pure, for tests).
pub fn classify(code: &str, message: &str) -> Failure {
    let detail = format!("Bedrock {code}: {}", mask(message));
    let too_long = {
        let m = message.trim().to_ascii_lowercase();
        m.starts_with("input is too long") || m.contains("prompt is too long")
    };
    let (status, kind, client): (StatusCode, &'static str, String) = match code {
        "ValidationException" if too_long => {
            let msg = if message.contains("prompt is too long") && is_safe_message(message) {
                message.to_owned()
            } else {
                INPUT_TOO_LONG.to_owned()
            };
            (StatusCode::BAD_REQUEST, "invalid_request_error", msg)
        }
        "ValidationException" => {
            let msg = if is_safe_message(message) && !message.is_empty() {
                message.to_owned()
            } else {
                "upstream rejected the request".to_owned()
            };
            (StatusCode::BAD_REQUEST, "invalid_request_error", msg)
        }
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException" => (
            StatusCode::FORBIDDEN,
            "permission_error",
            "upstream denied access".into(),
        ),
        "ResourceNotFoundException" => (
            StatusCode::NOT_FOUND,
            "not_found_error",
            "upstream resource not found".into(),
        ),
        "ThrottlingException" | "ServiceQuotaExceededException" | "ModelNotReadyException" => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "upstream rate limit exceeded".into(),
        ),
        "ServiceUnavailableException" => (
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "upstream overloaded".into(),
        ),
        "ModelTimeoutException" => (
            StatusCode::GATEWAY_TIMEOUT,
            "api_error",
            "upstream timed out".into(),
        ),
        "ModelErrorException" => (
            StatusCode::BAD_GATEWAY,
            "api_error",
            "upstream model error".into(),
        ),
        "InternalServerException" => (
            StatusCode::BAD_GATEWAY,
            "api_error",
            "upstream error".into(),
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "api_error",
            "upstream error".into(),
        ),
    };
    let mut f = Failure::new(status, kind, &client, detail);
    if status == StatusCode::TOO_MANY_REQUESTS {
        f.retry_after = Some(5);
    }
    f
}

/// The in-band error for an exception inside a stream: (`error.type`, client message, log line).
pub fn stream_exception(code: &str, message: &str) -> (&'static str, String, String) {
    let detail = format!("Bedrock stream {code}: {}", mask(message));
    let (kind, text) = match code
        .trim_end_matches("Exception")
        .to_ascii_lowercase()
        .as_str()
    {
        "throttling" | "servicequotaexceeded" => {
            ("rate_limit_error", "upstream rate limit exceeded")
        }
        "serviceunavailable" => ("overloaded_error", "Overloaded"),
        "validation" => ("invalid_request_error", "upstream rejected the request"),
        "modeltimeout" => ("api_error", "upstream timed out"),
        _ => ("api_error", "upstream stream error"),
    };
    (kind, text.to_owned(), detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_types() {
        let cases = [
            (
                "ValidationException",
                "max_tokens must be positive",
                400,
                "invalid_request_error",
                "max_tokens must be positive",
                false,
            ),
            (
                "ValidationException",
                "Input is too long for requested model.",
                400,
                "invalid_request_error",
                INPUT_TOO_LONG,
                false,
            ),
            (
                "AccessDeniedException",
                "User arn:aws:iam::123456789012:user/x is not authorized",
                403,
                "permission_error",
                "upstream denied access",
                false,
            ),
            (
                "ResourceNotFoundException",
                "Model not found",
                404,
                "not_found_error",
                "upstream resource not found",
                false,
            ),
            (
                "ThrottlingException",
                "Too many requests",
                429,
                "rate_limit_error",
                "upstream rate limit exceeded",
                true,
            ),
            (
                "ServiceUnavailableException",
                "busy",
                529,
                "overloaded_error",
                "upstream overloaded",
                true,
            ),
            (
                "InternalServerException",
                "boom",
                502,
                "api_error",
                "upstream error",
                true,
            ),
            (
                "ModelTimeoutException",
                "slow",
                504,
                "api_error",
                "upstream timed out",
                true,
            ),
        ];
        for (code, msg, status, kind, client, failover) in cases {
            let f = classify(code, msg);
            assert_eq!(
                (f.status.as_u16(), f.kind, f.message.as_str(), f.failover),
                (status, kind, client, failover),
                "{code}"
            );
            assert!(!f.detail.contains("123456789012"));
        }
        assert_eq!(classify("ThrottlingException", "x").retry_after, Some(5));
    }

    #[test]
    fn validation_messages_naming_resources_are_replaced() {
        let f = classify(
            "ValidationException",
            "The provided model identifier arn:aws:bedrock:us-east-1:123456789012:x is invalid.",
        );
        assert_eq!(f.message, "upstream rejected the request");
    }

    #[test]
    fn an_error_answer_is_read_from_its_header_body_or_status() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            http::HeaderValue::from_static(
                "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ),
        );
        let f = from_response(StatusCode::TOO_MANY_REQUESTS, &h, br#"{"message":"slow"}"#);
        assert_eq!((f.status.as_u16(), f.kind), (429, "rate_limit_error"));
        // No header: the body's __type.
        let f = from_response(
            StatusCode::BAD_REQUEST,
            &http::HeaderMap::new(),
            br#"{"__type":"com.amazon#ValidationException","Message":"Input is too long for requested model."}"#,
        );
        assert_eq!(f.message, INPUT_TOO_LONG);
        // Neither, nor a JSON body: the status.
        let f = from_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &http::HeaderMap::new(),
            b"<html>",
        );
        assert_eq!((f.status.as_u16(), f.kind), (529, "overloaded_error"));
        let f = from_response(StatusCode::FORBIDDEN, &http::HeaderMap::new(), b"");
        assert_eq!(f.kind, "permission_error");
    }
}
