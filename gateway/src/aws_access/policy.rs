//! The inline session policy of a project credential, generated from the level's IAM actions
//! (exact names or `service:Prefix*`) and the explicit denies: the built-in list that no project
//! can lift, plus the project's own. An explicit deny wins over any allow in IAM's evaluation, so
//! a careless allow (`s3:*`) cannot reach what is denied. STS refuses a session policy of more
//! than 2,048 characters; the size is checked when the config loads, not when a developer asks.

use serde_json::json;

/// The most characters STS accepts in an inline session policy.
pub const MAX_POLICY_CHARS: usize = 2_048;

/// Denied to every project credential, whatever the project allows: identity and organization
/// changes, destroying keys and data, and turning off the audit trail.
pub const BUILT_IN_DENY: &[&str] = &[
    "iam:*",
    "organizations:*",
    "account:*",
    "sts:AssumeRole",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:PutKeyPolicy",
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:UpdateTrail",
    "*:Delete*",
    "*:Terminate*",
];

/// Why a project level's session policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// An action is not `service:Action`, `service:Prefix*` or `service:*`.
    #[error("{0:?} is not an IAM action (service:Action, service:Prefix* or service:*)")]
    Action(String),
    /// A level with no action to allow.
    #[error("the level allows no action")]
    Empty,
    /// The generated policy is over STS's limit.
    #[error("its session policy is {0} characters; STS accepts at most {MAX_POLICY_CHARS}: allow fewer or broader actions (service:Prefix*)")]
    TooLarge(usize),
}

/// Checks one action pattern: a lowercase service (letters, digits, `-`), a colon, and an action
/// of letters and digits that may end in `*` (or is `*` alone). `allow_any_service` admits `*`
/// as the service, which only deny patterns use (`*:Delete*`).
fn check_action(action: &str, allow_any_service: bool) -> Result<(), PolicyError> {
    let bad = || PolicyError::Action(action.to_owned());
    let (service, name) = action.split_once(':').ok_or_else(bad)?;
    let service_ok = (allow_any_service && service == "*")
        || (!service.is_empty()
            && service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    let stem = name.strip_suffix('*').unwrap_or(name);
    let name_ok = name == "*"
        || (!stem.is_empty()
            && stem.bytes().all(|b| b.is_ascii_alphanumeric())
            && !stem.contains('*'));
    if service_ok && name_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The session policy for `allow` minus `deny` (plus the built-in denies), as compact JSON.
pub fn session_policy(allow: &[String], deny: &[String]) -> Result<String, PolicyError> {
    if allow.is_empty() {
        return Err(PolicyError::Empty);
    }
    for a in allow {
        check_action(a, false)?;
    }
    for d in deny {
        check_action(d, true)?;
    }
    let mut denied: Vec<&str> = BUILT_IN_DENY.to_vec();
    for d in deny {
        if !denied.contains(&d.as_str()) {
            denied.push(d);
        }
    }
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": allow, "Resource": "*"},
            {"Effect": "Deny", "Action": denied, "Resource": "*"},
        ],
    })
    .to_string();
    let chars = policy.chars().count();
    if chars > MAX_POLICY_CHARS {
        return Err(PolicyError::TooLarge(chars));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn allows_the_level_and_denies_the_built_ins_and_the_project() {
        let p = session_policy(
            &strings(&["s3:Get*", "logs:FilterLogEvents", "s3:*"]),
            &strings(&["s3:PutBucketPolicy"]),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["Statement"][0]["Effect"], "Allow");
        assert_eq!(v["Statement"][0]["Action"][2], "s3:*");
        assert_eq!(v["Statement"][1]["Effect"], "Deny");
        let denied: Vec<&str> = v["Statement"][1]["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        for d in BUILT_IN_DENY {
            assert!(denied.contains(d), "{d} is denied even under s3:*");
        }
        assert!(denied.contains(&"s3:PutBucketPolicy"));
        assert!(
            !p.contains(' '),
            "compact: every character counts against STS's limit"
        );
    }

    #[test]
    fn refuses_what_is_not_an_action() {
        for bad in [
            "s3",
            "S3:GetObject",
            ":GetObject",
            "s3:",
            "s3:Get*Object",
            "s3:Get Object",
            "*:*",
            "s3:**",
            "s 3:Get",
        ] {
            assert_eq!(
                session_policy(&strings(&[bad]), &[]),
                Err(PolicyError::Action(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(session_policy(&[], &[]), Err(PolicyError::Empty));
        // `*` as a service only in denies.
        assert!(session_policy(&strings(&["s3:List*"]), &strings(&["*:Put*"])).is_ok());
        assert_eq!(
            session_policy(&strings(&["*:Get*"]), &[]),
            Err(PolicyError::Action("*:Get*".into()))
        );
    }

    #[test]
    fn a_policy_over_the_sts_limit_is_refused_with_its_size() {
        let many: Vec<String> = (0..200).map(|i| format!("ec2:DescribeThing{i}")).collect();
        match session_policy(&many, &[]) {
            Err(PolicyError::TooLarge(n)) => assert!(n > MAX_POLICY_CHARS),
            other => panic!("{other:?}"),
        }
        // Just under: the limit is inclusive.
        let mut fit = Vec::new();
        while session_policy(&fit, &[]).map_or(true, |p| p.len() < MAX_POLICY_CHARS - 40) {
            fit.push(format!("ec2:Describe{}", fit.len()));
        }
        assert!(session_policy(&fit, &[]).is_ok());
    }
}
