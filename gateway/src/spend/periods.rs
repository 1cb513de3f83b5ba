//! Spend periods on UTC calendar boundaries: days at midnight, weeks on Monday, months on the 1st.
//! Each period has a bucket key (what spend is summed under) and a reset time.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset, Weekday};

/// A cap period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A UTC day.
    Daily,
    /// A week starting Monday 00:00 UTC.
    Weekly,
    /// A calendar month (UTC).
    Monthly,
}

impl Period {
    /// All periods.
    pub const ALL: [Period; 3] = [Period::Daily, Period::Weekly, Period::Monthly];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// When the period containing `at` started.
    pub fn start(self, at: OffsetDateTime) -> OffsetDateTime {
        let d = at.to_offset(UtcOffset::UTC).date();
        let day = match self {
            Period::Daily => d,
            Period::Weekly => d - Duration::days(i64::from(d.weekday().number_days_from_monday())),
            Period::Monthly => Date::from_calendar_date(d.year(), d.month(), 1).unwrap_or(d),
        };
        day.with_time(Time::MIDNIGHT).assume_utc()
    }

    /// When the period containing `at` ends (the next one starts).
    pub fn reset(self, at: OffsetDateTime) -> OffsetDateTime {
        let start = self.start(at);
        match self {
            Period::Daily => start + Duration::days(1),
            Period::Weekly => start + Duration::days(7),
            Period::Monthly => {
                let d = start.date();
                let (y, m) = if d.month() == Month::December {
                    (d.year() + 1, Month::January)
                } else {
                    (d.year(), d.month().next())
                };
                Date::from_calendar_date(y, m, 1)
                    .unwrap_or(d)
                    .with_time(Time::MIDNIGHT)
                    .assume_utc()
            }
        }
    }

    /// The bucket key of the period containing `at`: `d:2026-11-23`, `w:2026-11-23` (its Monday),
    /// `m:2026-11`.
    pub fn bucket(self, at: OffsetDateTime) -> String {
        let s = self.start(at).date();
        match self {
            Period::Daily => format!("d:{s}"),
            Period::Weekly => format!("w:{s}"),
            Period::Monthly => format!("m:{:04}-{:02}", s.year(), u8::from(s.month())),
        }
    }
}

/// True for Mondays (kept for callers that label weeks).
pub fn is_week_start(d: Date) -> bool {
    d.weekday() == Weekday::Monday
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn boundaries_are_utc_midnight_monday_and_the_first() {
        let t = datetime!(2026-11-29 23:59:59 UTC); // a Sunday
        assert_eq!(Period::Daily.bucket(t), "d:2026-11-29");
        assert_eq!(Period::Daily.reset(t), datetime!(2026-11-30 0:00 UTC));
        assert_eq!(Period::Weekly.bucket(t), "w:2026-11-23");
        assert_eq!(Period::Weekly.reset(t), datetime!(2026-11-30 0:00 UTC));
        let next = t + Duration::seconds(1);
        assert_eq!(Period::Daily.bucket(next), "d:2026-11-30");
        assert_eq!(Period::Weekly.bucket(next), "w:2026-11-30");
        assert_eq!(Period::Monthly.bucket(next), "m:2026-11");
        assert_eq!(Period::Monthly.reset(next), datetime!(2026-12-01 0:00 UTC));
        let dec = datetime!(2026-12-31 12:00 UTC);
        assert_eq!(Period::Monthly.reset(dec), datetime!(2027-01-01 0:00 UTC));
        // Another offset is read in UTC.
        let local = datetime!(2026-12-01 01:00 +02:00);
        assert_eq!(Period::Monthly.bucket(local), "m:2026-11");
        assert!(is_week_start(datetime!(2026-11-23 0:00 UTC).date()));
    }
}
