//! A call's recording: its `aws.call` audit line, written at once with everything but the body,
//! and its row in `aws_calls`, handed to the [`Recorder`](super::recorder::Recorder) so the call
//! never waits on the store nor fails because of it.

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::mask::Counts;
use super::operation::Class;
use crate::clock::rfc3339;
use crate::config::aws_access::Level;

/// The most bytes of (masked) parameters a recording keeps, as JSON; larger parameters are
/// replaced by `{"truncated": true, "bytes": n}`.
pub const MAX_PARAMS_BYTES: usize = 16 * 1024;

/// What became of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Passed the decision and went to AWS.
    Allowed,
    /// Needed approval, had it, and went to AWS.
    Approved,
    /// Refused by the project's rules (not allowed, or explicitly denied), or by an approver.
    Denied,
    /// Over a rate limit.
    Throttled,
    /// Held for approval and answered `ApprovalPending` when the wait ran out.
    Held,
    /// Refused before any decision: a bad signature or credential, a body too large to check or
    /// to mask.
    Refused,
    /// Allowed, but AWS could not be reached or the answer could not be relayed.
    Failed,
}

impl Decision {
    /// Every decision.
    pub const ALL: [Decision; 7] = [
        Decision::Allowed,
        Decision::Approved,
        Decision::Denied,
        Decision::Throttled,
        Decision::Held,
        Decision::Refused,
        Decision::Failed,
    ];

    /// The name written to the row, the audit line and the Admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Approved => "approved",
            Decision::Denied => "denied",
            Decision::Throttled => "throttled",
            Decision::Held => "held",
            Decision::Refused => "refused",
            Decision::Failed => "failed",
        }
    }

    /// The decision named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// One call through the proxy, as recorded. Parameters and body are masked by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// When the call arrived.
    pub at: OffsetDateTime,
    /// The gateway credential's key id (`AGW…`), shared by the calls of one credential.
    pub session_id: String,
    /// The developer's IdP subject.
    pub user_sub: String,
    /// Their email, when the IdP gave one.
    pub user_email: Option<String>,
    /// The project.
    pub project: String,
    /// The level of the credential.
    pub level: Level,
    /// The write grant behind it, if any.
    pub grant_id: Option<String>,
    /// The credential scope's service (`s3`, `logs`).
    pub service: String,
    /// The credential scope's region.
    pub region: String,
    /// The API operation, when it could be named.
    pub operation: Option<String>,
    /// The IAM action, when the operation could be named.
    pub action: Option<String>,
    /// Read, list or write.
    pub class: Class,
    /// The call's parameters, masked.
    pub params: Value,
    /// What became of it.
    pub decision: Decision,
    /// Why, in words (a refusal's or a denial's reason).
    pub reason: Option<String>,
    /// The call approval that let it through or held it (`cap_…`).
    pub approval_id: Option<String>,
    /// Who approved or denied it.
    pub approver: Option<String>,
    /// The status the agent got.
    pub status: Option<u16>,
    /// Bytes of the request body.
    pub request_bytes: u64,
    /// Bytes of the answer body relayed.
    pub response_bytes: u64,
    /// From arrival to the end of the answer.
    pub duration_ms: u32,
    /// Values masked in the answer, by kind.
    pub masked: Counts,
    /// The answer body, masked, cut to `recording.body_bytes`.
    pub body: Option<String>,
    /// Whether the body was cut.
    pub body_truncated: bool,
    /// The model request whose `tool_use` made the call, when matched.
    pub turn_request_id: Option<String>,
    /// That request's prompt fingerprint.
    pub prompt_fingerprint: Option<String>,
    /// The MCP tool that made the call; `None` for a call through the proxy.
    pub tool: Option<String>,
}

/// Holds a record to what a row may keep: the body cut to `body_bytes` (at a character
/// boundary), parameters to [`MAX_PARAMS_BYTES`], and no NUL character anywhere (PostgreSQL
/// text and jsonb refuse it, which would lose the whole batch).
pub(crate) fn bound(rec: &mut CallRecord, body_bytes: usize) {
    if let Some(body) = &mut rec.body {
        if body.len() > body_bytes {
            let mut cut = body_bytes;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            rec.body_truncated = true;
        }
    }
    let size = serde_json::to_vec(&rec.params).map_or(0, |v| v.len());
    if size > MAX_PARAMS_BYTES {
        rec.params = json!({"truncated": true, "bytes": size});
    }
    clean_value(&mut rec.params);
    for s in [
        &mut rec.session_id,
        &mut rec.user_sub,
        &mut rec.project,
        &mut rec.service,
        &mut rec.region,
    ] {
        clean(s);
    }
    for s in [
        &mut rec.user_email,
        &mut rec.grant_id,
        &mut rec.operation,
        &mut rec.action,
        &mut rec.reason,
        &mut rec.approval_id,
        &mut rec.approver,
        &mut rec.body,
        &mut rec.turn_request_id,
        &mut rec.prompt_fingerprint,
        &mut rec.tool,
    ]
    .into_iter()
    .flatten()
    {
        clean(s);
    }
}

fn clean(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', "\u{fffd}");
    }
}

