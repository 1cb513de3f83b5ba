//! Durations as people type them for `request --for`: `15m`, `1h`, `90m`, `3600s`, `1h30m`.

use crate::error::Error;

/// The longest duration accepted here (the gateway applies the project's own, shorter limit).
pub const MAX_SECONDS: u64 = 12 * 3600;

/// Seconds in `text`: one or more `<number><s|m|h>` parts, in any order, summed.
pub fn parse(text: &str) -> Result<u64, Error> {
    let bad = || {
        Error::Usage(format!(
            "{text:?} is not a duration: use a number and a unit, like 15m, 1h, 90m or 3600s"
        ))
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            if digits.len() >= 6 {
                return Err(bad());
            }
            digits.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = total.saturating_add(n.saturating_mul(unit));
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    if total > MAX_SECONDS {
        return Err(Error::Usage(format!(
            "{text} is longer than the 12 hours any request may last"
        )));
    }
    Ok(total)
}

/// Seconds as `1h30m`, `15m`, `45s`.
pub fn show(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_parse() {
        for (text, secs) in [
            ("15m", 900),
            ("1h", 3600),
            ("90m", 5400),
            ("3600s", 3600),
            ("1h30m", 5400),
            ("2H", 7200),
            (" 45s ", 45),
            ("12h", 43200),
        ] {
            assert_eq!(parse(text).unwrap(), secs, "{text}");
        }
    }

    #[test]
    fn anything_else_is_a_usage_error() {
        for text in [
            "",
            "1",
            "h",
            "1d",
            "-1h",
            "1.5h",
            "0m",
            "1h 30m",
            "13h",
            "9999999999s",
            "m1",
        ] {
            assert!(matches!(parse(text), Err(Error::Usage(_))), "{text:?}");
        }
    }

    #[test]
    fn durations_show_back() {
        assert_eq!(show(5400), "1h30m");
        assert_eq!(show(900), "15m");
        assert_eq!(show(3600), "1h");
        assert_eq!(show(61), "1m1s");
        assert_eq!(show(0), "0s");
    }
}
