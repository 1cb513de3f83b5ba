//! A minted credential, how it travels, and how long the gateway keeps it. The container
//! credentials endpoint answers `AccessKeyId`/`SecretAccessKey`/`Token`/`Expiration` (what SDKs read
//! through `AWS_CONTAINER_CREDENTIALS_FULL_URI`); the CLI's `credential_process` prints the same
//! with `Version: 1` and `SessionToken`. The secret parts never reach a log: their `Debug` is
//! redacted. The cache hands a credential out again until shortly before it expires. Time is an
//! input.

use std::collections::HashMap;

use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::clock::rfc3339;
use crate::config::aws_access::Level;
use crate::config::Secret;

/// A credential is not handed out again in its last minutes: its holder would have to come back
/// at once.
pub const REFRESH_BEFORE: Duration = Duration::minutes(5);

/// Temporary AWS credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (not secret: it appears in CloudTrail).
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: Secret,
    /// The session token.
    pub session_token: Secret,
    /// When they stop working.
    pub expiration: OffsetDateTime,
}

impl Credentials {
    /// The container credentials endpoint's answer.
    pub fn container_json(&self) -> Value {
        json!({
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key.expose(),
            "Token": self.session_token.expose(),
            "Expiration": rfc3339(self.expiration),
        })
    }

    /// What `credential_process` prints.
    pub fn process_json(&self) -> Value {
        json!({
            "Version": 1,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key.expose(),
            "SessionToken": self.session_token.expose(),
            "Expiration": rfc3339(self.expiration),
        })
    }
}

/// Whose credential: (user, project, level, the grant it rests on, its `mfa` tag). The tag is in
/// the key because a role's policy may trust it: a credential tagged `mfa=true` is never handed to
/// a session of the same user without recent MFA.
pub type Key = (String, String, Level, Option<String>, bool);

/// Credentials minted and still good, per user, project and level.
#[derive(Debug, Default)]
pub struct Cache {
    held: HashMap<Key, Credentials>,
}

impl Cache {
    /// The held credential for `key`, if it has more than [`REFRESH_BEFORE`] left at `now`.
    pub fn get(&self, key: &Key, now: OffsetDateTime) -> Option<&Credentials> {
        self.held
            .get(key)
            .filter(|c| c.expiration - now > REFRESH_BEFORE)
    }

    /// Keeps `creds` for `key`, and drops what has expired at `now` (so the cache holds at most
    /// one live credential per user, project and level).
    pub fn put(&mut self, key: Key, creds: Credentials, now: OffsetDateTime) {
        self.held.retain(|_, c| c.expiration > now);
        self.held.insert(key, creds);
    }

    /// Forgets every credential of `user` on `project` (their window ended, they left the group).
    pub fn forget(&mut self, user: &str, project: &str) {
        self.held
            .retain(|(u, p, _, _, _), _| u != user || p != project);
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

    fn creds(expires_in: Duration) -> Credentials {
        Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG"),
            session_token: Secret::new("FQoGZXIvYXdzEJr"),
            expiration: NOW + expires_in,
        }
    }

    #[test]
    fn both_shapes_carry_the_credential_and_no_log_line_can() {
        let c = creds(Duration::hours(1));
        let container = c.container_json();
        assert_eq!(container["AccessKeyId"], "ASIAEXAMPLE");
        assert_eq!(container["Token"], "FQoGZXIvYXdzEJr");
        assert_eq!(container["Expiration"], "2026-12-06T11:00:00Z");
        let process = c.process_json();
        assert_eq!(process["Version"], 1);
        assert_eq!(process["SessionToken"], "FQoGZXIvYXdzEJr");
        assert_eq!(process["SecretAccessKey"], "wJalrXUtnFEMI/K7MDENG");
        let logged = format!("{c:?}");
        assert!(
            !logged.contains("wJalr") && !logged.contains("FQoG"),
            "{logged}"
        );
    }

    #[test]
    fn a_credential_is_reused_until_shortly_before_it_expires() {
        let mut cache = Cache::default();
        let key: Key = ("ana".into(), "payments".into(), Level::Read, None, false);
        cache.put(key.clone(), creds(Duration::minutes(30)), NOW);
        assert!(cache.get(&key, NOW).is_some());
        assert!(cache.get(&key, NOW + Duration::minutes(24)).is_some());
        assert!(
            cache.get(&key, NOW + Duration::minutes(25)).is_none(),
            "five minutes before expiry a new one is minted"
        );
        let write: Key = (
            "ana".into(),
            "payments".into(),
            Level::Write,
            Some("grt_1".into()),
            false,
        );
        assert!(cache.get(&write, NOW).is_none(), "levels are apart");
        // Expired ones are dropped as new ones arrive; a user's are forgotten at once.
        cache.put(
            write.clone(),
            creds(Duration::minutes(30)),
            NOW + Duration::hours(1),
        );
        assert_eq!(cache.len(), 1);
        cache.forget("ana", "billing");
        assert_eq!(cache.len(), 1, "other projects keep theirs");
        cache.forget("ana", "payments");
        assert!(cache.is_empty());
    }
}
