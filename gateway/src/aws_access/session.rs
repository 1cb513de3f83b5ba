//! How long a project credential may live: the shortest of the project's `max_session`, the time
//! left in the member's window and, for write, the time left in the grant, never more than STS
//! allows a chained role session (1 hour). With less than STS's minimum (15 minutes) left, there
//! is no credential, and the refusal says when access ends. Time is an input.

use time::{Duration, OffsetDateTime};

use super::refusal::Refusal;

/// The shortest session STS issues.
pub const MIN_SESSION: Duration = Duration::minutes(15);
/// The longest session of a role assumed from another role's session (role chaining).
pub const MAX_SESSION: Duration = Duration::hours(1);
/// The shortest write asked for, in seconds: STS's shortest credential (15 minutes) and 5 minutes
/// to fetch it once approved. A grant of only 15 minutes would have less than a credential's
/// worth left by the time it is used, and could never give one.
pub const MIN_WRITE_GRANT_SECONDS: i64 = 1200;

/// The spans a credential must fit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The project's `max_session`.
    pub max_session: Duration,
    /// The member's window: from, until (`None`: open).
    pub window: (Option<OffsetDateTime>, Option<OffsetDateTime>),
    /// The end of the grant a write credential rests on.
    pub grant_until: Option<OffsetDateTime>,
}

/// The session length for `project` at `now`, or why there is none.
pub fn length(project: &str, now: OffsetDateTime, b: &Bounds) -> Result<Duration, Refusal> {
    if let Some(from) = b.window.0 {
        if now < from {
            return Err(Refusal::NotYet {
                project: project.to_owned(),
                from,
            });
        }
    }
    let ends = [b.window.1, b.grant_until].into_iter().flatten().min();
    let mut length = b.max_session.min(MAX_SESSION);
    if let Some(ends) = ends {
        length = length.min(ends - now);
    }
    if length < MIN_SESSION {
        return Err(Refusal::Ending {
            project: project.to_owned(),
            ends: ends.unwrap_or(now + length),
        });
    }
    // Whole seconds, as STS takes them.
    Ok(Duration::seconds(length.whole_seconds()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

    fn bounds(
        max: Duration,
        until: Option<OffsetDateTime>,
        grant: Option<OffsetDateTime>,
    ) -> Bounds {
        Bounds {
            max_session: max,
            window: (Some(datetime!(2026-12-01 0:00 UTC)), until),
            grant_until: grant,
        }
    }

    #[test]
    fn the_shortest_bound_wins_within_sts_limits() {
        let h = Duration::hours(1);
        assert_eq!(length("p", NOW, &bounds(h, None, None)), Ok(h));
        assert_eq!(
            length("p", NOW, &bounds(Duration::hours(8), None, None)),
            Ok(MAX_SESSION),
            "role chaining caps at an hour"
        );
        assert_eq!(
            length(
                "p",
                NOW,
                &bounds(h, Some(NOW + Duration::minutes(40)), None)
            ),
            Ok(Duration::minutes(40)),
            "the window ends first"
        );
        assert_eq!(
            length(
                "p",
                NOW,
                &bounds(
                    h,
                    Some(NOW + Duration::minutes(40)),
                    Some(NOW + Duration::minutes(20))
                )
            ),
            Ok(Duration::minutes(20)),
            "the grant ends first"
        );
        assert_eq!(
            length(
                "p",
                NOW,
                &bounds(h, Some(NOW + Duration::milliseconds(1_800_500)), None)
            ),
            Ok(Duration::seconds(1_800)),
            "whole seconds"
        );
    }

    #[test]
    fn at_the_edges_of_the_window() {
        let h = Duration::hours(1);
        // Exactly the minimum left: issued. A second less: refused, naming the end.
        let ends = NOW + MIN_SESSION;
        assert_eq!(
            length("p", NOW, &bounds(h, Some(ends), None)),
            Ok(MIN_SESSION)
        );
        let ends = ends - Duration::seconds(1);
        let refused = length("p", NOW, &bounds(h, Some(ends), None)).unwrap_err();
        assert_eq!(
            refused,
            Refusal::Ending {
                project: "p".into(),
                ends
            }
        );
        assert_eq!(
            refused.to_string(),
            "your access to project p ends at 2026-12-06T10:14:59Z"
        );
        // Over, long ago.
        let past = NOW - Duration::days(3);
        assert!(matches!(
            length("p", NOW, &bounds(h, Some(past), None)),
            Err(Refusal::Ending { .. })
        ));
        // Not yet open.
        let later = Bounds {
            window: (Some(NOW + Duration::days(1)), None),
            ..bounds(h, None, None)
        };
        assert_eq!(
            length("p", NOW, &later).unwrap_err().to_string(),
            "your access to project p starts at 2026-12-07T10:00:00Z"
        );
        // A project limit under the minimum is a refusal too, not a short credential.
        assert!(length("p", NOW, &bounds(Duration::minutes(5), None, None)).is_err());
    }
}
