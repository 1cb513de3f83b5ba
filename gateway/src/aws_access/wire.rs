//! The one error type of agent access, and its wire shape: `{"code", "message"}` with a status,
//! the error body AWS SDKs read from a container credentials endpoint. Every route of the
//! subsystem answers its errors through [`AwsError`]; nothing else here builds an error body.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use super::refusal::Refusal;

/// What can go wrong on an agent-access route.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The decision said no.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// No valid gateway session token.
    #[error("sign in first: run `claude-aws login`")]
    Unauthorized,
    /// The session token is older than credentials allow: refresh it and ask again.
    #[error("your sign-in is more than {minutes} minutes old: refresh it and ask again (claude-aws does this on its own)")]
    StaleSignIn {
        /// The allowed age.
        minutes: u32,
    },
    /// The gateway has no `aws_access` section.
    #[error("agent access to AWS is not configured on this gateway")]
    NotConfigured,
    /// The request itself is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing of that id is visible to the caller.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (beyond a credential refusal).
    #[error("{message}")]
    Forbidden {
        /// A stable code.
        code: &'static str,
        /// What to do about it.
        message: String,
    },
    /// The request clashes with the state of things.
    #[error("{message}")]
    Conflict {
        /// A stable code.
        code: &'static str,
        /// What to do about it.
        message: String,
    },
    /// STS refused the session policy and tags as too large once packed.
    #[error("the session policy of project {project} is too large for STS once packed ({detail}): shorten its action lists")]
    PolicyTooLarge {
        /// The project.
        project: String,
        /// STS's own words (no secret in them).
        detail: String,
    },
    /// STS failed or refused otherwise.
    #[error("AWS STS refused the credential for project {project}: {detail}")]
    Sts {
        /// The project.
        project: String,
        /// What STS said.
        detail: String,
    },
    /// The store did not answer.
    #[error("the gateway cannot reach its store; try again shortly")]
    Unavailable,
}

impl AwsError {
    /// The status and stable code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            AwsError::Refused(r) => match r {
                Refusal::NoProject { .. } => (StatusCode::NOT_FOUND, "no_project"),
                Refusal::NotMember { .. } => (StatusCode::FORBIDDEN, "not_member"),
                Refusal::NotYet { .. } => (StatusCode::FORBIDDEN, "not_yet"),
                Refusal::Ending { .. } => (StatusCode::FORBIDDEN, "access_ending"),
                Refusal::ReadOnly { .. } => (StatusCode::FORBIDDEN, "read_only"),
                Refusal::WriteNotApproved { .. } => (StatusCode::FORBIDDEN, "write_not_approved"),
                Refusal::MfaNeeded { .. } => (StatusCode::FORBIDDEN, "mfa_needed"),
            },
            AwsError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AwsError::StaleSignIn { .. } => (StatusCode::UNAUTHORIZED, "sign_in_stale"),
            AwsError::NotConfigured => (StatusCode::NOT_FOUND, "not_configured"),
            AwsError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AwsError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AwsError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            AwsError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            AwsError::PolicyTooLarge { .. } => (StatusCode::BAD_GATEWAY, "policy_too_large"),
            AwsError::Sts { .. } => (StatusCode::BAD_GATEWAY, "sts_error"),
            AwsError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let mut res = (
            status,
            Json(json!({"code": code, "message": self.to_string()})),
        )
            .into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_refusal_answers_its_code_and_sentence() {
        let res = AwsError::from(Refusal::NotMember {
            project: "payments".into(),
        })
        .into_response();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "not_member");
        assert_eq!(v["message"], "you are not a member of project payments");
    }

    #[test]
    fn every_refusal_has_its_own_code() {
        let p = || "p".to_owned();
        let t = time::OffsetDateTime::UNIX_EPOCH;
        let all = [
            Refusal::NoProject { project: p() },
            Refusal::NotMember { project: p() },
            Refusal::NotYet {
                project: p(),
                from: t,
            },
            Refusal::Ending {
                project: p(),
                ends: t,
            },
            Refusal::ReadOnly { project: p() },
            Refusal::WriteNotApproved { project: p() },
            Refusal::MfaNeeded {
                project: p(),
                minutes: 15,
            },
        ];
        let codes: std::collections::HashSet<&str> = all
            .into_iter()
            .map(|r| AwsError::from(r).status_code().1)
            .collect();
        assert_eq!(codes.len(), 7);
    }
}
