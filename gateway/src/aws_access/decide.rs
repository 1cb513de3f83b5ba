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
    use crate::config::aws_access::example_project;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);
    const AGE: Duration = Duration::minutes(15);

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

    /// Asks for `level` on `project` (by its name; `billing` when there is none) as a member of
    /// `groups`, with or without recent MFA and a grant.
    fn ask(
        project: Option<&AwsProject>,
        entries: &[Entry],
        groups: &[&str],
        mfa: bool,
        level: Level,
        grant: Option<&Grant>,
    ) -> Result<Allowed, Refusal> {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let req = Request {
            name: project.map_or("billing", |p| p.name.as_str()),
            level,
            asker: Asker {
                email: Some("ana@example.com"),
                groups: &groups,
                mfa,
            },
            grant,
            mfa_age: AGE,
        };
        decide(&req, project, entries, NOW)
    }

    #[test]
    fn read_for_a_member_write_only_with_grant_and_on_prod_mfa() {
        let prod = example_project(Environment::Prod, WriteApproval::Required);
        let m = member(Level::Write, 30);
        let grant = Grant {
            id: "grt_1".into(),
            until: NOW + Duration::minutes(30),
        };
        let g = &["payments"];
        assert_eq!(
            ask(Some(&prod), &m, g, false, Level::Read, None),
            Ok(Allowed {
                level: Level::Read,
                duration: Duration::hours(1),
                grant: None
            })
        );
        assert!(matches!(
            ask(Some(&prod), &m, g, true, Level::Write, None),
            Err(Refusal::WriteNotApproved { .. })
        ));
        assert_eq!(
            ask(Some(&prod), &m, g, false, Level::Write, Some(&grant))
                .unwrap_err()
                .to_string(),
            "write access to project payments needs a sign-in with MFA in the last 15 minutes: run `claude-aws login` again"
        );
        assert_eq!(
            ask(Some(&prod), &m, g, true, Level::Write, Some(&grant)),
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
            ask(Some(&prod), &m, g, true, Level::Write, Some(&expired)),
            Err(Refusal::WriteNotApproved { .. })
        ));
    }

    #[test]
    fn what_members_and_projects_cannot_get() {
        let g = &["payments"];
        let dev = example_project(Environment::Nonprod, WriteApproval::Auto);
        let readers = member(Level::Read, 30);
        assert!(matches!(
            ask(Some(&dev), &readers, g, true, Level::Write, None),
            Err(Refusal::ReadOnly { .. })
        ));
        // Auto approval on nonprod: a writer needs neither a grant nor MFA.
        let writers = member(Level::Write, 30);
        assert!(ask(Some(&dev), &writers, g, false, Level::Write, None).is_ok());
        assert!(matches!(
            ask(Some(&dev), &writers, &["ops"], true, Level::Read, None),
            Err(Refusal::NotMember { .. })
        ));
        assert_eq!(
            ask(None, &writers, g, true, Level::Read, None),
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
            ask(Some(&dev), &ending, g, true, Level::Read, None),
            Err(Refusal::Ending { .. })
        ));
    }
}
