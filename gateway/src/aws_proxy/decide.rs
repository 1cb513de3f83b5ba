//! The decision on one call through the proxy, pure: the explicit denies (built-in and the
//! project's, which win over any allow), the project's regions, the credential's level against
//! the call's class, the project's allowlist, MFA for prod writes, the tiered rate limit, and the
//! risk rules that send a call to a person. The count of calls and the time are inputs.

use crate::aws_access::policy::BUILT_IN_DENY;
use crate::config::aws_access::{AwsProject, Environment, Level};
use crate::config::aws_proxy::{CallLimits, Risk};

use super::operation::Class;

/// The call as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The signing name of its service (`s3`).
    pub service: &'a str,
    /// Its region.
    pub region: &'a str,
    /// The IAM action (`s3:GetObject`); `None` when the operation could not be named.
    pub action: Option<&'a str>,
    /// Its class (an unnamed call is a write).
    pub class: Class,
    /// Whether a parameter names a resource with a wildcard.
    pub wildcard_name: bool,
}

/// Who calls, as their gateway credential and membership now say.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// The level of the credential, never above what the member holds now.
    pub level: Level,
    /// Whether the credential was issued after a recent MFA sign-in.
    pub mfa: bool,
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// An explicit deny names the action.
    #[error("{action} is denied on project {project} (by the deny {pattern})")]
    Denied {
        /// The project.
        project: String,
        /// The action.
        action: String,
        /// The deny that matched.
        pattern: String,
    },
    /// The project's allowlist does not name the action.
    #[error("{action} is not allowed on project {project}")]
    NotAllowed {
        /// The project.
        project: String,
        /// The action.
        action: String,
    },
    /// The operation could not be named, and the project allows no such write.
    #[error("the gateway cannot tell which {service} operation this is, and project {project} allows no {service}:* write")]
    Unnamed {
        /// The project.
        project: String,
        /// The service.
        service: String,
    },
    /// A write on a read credential.
    #[error("this call writes, and your credential for project {project} is read-only: ask for write with `claude-aws credentials --level write --via-gateway`")]
    ReadOnly {
        /// The project.
        project: String,
    },
    /// Outside the project's regions.
    #[error("project {project} has no resources in region {region}")]
    Region {
        /// The project.
        project: String,
        /// The region asked.
        region: String,
    },
    /// A prod write without recent MFA.
    #[error("writes on project {project} need a sign-in with MFA: run `claude-aws login` again, then take a new credential")]
    MfaNeeded {
        /// The project.
        project: String,
    },
}

/// Why a call needs a person's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Every write does.
    Write,
    /// A write on a prod project.
    ProdWrite,
    /// The action matches a configured pattern.
    Action(String),
    /// A parameter names resources with a wildcard.
    Wildcard,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Write => f.write_str("it writes"),
            Reason::ProdWrite => f.write_str("it writes on a prod project"),
            Reason::Action(p) => write!(f, "its action matches {p}"),
            Reason::Wildcard => f.write_str("it names resources with a wildcard"),
        }
    }
}

/// What happens to the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It goes to AWS.
    Allow,
    /// It is refused.
    Deny(Denial),
    /// The caller is over the limit of its class.
    Throttle {
        /// The class.
        class: Class,
        /// Calls allowed per window.
        limit: u32,
        /// The window, in seconds.
        window_seconds: u32,
    },
    /// A person approves it first (unless an approval of this very call is in force).
    Approve(Vec<Reason>),
}

/// Whether the action pattern `pattern` (`service:Action`, `service:Prefix*`, `*:Prefix*`)
/// names `service`'s `action` (`None`: an unnamed operation, which only `service:*` and `*:*`
/// name). IAM compares action names without regard to case.
pub fn matches(pattern: &str, service: &str, action: Option<&str>) -> bool {
    let Some((p_service, p_name)) = pattern.split_once(':') else {
        return false;
    };
    let (a_service, a_name) = match action.and_then(|a| a.split_once(':')) {
        Some((s, n)) => (s, Some(n)),
        None => (service, None),
    };
    if p_service != "*" && !p_service.eq_ignore_ascii_case(a_service) {
        return false;
    }
    match (p_name.strip_suffix('*'), a_name) {
        (Some(""), _) => true,
        (_, None) => false,
        (Some(prefix), Some(name)) => name
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        (None, Some(name)) => p_name.eq_ignore_ascii_case(name),
    }
}

/// The limit of `class`.
pub fn limit_of(limits: &CallLimits, class: Class) -> u32 {
    match class {
        Class::Read => limits.read,
        Class::List => limits.list,
        Class::Write => limits.write,
    }
}

