//! `claude-aws credentials`: the gateway's short-lived AWS credentials for a project, printed in
//! the shape the AWS CLI and SDKs read from a `credential_process` (and nowhere else).

use serde::Serialize;
use serde_json::Value;

use crate::api;
use crate::cli::ProjectLevel;
use crate::error::Error;
use crate::session::Signed;

/// The `credential_process` output, version 1. Field order as AWS documents it.
#[derive(Serialize, PartialEq, Eq)]
pub struct ProcessCredentials {
    /// Always 1.
    #[serde(rename = "Version")]
    pub version: u8,
    /// `ASIA…` (STS), or `AGW…` (gateway-only).
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    /// The secret key.
    #[serde(rename = "SecretAccessKey")]
    pub secret_access_key: String,
    /// The STS session token, or the gateway's sealed session.
    #[serde(rename = "SessionToken")]
    pub session_token: String,
    /// RFC 3339, UTC.
    #[serde(rename = "Expiration")]
    pub expiration: String,
}

impl std::fmt::Debug for ProcessCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl ProcessCredentials {
    /// From the gateway's container-credentials answer (`AccessKeyId`, `SecretAccessKey`,
    /// `Token`, `Expiration`), every field checked.
    pub fn from_gateway(v: &Value) -> Result<ProcessCredentials, Error> {
        let field = |key: &str| {
            v[key]
                .as_str()
                .filter(|s| !s.is_empty() && s.len() <= 8192 && !s.chars().any(char::is_control))
                .map(str::to_owned)
                .ok_or_else(|| {
                    Error::Failed(format!("the gateway's credentials have no valid {key}"))
                })
        };
        let token = field("Token").or_else(|_| field("SessionToken"))?;
        let expiration = field("Expiration")?;
        let at = time::OffsetDateTime::parse(
            &expiration,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| Error::Failed("the gateway's credentials have no valid Expiration".into()))?;
        let expiration = at
            .to_offset(time::UtcOffset::UTC)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|_| {
                Error::Failed("the gateway's credentials have no valid Expiration".into())
            })?;
        Ok(ProcessCredentials {
            version: 1,
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: token,
            expiration,
        })
    }

    /// The JSON line `credential_process` prints.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(|e| Error::Failed(format!("could not encode: {e}")))
    }
}

/// Fetches the credentials for `target` (its project, level and route).
pub async fn fetch(s: &Signed, target: &ProjectLevel) -> Result<ProcessCredentials, Error> {
    ProcessCredentials::from_gateway(&api::credentials(s, target).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_output_is_exactly_the_credential_process_shape() {
        let gw = json!({"AccessKeyId": "ASIAX", "SecretAccessKey": "sk", "Token": "st",
                        "Expiration": "2026-12-06T11:00:00Z", "Extra": 1});
        let c = ProcessCredentials::from_gateway(&gw).unwrap();
        assert_eq!(
            c.to_json().unwrap(),
            r#"{"Version":1,"AccessKeyId":"ASIAX","SecretAccessKey":"sk","SessionToken":"st","Expiration":"2026-12-06T11:00:00Z"}"#
        );
        // An offset is normalized to UTC.
        let mut other = gw.clone();
        other["Expiration"] = json!("2026-12-06T12:00:00+01:00");
        assert_eq!(
            ProcessCredentials::from_gateway(&other).unwrap().expiration,
            "2026-12-06T11:00:00Z"
        );
        assert!(!format!("{c:?}").contains("sk"));
    }

    #[test]
    fn a_malformed_answer_is_a_clear_error() {
        for (key, bad) in [
            ("AccessKeyId", json!(null)),
            ("SecretAccessKey", json!("")),
            ("Token", json!(5)),
            ("Expiration", json!("tomorrow")),
        ] {
            let mut v = json!({"AccessKeyId": "A", "SecretAccessKey": "s", "Token": "t",
                               "Expiration": "2026-12-06T11:00:00Z"});
            v[key] = bad;
            let e = ProcessCredentials::from_gateway(&v).unwrap_err();
            assert!(matches!(e, Error::Failed(_)), "{key}");
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
