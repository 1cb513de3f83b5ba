//! The decision behind one credential request, pure: the project exists, the developer is a
//! member now, holds the level asked for, and for write has an approved grant in force (and, on a
//! prod project, a recent multi-factor sign-in); then how long the credential may live. Every
//! "no" is a [`Refusal`] that says why. Time is an input.

use time::{Duration, OffsetDateTime};

use super::membership::{standing, Entry};
use super::refusal::Refusal;
use super::session::{length, Bounds};
use crate::config::aws_access::{AwsProject, Environment, Level, WriteApproval};

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// Email, when the IdP gave one.
    pub email: Option<&'a str>,
    /// IdP groups.
    pub groups: &'a [String],
    /// Whether their sign-in showed recent MFA.
    pub mfa: bool,
}

/// An approved write grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Its id (tagged on the credential).
    pub id: String,
    /// When it ends.
    pub until: OffsetDateTime,
}

/// A credential the gateway may mint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The level.
    pub level: Level,
    /// How long it lives.
    pub duration: Duration,
    /// The grant it rests on (write).
    pub grant: Option<String>,
}

/// One credential request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The project asked for.
    pub name: &'a str,
    /// The level asked for.
    pub level: Level,
    /// Who asks.
    pub asker: Asker<'a>,
    /// The asker's approved write grant in force, if any.
    pub grant: Option<&'a Grant>,
    /// The allowed age of an MFA sign-in for prod writes.
    pub mfa_age: Duration,
}

