//! The `sts:AssumeRole` request behind one credential, built from the project, the developer and
//! the level, before anything is sent: the role, a session name and source identity derived from
//! the developer (in the characters STS accepts), the session tags the project role's own policy
//! can check (`project`: the project's tag value, `user`, `level`, `mfa`, `grant`), the level's session policy and the
//! duration. CloudTrail shows the source identity on every call the credential makes.

use time::Duration;

use super::policy::{session_policy, PolicyError};
use crate::config::aws_access::{tag_char_ok, AwsProject, Level};

/// The longest role session name and source identity STS accepts.
const MAX_NAME: usize = 64;
/// The longest session tag value STS accepts.
const MAX_TAG_VALUE: usize = 256;

/// What one `AssumeRole` call sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRequest {
    /// The project's role.
    pub role_arn: String,
    /// `gw-` and the developer, in STS's characters.
    pub session_name: String,
    /// The developer's email (else their subject), in STS's characters.
    pub source_identity: String,
    /// Session tags, in this order: project, user, level, mfa, grant.
    pub tags: Vec<(String, String)>,
    /// The level's inline session policy.
    pub policy: String,
    /// Seconds.
    pub duration_seconds: i32,
}

/// The developer a credential is for.
#[derive(Debug, Clone, Copy)]
pub struct Developer<'a> {
    /// The IdP subject.
    pub sub: &'a str,
    /// The email, when the IdP gave one.
    pub email: Option<&'a str>,
    /// Whether their sign-in showed recent MFA.
    pub mfa: bool,
}

/// Keeps the characters STS allows in names (`[\w+=,.@-]`), replacing others with `-`, and at
/// most `max` of them.
fn sts_name(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(max)
        .collect()
}

/// Keeps the characters STS allows in tag values, replacing others with `-`.
fn tag_value(s: &str) -> String {
    s.chars()
        .map(|c| if tag_char_ok(c) { c } else { '-' })
        .take(MAX_TAG_VALUE)
        .collect()
}

/// The request for `dev` on `project` at `level`, valid for `duration`, resting on `grant` (a
/// write grant's id) when there is one.
pub fn request(
    project: &AwsProject,
    level: Level,
    dev: Developer<'_>,
    grant: Option<&str>,
    duration: Duration,
) -> Result<AssumeRequest, PolicyError> {
    let policy = session_policy(&project.actions(level), &project.deny)?;
    let who = dev.email.unwrap_or(dev.sub);
    // STS wants at least two characters in a source identity.
    let mut source_identity = sts_name(who, MAX_NAME);
    while source_identity.len() < 2 {
        source_identity.push('-');
    }
    Ok(AssumeRequest {
        role_arn: project.role_arn.clone(),
        session_name: sts_name(&format!("gw-{who}"), MAX_NAME),
        source_identity,
        tags: vec![
            // The value the project's resources carry: the project role compares the two.
            ("project".into(), tag_value(&project.tag.value)),
            ("user".into(), tag_value(who)),
            ("level".into(), level.as_str().into()),
            ("mfa".into(), dev.mfa.to_string()),
            ("grant".into(), tag_value(grant.unwrap_or("none"))),
        ],
        policy,
        duration_seconds: i32::try_from(duration.whole_seconds()).unwrap_or(i32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::aws_access::{example_project, Environment, WriteApproval};

    fn project() -> AwsProject {
        example_project(Environment::Prod, WriteApproval::Required)
    }

    #[test]
    fn read_and_write_differ_only_where_they_should() {
        let dev = Developer {
            sub: "00u1",
            email: Some("ana.lima@example.com"),
            mfa: false,
        };
        let read = request(&project(), Level::Read, dev, None, Duration::minutes(30)).unwrap();
        assert_eq!(
            read.role_arn,
            "arn:aws:iam::123456789012:role/agent-payments"
        );
        assert_eq!(read.session_name, "gw-ana.lima@example.com");
        assert_eq!(read.source_identity, "ana.lima@example.com");
        assert_eq!(read.duration_seconds, 1800);
        assert_eq!(
            read.tags,
            [
                ("project".to_owned(), "payments".to_owned()),
                ("user".into(), "ana.lima@example.com".into()),
                ("level".into(), "read".into()),
                ("mfa".into(), "false".into()),
                ("grant".into(), "none".into()),
            ]
        );
        assert!(!read.policy.contains("s3:PutObject"));
        let dev = Developer { mfa: true, ..dev };
        let write = request(
            &project(),
            Level::Write,
            dev,
            Some("grt_1"),
            Duration::hours(1),
        )
        .unwrap();
        assert!(write.policy.contains("s3:PutObject") && write.policy.contains("s3:Get*"));
        assert_eq!(write.tags[2].1, "write");
        assert_eq!(write.tags[3].1, "true");
        assert_eq!(write.tags[4].1, "grt_1");
    }

    #[test]
    fn the_project_tag_carries_what_the_resources_carry() {
        let mut p = project();
        p.tag.value = "team payments".into();
        let dev = Developer {
            sub: "00u1",
            email: None,
            mfa: false,
        };
        let req = request(&p, Level::Read, dev, None, Duration::minutes(30)).unwrap();
        assert_eq!(req.tags[0], ("project".into(), "team payments".into()));
        assert_eq!(req.source_identity, "00u1", "no email: the subject");
    }

    #[test]
    fn names_keep_to_the_characters_and_lengths_sts_accepts() {
        let long = format!("{}@example.com", "ä b/c".repeat(30));
        let dev = Developer {
            sub: "x",
            email: Some(&long),
            mfa: false,
        };
        let r = request(&project(), Level::Read, dev, None, Duration::minutes(15)).unwrap();
        for name in [&r.session_name, &r.source_identity] {
            assert!(name.len() <= MAX_NAME && name.len() >= 2, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
                "{name}"
            );
        }
        assert!(r
            .tags
            .iter()
            .all(|(_, v)| v.chars().count() <= MAX_TAG_VALUE));
        // A one-character subject and no email still make a valid source identity.
        let dev = Developer {
            sub: "7",
            email: None,
            mfa: false,
        };
        let r = request(&project(), Level::Read, dev, None, Duration::minutes(15)).unwrap();
        assert_eq!(r.source_identity, "7-");
    }
}