fn clean_value(v: &mut Value) {
    match v {
        Value::String(s) => clean(s),
        Value::Array(a) => a.iter_mut().for_each(clean_value),
        Value::Object(o) => {
            if o.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(o);
                *o = old
                    .into_iter()
                    .map(|(k, v)| (k.replace('\0', "\u{fffd}"), v))
                    .collect();
            }
            o.values_mut().for_each(clean_value);
        }
        _ => {}
    }
}

/// Masked values by kind, only the kinds that had any: `{"secret": 2, "jwt": 1}`.
pub(crate) fn masked_json(c: &Counts) -> Value {
    let m: Map<String, Value> = c
        .iter()
        .map(|(k, n)| (k.as_str().to_owned(), Value::from(n)))
        .collect();
    Value::Object(m)
}

/// The fields of the `aws.call` audit line: every field of the record but the body.
pub(crate) fn event(rec: &CallRecord) -> Value {
    json!({
        "at": rfc3339(rec.at),
        "session_id": rec.session_id,
        "user": rec.user_sub,
        "email": rec.user_email,
        "project": rec.project,
        "level": rec.level.as_str(),
        "grant": rec.grant_id,
        "service": rec.service,
        "region": rec.region,
        "operation": rec.operation,
        "action": rec.action,
        "class": rec.class.as_str(),
        "params": rec.params,
        "decision": rec.decision.as_str(),
        "reason": rec.reason,
        "approval_id": rec.approval_id,
        "approver": rec.approver,
        "status": rec.status,
        "request_bytes": rec.request_bytes,
        "response_bytes": rec.response_bytes,
        "duration_ms": rec.duration_ms,
        "masked": masked_json(&rec.masked),
        "masked_total": rec.masked.total(),
        "body_bytes": rec.body.as_ref().map_or(0, String::len),
        "body_truncated": rec.body_truncated,
        "turn_request_id": rec.turn_request_id,
        "prompt_fingerprint": rec.prompt_fingerprint,
        "tool": rec.tool,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws_proxy::mask::{mask, Rules};

    /// A recorded `secretsmanager:GetSecretValue` whose answer held a secret.
    pub(crate) fn sample() -> CallRecord {
        let answer = br#"{"Name":"db","SecretString":"hunter2-the-db-password"}"#;
        let masked = mask(
            answer,
            Some("application/x-amz-json-1.1"),
            &Rules::default(),
        )
        .unwrap();
        CallRecord {
            at: OffsetDateTime::UNIX_EPOCH,
            session_id: "AGWABCDEFGHIJKLMNOPQ".into(),
            user_sub: "ana".into(),
            user_email: Some("ana@example.com".into()),
            project: "payments".into(),
            level: Level::Read,
            grant_id: None,
            service: "secretsmanager".into(),
            region: "eu-west-1".into(),
            operation: Some("GetSecretValue".into()),
            action: Some("secretsmanager:GetSecretValue".into()),
            class: Class::Read,
            params: json!({"SecretId": "db"}),
            decision: Decision::Allowed,
            reason: None,
            approval_id: None,
            approver: None,
            status: Some(200),
            request_bytes: 20,
            response_bytes: 60,
            duration_ms: 12,
            masked: masked.counts,
            body: Some(String::from_utf8_lossy(&masked.body).into_owned()),
            body_truncated: false,
            turn_request_id: None,
            prompt_fingerprint: None,
            tool: None,
        }
    }

    #[test]
    fn the_audit_line_has_every_field_but_the_body() {
        let rec = sample();
        let body = rec.body.clone().unwrap();
        assert!(body.contains("[MASKED:"), "{body}");
        let e = event(&rec);
        let line = e.to_string();
        assert!(e.get("body").is_none(), "{line}");
        assert!(
            !line.contains(&body) && !line.contains("\"Name\":\"db\""),
            "{line}"
        );
        assert!(!line.contains("hunter2"), "{line}");
        assert_eq!(e["masked"], json!({"secret": 1}));
        assert_eq!(e["masked_total"], 1);
        assert_eq!(e["decision"], "allowed");
        assert_eq!(e["class"], "read");
        assert_eq!(e["body_bytes"], body.len());
        assert_eq!(e["params"], json!({"SecretId": "db"}));
    }

    #[test]
    fn decisions_round_trip_their_names() {
        for d in Decision::ALL {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
        }
        assert_eq!(Decision::parse("ok"), None);
    }

    #[test]
    fn a_record_is_bounded_and_cleaned() {
        let mut rec = sample();
        rec.body = Some("ééé\0".into());
        rec.params = json!({"k\0": ["a\0b", {"x": "\0"}]});
        rec.reason = Some("r\0".into());
        bound(&mut rec, 3);
        assert_eq!(rec.body.as_deref(), Some("é"));
        assert!(rec.body_truncated);
        assert_eq!(
            rec.params,
            json!({"k\u{fffd}": ["a\u{fffd}b", {"x": "\u{fffd}"}]})
        );
        assert_eq!(rec.reason.as_deref(), Some("r\u{fffd}"));

        let mut big = sample();
        big.params = json!({"Items": "x".repeat(MAX_PARAMS_BYTES)});
        bound(&mut big, 1 << 20);
        assert_eq!(big.params["truncated"], true);
        assert!(!big.body_truncated);
    }
}
