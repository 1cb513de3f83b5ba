//! The time range a logs or metrics tool reads: `start_time` and `end_time` (RFC 3339), or the
//! last `since_minutes` (60 unless given) up to now. Pure: now is given.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::args::{self, int_arg, str_arg};

/// Minutes looked back when no range is given.
pub const DEFAULT_MINUTES: i64 = 60;
/// The longest look back, in minutes (31 days).
pub const MAX_MINUTES: i64 = 31 * 24 * 60;

/// Adds the range's properties.
pub fn props(p: &mut Map<String, Value>) {
    p.insert(
        "since_minutes".into(),
        args::integer(
            "Read the last this many minutes, up to now (default 60). Ignored when start_time is given.",
            1,
            MAX_MINUTES,
        ),
    );
    p.insert(
        "start_time".into(),
        args::string_max("Start of the range, RFC 3339 (2026-12-06T10:00:00Z).", 64),
    );
    p.insert(
        "end_time".into(),
        args::string_max("End of the range, RFC 3339; default now.", 64),
    );
}

/// The range the arguments name at `now`, or a sentence naming the bad argument.
pub fn of(
    a: &Map<String, Value>,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    let parse = |name: &str| -> Result<Option<OffsetDateTime>, String> {
        str_arg(a, name)
            .map(|s| {
                OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                    format!(
                        "argument `{name}` must be an RFC 3339 time such as 2026-12-06T10:00:00Z"
                    )
                })
            })
            .transpose()
    };
    let end = parse("end_time")?.unwrap_or(now);
    let start = match parse("start_time")? {
        Some(s) => s,
        None => {
            let minutes = int_arg(a, "since_minutes").unwrap_or(DEFAULT_MINUTES);
            end - Duration::minutes(minutes.clamp(1, MAX_MINUTES))
        }
    };
    if start >= end {
        return Err("the range is empty: `start_time` must be before `end_time`".into());
    }
    Ok((start, end))
}

/// Milliseconds since the epoch.
pub fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Milliseconds since the epoch as RFC 3339.
pub fn from_millis(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(crate::clock::rfc3339)
        .unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

    fn a(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_range_is_the_last_hour_or_what_is_named() {
        assert_eq!(of(&a(json!({})), NOW), Ok((NOW - Duration::hours(1), NOW)));
        assert_eq!(
            of(&a(json!({"since_minutes": 5})), NOW),
            Ok((NOW - Duration::minutes(5), NOW))
        );
        assert_eq!(
            of(
                &a(
                    json!({"start_time": "2026-12-06T08:00:00Z", "end_time": "2026-12-06T09:00:00+00:00"})
                ),
                NOW
            ),
            Ok((
                datetime!(2026-12-06 8:00 UTC),
                datetime!(2026-12-06 9:00 UTC)
            ))
        );
        let bad = of(&a(json!({"start_time": "yesterday"})), NOW).unwrap_err();
        assert!(bad.contains("`start_time`"), "{bad}");
        let empty = of(&a(json!({"start_time": "2026-12-06T11:00:00Z"})), NOW).unwrap_err();
        assert!(empty.contains("empty"), "{empty}");
    }

    #[test]
    fn milliseconds_round_trip() {
        assert_eq!(millis(NOW), 1_796_551_200_000);
        assert_eq!(from_millis(1_796_551_200_000), "2026-12-06T10:00:00Z");
    }
}