/// Decides `call` by `caller` on `project`, where `calls` is how many calls of the call's class
/// the caller made in the current window, this one included.
pub fn decide(
    project: &AwsProject,
    caller: Caller,
    call: &Call<'_>,
    calls: u32,
    limits: &CallLimits,
    risk: &Risk,
) -> Outcome {
    let p = || project.name.clone();
    let deny = BUILT_IN_DENY
        .iter()
        .copied()
        .chain(project.deny.iter().map(String::as_str))
        .find(|d| matches(d, call.service, call.action));
    if let Some(pattern) = deny {
        return Outcome::Deny(Denial::Denied {
            project: p(),
            action: call
                .action
                .map_or_else(|| format!("{}:?", call.service), str::to_owned),
            pattern: pattern.to_owned(),
        });
    }
    if !project.regions.iter().any(|r| r == call.region) {
        return Outcome::Deny(Denial::Region {
            project: p(),
            region: call.region.to_owned(),
        });
    }
    let writes = call.class == Class::Write;
    if writes && caller.level < Level::Write {
        return Outcome::Deny(Denial::ReadOnly { project: p() });
    }
    let allowed = project
        .actions(caller.level)
        .iter()
        .any(|a| matches(a, call.service, call.action));
    if !allowed {
        return Outcome::Deny(match call.action {
            Some(action) => Denial::NotAllowed {
                project: p(),
                action: action.to_owned(),
            },
            None => Denial::Unnamed {
                project: p(),
                service: call.service.to_owned(),
            },
        });
    }
    let prod = project.environment == Environment::Prod;
    if writes && prod && !caller.mfa {
        return Outcome::Deny(Denial::MfaNeeded { project: p() });
    }
    let limit = limit_of(limits, call.class);
    if calls > limit {
        return Outcome::Throttle {
            class: call.class,
            limit,
            window_seconds: limits.window_seconds,
        };
    }
    let mut reasons = Vec::new();
    if writes && risk.writes {
        reasons.push(Reason::Write);
    } else if writes && prod && risk.prod {
        reasons.push(Reason::ProdWrite);
    }
    if let Some(pattern) = risk
        .actions
        .iter()
        .find(|a| matches(a, call.service, call.action))
    {
        reasons.push(Reason::Action(pattern.clone()));
    }
    if writes && risk.wildcard_names && call.wildcard_name {
        reasons.push(Reason::Wildcard);
    }
    // What cannot be named is approved by a person whatever the rules say.
    if call.action.is_none() && reasons.is_empty() {
        reasons.push(Reason::Write);
    }
    if reasons.is_empty() {
        Outcome::Allow
    } else {
        Outcome::Approve(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::aws_access::{example_project, WriteApproval};

    fn call<'a>(action: Option<&'a str>, class: Class) -> Call<'a> {
        Call {
            service: action.and_then(|a| a.split_once(':')).map_or("s3", |s| s.0),
            region: "eu-west-1",
            action,
            class,
            wildcard_name: false,
        }
    }

    fn project(env: Environment) -> AwsProject {
        let mut p = example_project(env, WriteApproval::Required);
        p.read = vec!["s3:Get*".into(), "s3:List*".into(), "logs:*".into()];
        p.write = vec!["s3:*".into()];
        p.deny = vec!["s3:PutBucketPolicy".into()];
        p
    }

    const READER: Caller = Caller {
        level: Level::Read,
        mfa: false,
    };
    const WRITER: Caller = Caller {
        level: Level::Write,
        mfa: true,
    };

    fn run(p: &AwsProject, who: Caller, c: &Call<'_>, calls: u32) -> Outcome {
        decide(p, who, c, calls, &CallLimits::default(), &Risk::default())
    }

    #[test]
    fn patterns_match_as_iam_does() {
        assert!(matches("s3:Get*", "s3", Some("s3:GetObject")));
        assert!(matches("S3:getobject", "s3", Some("s3:GetObject")));
        assert!(matches("*:Delete*", "s3", Some("s3:DeleteBucket")));
        assert!(matches("s3:*", "s3", None));
        assert!(!matches("s3:Get*", "s3", None));
        assert!(!matches("s3:Get*", "s3", Some("s3:PutObject")));
        assert!(!matches("s3:GetObject", "s3", Some("s3:GetObjectAcl")));
        assert!(!matches("logs:*", "s3", Some("s3:GetObject")));
        assert!(!matches("nonsense", "s3", Some("s3:GetObject")));
        assert!(!matches(
            "s3:GetObjectVersionTaggingXX*",
            "s3",
            Some("s3:Get")
        ));
    }

    #[test]
    fn denies_win_over_any_allow() {
        let p = project(Environment::Nonprod);
        // s3:* is allowed at write, yet DeleteBucket is built-in denied and PutBucketPolicy the project's.
        for action in ["s3:DeleteBucket", "s3:PutBucketPolicy", "iam:CreateUser"] {
            let out = run(&p, WRITER, &call(Some(action), Class::Write), 1);
            assert!(
                matches!(out, Outcome::Deny(Denial::Denied { .. })),
                "{action}: {out:?}"
            );
        }
    }

    #[test]
    fn reads_need_the_allowlist_writes_the_level_and_region_must_be_the_projects() {
        let p = project(Environment::Nonprod);
        assert_eq!(
            run(&p, READER, &call(Some("s3:GetObject"), Class::Read), 1),
            Outcome::Allow
        );
        assert!(matches!(
            run(
                &p,
                READER,
                &call(Some("ec2:DescribeInstances"), Class::Read),
                1
            ),
            Outcome::Deny(Denial::NotAllowed { .. })
        ));
        assert!(matches!(
            run(&p, READER, &call(Some("s3:PutObject"), Class::Write), 1),
            Outcome::Deny(Denial::ReadOnly { .. })
        ));
        let mut far = call(Some("s3:GetObject"), Class::Read);
        far.region = "us-east-1";
        assert!(matches!(
            run(&p, READER, &far, 1),
            Outcome::Deny(Denial::Region { .. })
        ));
        // An unnamed call is a write: refused unless the service's writes are all allowed,
        // then always held.
        assert!(matches!(
            run(&p, READER, &call(None, Class::Write), 1),
            Outcome::Deny(Denial::ReadOnly { .. })
        ));
        assert_eq!(
            run(&p, WRITER, &call(None, Class::Write), 1),
            Outcome::Approve(vec![Reason::Write])
        );
        let mut lambda = call(None, Class::Write);
        lambda.service = "lambda";
        assert!(matches!(
            run(&p, WRITER, &lambda, 1),
            Outcome::Deny(Denial::Unnamed { .. })
        ));
    }

    #[test]
    fn risk_rules_send_calls_to_a_person() {
        let prod = project(Environment::Prod);
        let put = call(Some("s3:PutObject"), Class::Write);
        assert_eq!(
            run(&prod, WRITER, &put, 1),
            Outcome::Approve(vec![Reason::Write])
        );
        let no_writes = Risk {
            writes: false,
            ..Risk::default()
        };
        assert_eq!(
            decide(&prod, WRITER, &put, 1, &CallLimits::default(), &no_writes),
            Outcome::Approve(vec![Reason::ProdWrite])
        );
        let dev = project(Environment::Nonprod);
        assert_eq!(
            decide(&dev, WRITER, &put, 1, &CallLimits::default(), &no_writes),
            Outcome::Allow
        );
        let batch = call(Some("s3:DeleteObjects"), Class::Write);
        let mut lenient = dev.clone();
        lenient.deny.clear();
        // DeleteObjects is not DeleteBucket: the built-in `*:Delete*` denies it too.
        assert!(matches!(
            run(&lenient, WRITER, &batch, 1),
            Outcome::Deny(Denial::Denied { .. })
        ));
        let mut wild = put;
        wild.wildcard_name = true;
        assert_eq!(
            decide(&dev, WRITER, &wild, 1, &CallLimits::default(), &no_writes),
            Outcome::Approve(vec![Reason::Wildcard])
        );
        let custom = Risk {
            writes: false,
            actions: vec!["s3:PutObject*".into()],
            ..Risk::default()
        };
        assert_eq!(
            decide(&dev, WRITER, &put, 1, &CallLimits::default(), &custom),
            Outcome::Approve(vec![Reason::Action("s3:PutObject*".into())])
        );
        // Prod writes need MFA before any person is asked.
        let no_mfa = Caller {
            mfa: false,
            ..WRITER
        };
        assert!(matches!(
            run(&prod, no_mfa, &put, 1),
            Outcome::Deny(Denial::MfaNeeded { .. })
        ));
    }

    #[test]
    fn each_class_has_its_own_limit() {
        let p = project(Environment::Nonprod);
        let read = call(Some("s3:GetObject"), Class::Read);
        let list = call(Some("s3:ListBucket"), Class::List);
        assert_eq!(run(&p, READER, &read, 100), Outcome::Allow);
        assert!(matches!(
            run(&p, READER, &read, 101),
            Outcome::Throttle { limit: 100, .. }
        ));
        assert_eq!(run(&p, READER, &list, 50), Outcome::Allow);
        assert!(matches!(
            run(&p, READER, &list, 51),
            Outcome::Throttle {
                class: Class::List,
                limit: 50,
                window_seconds: 300
            }
        ));
        let put = call(Some("s3:PutObject"), Class::Write);
        assert!(matches!(
            run(&p, WRITER, &put, 11),
            Outcome::Throttle { limit: 10, .. }
        ));
        // A denied call is refused for what it is, not throttled.
        assert!(matches!(
            run(
                &p,
                READER,
                &call(Some("iam:CreateUser"), Class::Write),
                1000
            ),
            Outcome::Deny(_)
        ));
    }
}