/// Decides `req`, where `project` is the project of that name (`None`: there is none) and
/// `entries` the member entries.
pub fn decide(
    req: &Request<'_>,
    project: Option<&AwsProject>,
    entries: &[Entry],
    now: OffsetDateTime,
) -> Result<Allowed, Refusal> {
    let Request {
        name,
        level,
        asker,
        grant,
        mfa_age,
    } = *req;
    let project = project.ok_or_else(|| Refusal::NoProject {
        project: name.to_owned(),
    })?;
    let p = || project.name.clone();
    let held = standing(entries, &project.name, asker.email, asker.groups, now)?;
    let mut grant_until = None;
    let mut grant_id = None;
    if level == Level::Write {
        if held.level < Level::Write || project.write.is_empty() {
            return Err(Refusal::ReadOnly { project: p() });
        }
        if project.write_approval == WriteApproval::Required {
            let g = grant
                .filter(|g| now < g.until)
                .ok_or_else(|| Refusal::WriteNotApproved { project: p() })?;
            grant_until = Some(g.until);
            grant_id = Some(g.id.clone());
        }
        if project.environment == Environment::Prod && !asker.mfa {
            return Err(Refusal::MfaNeeded {
                project: p(),
                minutes: mfa_age.whole_minutes(),
            });
        }
    }
    let duration = length(
        &project.name,
        now,
        &Bounds {
            max_session: Duration::seconds(i64::from(project.max_session_seconds)),
            window: (None, held.until),
            grant_until,
        },
    )?;
    Ok(Allowed {
        level,
        duration,
        grant: grant_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::aws_access::ProjectTag;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);
    const AGE: Duration = Duration::minutes(15);

    fn project(env: Environment, approval: WriteApproval) -> AwsProject {
        AwsProject {
            name: "payments".into(),
            role_arn: "arn:aws:iam::123456789012:role/agent-payments".into(),
            regions: vec!["eu-west-1".into()],
            tag: ProjectTag {
                key: "project".into(),
                value: "payments".into(),
            },
            environment: env,
            read: vec!["s3:Get*".into()],
            write: vec!["s3:PutObject".into()],
            deny: vec![],
            max_session_seconds: 3600,
            approvers: vec!["leads".into()],
            write_approval: approval,
        }
    }

    fn member(level: Level, until_days: i64) -> Vec<Entry> {
        vec![Entry {
            project: "payments".into(),
            groups: vec!["payments".into()],
            emails: vec![],
            level,
            from: None,
            until: Some(NOW + Duration::days(until_days)),
        }]
    }

    fn asker(groups: &[String], mfa: bool) -> Asker<'_> {
        Asker {
            email: Some("ana@example.com"),
            groups,
            mfa,
        }
    }

    #[test]
    fn read_for_a_member_write_only_with_grant_and_on_prod_mfa() {
        let g = vec!["payments".to_owned()];
        let prod = project(Environment::Prod, WriteApproval::Required);
        let m = member(Level::Write, 30);
        let grant = Grant {
            id: "grt_1".into(),
            until: NOW + Duration::minutes(30),
        };
        let ok = decide(
            &Request {
                name: "payments",
                level: Level::Read,
                asker: asker(&g, false),
                grant: None,
                mfa_age: AGE,
            },
            Some(&prod),
            &m,
            NOW,
        );
        assert_eq!(
            ok,
            Ok(Allowed {
                level: Level::Read,
                duration: Duration::hours(1),
                grant: None
            })
        );
        let no_grant = decide(
            &Request {
                name: "payments",
                level: Level::Write,
                asker: asker(&g, true),
                grant: None,
                mfa_age: AGE,
            },
            Some(&prod),
            &m,
            NOW,
        );
        assert!(matches!(no_grant, Err(Refusal::WriteNotApproved { .. })));
        let no_mfa = decide(
            &Request {
                name: "payments",
                level: Level::Write,
                asker: asker(&g, false),
                grant: Some(&grant),
                mfa_age: AGE,
            },
            Some(&prod),
            &m,
            NOW,
        );
        assert_eq!(
            no_mfa.unwrap_err().to_string(),
            "write access to project payments needs a sign-in with MFA in the last 15 minutes: run `claude-aws login` again"
        );
        let ok = decide(
            &Request {
                name: "payments",
                level: Level::Write,
                asker: asker(&g, true),
                grant: Some(&grant),
                mfa_age: AGE,
            },
            Some(&prod),
            &m,
            NOW,
        );
        assert_eq!(
            ok,
            Ok(Allowed {
                level: Level::Write,
                duration: Duration::minutes(30),
                grant: Some("grt_1".into())
            }),
            "the grant's end bounds the credential"
        );
        let expired = Grant {
            until: NOW,
            ..grant
        };
        assert!(matches!(
            decide(
                &Request {
                    name: "payments",
                    level: Level::Write,
                    asker: asker(&g, true),
                    grant: Some(&expired),
                    mfa_age: AGE
                },
                Some(&prod),
                &m,
                NOW
            ),
            Err(Refusal::WriteNotApproved { .. })
        ));
    }

    #[test]
    fn what_members_and_projects_cannot_get() {
        let g = vec!["payments".to_owned()];
        let dev = project(Environment::Nonprod, WriteApproval::Auto);
        let readers = member(Level::Read, 30);
        assert!(matches!(
            decide(
                &Request {
                    name: "payments",
                    level: Level::Write,
                    asker: asker(&g, true),
                    grant: None,
                    mfa_age: AGE
                },
                Some(&dev),
                &readers,
                NOW
            ),
            Err(Refusal::ReadOnly { .. })
        ));
        // Auto approval on nonprod: a writer needs neither a grant nor MFA.
        let writers = member(Level::Write, 30);
        assert!(decide(
            &Request {
                name: "payments",
                level: Level::Write,
                asker: asker(&g, false),
                grant: None,
                mfa_age: AGE
            },
            Some(&dev),
            &writers,
            NOW
        )
        .is_ok());
        let other = vec!["ops".to_owned()];
        assert!(matches!(
            decide(
                &Request {
                    name: "payments",
                    level: Level::Read,
                    asker: asker(&other, true),
                    grant: None,
                    mfa_age: AGE
                },
                Some(&dev),
                &writers,
                NOW
            ),
            Err(Refusal::NotMember { .. })
        ));
        assert_eq!(
            decide(
                &Request {
                    name: "billing",
                    level: Level::Read,
                    asker: asker(&g, true),
                    grant: None,
                    mfa_age: AGE
                },
                None,
                &writers,
                NOW
            ),
            Err(Refusal::NoProject {
                project: "billing".into()
            })
        );
        // The window's end bounds the credential, and too little left is a refusal.
        let ending = vec![Entry {
            until: Some(NOW + Duration::minutes(10)),
            ..writers[0].clone()
        }];
        assert!(matches!(
            decide(
                &Request {
                    name: "payments",
                    level: Level::Read,
                    asker: asker(&g, true),
                    grant: None,
                    mfa_age: AGE
                },
                Some(&dev),
                &ending,
                NOW
            ),
            Err(Refusal::Ending { .. })
        ));
    }
}
