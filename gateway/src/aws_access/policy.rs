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

    /// IAM's wildcard match of an action against a pattern (`*` any run, case-insensitive).
    fn glob(pattern: &str, action: &str) -> bool {
        let (p, a) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
        let parts: Vec<&str> = p.split('*').collect();
        let Some((first, rest)) = parts.split_first() else {
            return false;
        };
        let Some(mut tail) = a.strip_prefix(first) else {
            return false;
        };
        for (i, part) in rest.iter().enumerate() {
            if i + 1 == rest.len() {
                return part.is_empty() || tail.ends_with(part);
            }
            match tail.find(part) {
                Some(at) => tail = &tail[at + part.len()..],
                None => return false,
            }
        }
        tail.is_empty()
    }

    /// IAM's evaluation of one action under a session policy: an explicit deny wins, then an
    /// allow; anything else is implicitly denied.
    fn allowed(policy: &str, action: &str) -> bool {
        let v: serde_json::Value = serde_json::from_str(policy).unwrap();
        let hits = |effect: &str| {
            v["Statement"].as_array().unwrap().iter().any(|s| {
                s["Effect"] == effect
                    && s["Action"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| glob(p.as_str().unwrap(), action))
            })
        };
        !hits("Deny") && hits("Allow")
    }

    #[test]
    fn under_iam_evaluation_a_deny_wins_over_any_allow_at_every_level() {
        use crate::config::aws_access::{example_project, Environment, Level, WriteApproval};
        assert!(glob("*:Delete*", "s3:DeleteObject") && !glob("s3:Get*", "s3:PutObject"));
        for env in [Environment::Prod, Environment::Nonprod] {
            let mut p = example_project(env, WriteApproval::Required);
            // A careless project: whole services allowed, one of them IAM.
            p.read = strings(&["s3:Get*", "ec2:*", "iam:Get*"]);
            p.write = strings(&["s3:*", "kms:*", "cloudtrail:*"]);
            p.deny = strings(&["s3:PutBucketPolicy"]);
            for level in [Level::Read, Level::Write] {
                let actions: Vec<String> = match level {
                    Level::Read => p.read.clone(),
                    Level::Write => p.read.iter().chain(&p.write).cloned().collect(),
                };
                let policy = session_policy(&actions, &p.deny).unwrap();
                assert!(allowed(&policy, "s3:GetObject"));
                assert!(allowed(&policy, "ec2:DescribeInstances"));
                for denied in [
                    "iam:GetRole",
                    "ec2:TerminateInstances",
                    "ec2:DeleteVpc",
                    "s3:DeleteBucket",
                    "kms:ScheduleKeyDeletion",
                    "kms:DisableKey",
                    "cloudtrail:StopLogging",
                    "s3:PutBucketPolicy",
                    "sts:AssumeRole",
                    "organizations:LeaveOrganization",
                ] {
                    assert!(
                        !allowed(&policy, denied),
                        "{denied} at {level:?} on {env:?}"
                    );
                }
                assert_eq!(
                    allowed(&policy, "s3:PutObject"),
                    level == Level::Write,
                    "write actions only at write"
                );
                assert!(!allowed(&policy, "lambda:InvokeFunction"), "implicit deny");
            }
        }
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
