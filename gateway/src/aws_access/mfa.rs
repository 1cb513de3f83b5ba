//! Whether a developer's sign-in showed recent multi-factor authentication: the IdP's `amr` claim
//! (RFC 8176) names `mfa`, or factors of two kinds (something known, held, or of the body), and
//! `auth_time` is within the allowed age. Prod write credentials need it, and their `mfa` tag is
//! `true` only then. Time is an input.

use time::{Duration, OffsetDateTime};

/// The kinds of factor an `amr` value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Known,
    Held,
    Body,
}

fn kind(amr: &str) -> Option<Kind> {
    match amr {
        "pwd" | "pin" | "kba" => Some(Kind::Known),
        "hwk" | "swk" | "otp" | "sms" | "tel" | "sc" => Some(Kind::Held),
        "fpt" | "face" | "iris" | "retina" | "vbm" => Some(Kind::Body),
        _ => None,
    }
}

/// Whether `amr` shows more than one factor.
pub fn multi_factor(amr: &[String]) -> bool {
    if amr.iter().any(|a| a == "mfa") {
        return true;
    }
    let kinds: Vec<Kind> = amr.iter().filter_map(|a| kind(a)).collect();
    kinds.iter().any(|k| kinds.iter().any(|other| other != k))
}

/// Whether the sign-in at `auth_time` with `amr` counts as recent MFA at `now`.
pub fn recent(
    amr: &[String],
    auth_time: Option<OffsetDateTime>,
    now: OffsetDateTime,
    max_age: Duration,
) -> bool {
    multi_factor(amr) && auth_time.is_some_and(|t| t <= now && now - t <= max_age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

    fn amr(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn two_kinds_of_factor_or_the_mfa_claim() {
        assert!(multi_factor(&amr(&["mfa"])));
        assert!(multi_factor(&amr(&["pwd", "otp"])));
        assert!(multi_factor(&amr(&["hwk", "fpt"])));
        assert!(!multi_factor(&amr(&["pwd"])));
        assert!(
            !multi_factor(&amr(&["pwd", "pin"])),
            "two things known are one kind"
        );
        assert!(
            !multi_factor(&amr(&["otp", "sms"])),
            "two things held are one kind"
        );
        assert!(!multi_factor(&amr(&["custom", "pwd"])));
        assert!(!multi_factor(&[]));
    }

    #[test]
    fn recent_means_within_the_age_and_not_in_the_future() {
        let age = Duration::minutes(15);
        let mfa = amr(&["pwd", "otp"]);
        assert!(recent(&mfa, Some(NOW - Duration::minutes(15)), NOW, age));
        assert!(!recent(&mfa, Some(NOW - Duration::minutes(16)), NOW, age));
        assert!(!recent(&mfa, Some(NOW + Duration::minutes(1)), NOW, age));
        assert!(!recent(&mfa, None, NOW, age));
        assert!(!recent(&amr(&["pwd"]), Some(NOW), NOW, age));
    }
}
