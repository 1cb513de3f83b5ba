//! Who may hold what on a project, now: the member entries that name the developer (by email,
//! case-insensitively, or by one of their IdP groups), and of those whose window is open, the
//! highest level, with the latest end among entries giving it. Time is an input.

use time::OffsetDateTime;

use super::refusal::Refusal;
use crate::config::aws_access::{AwsMember, Level};

/// A member entry with its window read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The project.
    pub project: String,
    /// Groups it covers.
    pub groups: Vec<String>,
    /// Emails it covers (lowercase).
    pub emails: Vec<String>,
    /// The highest level it gives.
    pub level: Level,
    /// Window start.
    pub from: Option<OffsetDateTime>,
    /// Window end.
    pub until: Option<OffsetDateTime>,
}

impl Entry {
    /// An entry from config (its times were checked at load; an unreadable one never matches).
    pub fn from_config(m: &AwsMember) -> Option<Entry> {
        let when = |s: &Option<String>| match s {
            None => Some(None),
            Some(s) => {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .ok()
                    .map(Some)
            }
        };
        Some(Entry {
            project: m.project.clone(),
            groups: m.groups.clone(),
            emails: m.emails.iter().map(|e| e.to_lowercase()).collect(),
            level: m.level,
            from: when(&m.from)?,
            until: when(&m.until)?,
        })
    }

    fn names(&self, email: Option<&str>, groups: &[String]) -> bool {
        email.is_some_and(|e| self.emails.contains(&e.to_lowercase()))
            || self.groups.iter().any(|g| groups.contains(g))
    }
}

/// What the developer holds on a project right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The highest level held.
    pub level: Level,
    /// The end of the window that gives it (`None`: open-ended).
    pub until: Option<OffsetDateTime>,
}

/// The developer's standing on `project` at `now`, or why they have none.
pub fn standing(
    entries: &[Entry],
    project: &str,
    email: Option<&str>,
    groups: &[String],
    now: OffsetDateTime,
) -> Result<Standing, Refusal> {
    let mine: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.project == project && e.names(email, groups))
        .collect();
    let open = mine
        .iter()
        .filter(|e| e.from.is_none_or(|f| f <= now) && e.until.is_none_or(|u| now < u));
    // Highest level first; among equals, the latest end (open-ended is latest).
    let best = open.max_by_key(|e| (e.level, e.until.is_none(), e.until));
    if let Some(e) = best {
        return Ok(Standing {
            level: e.level,
            until: e.until,
        });
    }
    let project = project.to_owned();
    if let Some(from) = mine
        .iter()
        .filter_map(|e| e.from.filter(|f| now < *f))
        .min()
    {
        return Err(Refusal::NotYet { project, from });
    }
    match mine.iter().filter_map(|e| e.until).max() {
        Some(ends) => Err(Refusal::Ending { project, ends }),
        None => Err(Refusal::NotMember { project }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::Duration;

    const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

    fn entry(groups: &[&str], emails: &[&str], level: Level, from: i64, until: i64) -> Entry {
        Entry {
            project: "payments".into(),
            groups: groups.iter().map(|s| (*s).to_owned()).collect(),
            emails: emails.iter().map(|s| (*s).to_owned()).collect(),
            level,
            from: Some(NOW + Duration::days(from)),
            until: Some(NOW + Duration::days(until)),
        }
    }

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_highest_open_level_wins() {
        let entries = [
            entry(&["payments"], &[], Level::Read, -30, 30),
            entry(&[], &["ana@example.com"], Level::Write, -1, 10),
            entry(&["payments"], &[], Level::Write, 5, 40),
        ];
        let s = standing(
            &entries,
            "payments",
            Some("Ana@Example.com"),
            &groups(&["payments"]),
            NOW,
        );
        assert_eq!(
            s,
            Ok(Standing {
                level: Level::Write,
                until: Some(NOW + Duration::days(10))
            })
        );
        // Someone else in the group holds read only (the write entry is not open yet).
        let s = standing(
            &entries,
            "payments",
            Some("bo@example.com"),
            &groups(&["payments"]),
            NOW,
        );
        assert_eq!(s.map(|s| s.level), Ok(Level::Read));
    }

    #[test]
    fn refusals_say_why() {
        let entries = [entry(&["payments"], &[], Level::Read, -30, -1)];
        assert!(matches!(
            standing(&entries, "payments", None, &groups(&["payments"]), NOW),
            Err(Refusal::Ending { ends, .. }) if ends == NOW - Duration::days(1)
        ));
        let entries = [entry(&["payments"], &[], Level::Read, 2, 30)];
        assert!(matches!(
            standing(&entries, "payments", None, &groups(&["payments"]), NOW),
            Err(Refusal::NotYet { from, .. }) if from == NOW + Duration::days(2)
        ));
        assert_eq!(
            standing(
                &entries,
                "payments",
                Some("x@example.com"),
                &groups(&["ops"]),
                NOW
            ),
            Err(Refusal::NotMember {
                project: "payments".into()
            })
        );
        assert_eq!(
            standing(&entries, "billing", None, &groups(&["payments"]), NOW),
            Err(Refusal::NotMember {
                project: "billing".into()
            })
        );
        // The window's end is exclusive.
        let entries = [entry(&["payments"], &[], Level::Read, -30, 0)];
        assert!(standing(&entries, "payments", None, &groups(&["payments"]), NOW).is_err());
    }
}
