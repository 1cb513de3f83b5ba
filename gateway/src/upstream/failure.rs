//! An upstream attempt that did not produce an answer, classified: what the client may see, what
//! the operator's log gets, and whether the next upstream should be tried.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// A failed upstream attempt.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Status for the client.
    pub status: StatusCode,
    /// Anthropic `error.type`.
    pub kind: &'static str,
    /// Message safe for the client (no account ids, ARNs or provider internals).
    pub message: String,
    /// The full story, for the operator's log only.
    pub detail: String,
    /// Seconds to suggest in `retry-after`.
    pub retry_after: Option<u64>,
    /// Whether the next upstream should be tried.
    pub failover: bool,
    /// An Anthropic-format error to relay verbatim (headers, body) instead of our envelope.
    pub relay: Option<(HeaderMap, Bytes)>,
}

impl Failure {
    /// A failure with a generic message.
    pub fn new(status: StatusCode, kind: &'static str, message: &str, detail: String) -> Self {
        let failover = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
        Self {
            status,
            kind,
            message: message.to_owned(),
            detail,
            retry_after: None,
            failover,
            relay: None,
        }
    }

    /// The attempt timed out before the upstream's first byte.
    pub fn ttfb_timeout(ms: u64) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "api_error",
            "upstream timed out",
            format!("no response headers within {ms} ms"),
        )
    }

    /// A whole answer took longer than it may. The upstream had the request all that time and
    /// may bill for it: the next upstream is not tried.
    pub fn response_timeout(ms: u64) -> Self {
        let mut f = Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "api_error",
            "upstream timed out",
            format!("no complete answer within {ms} ms"),
        );
        f.failover = false;
        f
    }

    /// The connection failed.
    pub fn transport(detail: String) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "api_error",
            "upstream unreachable",
            detail,
        )
    }
}

/// Whether a provider message may be shown to the client: it must not name accounts or resources.
pub fn is_safe_message(message: &str) -> bool {
    let has_arn = message.contains("arn:");
    let has_account = message
        .split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() == 12);
    !has_arn && !has_account && message.len() <= 500
}

/// Masks ARNs and 12-digit account ids, for lines the operator's log keeps.
pub fn mask(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for word in message.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        if word.starts_with("arn:") {
            let end = word.trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
            out.push_str("arn:<masked>");
            out.push_str(&word[end.len()..]);
        } else {
            out.push_str(word);
        }
    }
    let mut masked = String::with_capacity(out.len());
    let mut digits = String::new();
    for c in out.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() == 12 {
            masked.push_str("<account>");
        } else {
            masked.push_str(&digits);
        }
        digits.clear();
        if c != '\0' {
            masked.push(c);
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_and_arns_are_not_shown() {
        assert!(is_safe_message("max_tokens: must be at most 64000"));
        assert!(!is_safe_message(
            "User arn:aws:iam::123456789012:role/x is not authorized"
        ));
        assert!(!is_safe_message("account 123456789012 has no access"));
        assert_eq!(
            mask("User: arn:aws:sts::123456789012:assumed-role/r is denied on 123456789012."),
            "User: arn:<masked> is denied on <account>."
        );
    }
}
