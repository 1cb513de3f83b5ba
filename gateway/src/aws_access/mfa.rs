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

/// How far ahead of the gateway's clock an IdP's `auth_time` may be and still count.
const SKEW: Duration = Duration::seconds(30);

/// When a sign-in with `amr` at `auth_time` (unix seconds) proved multiple factors; `None` when
/// it did not (or said not when). The gateway's session token carries this.
pub fn proven_at(amr: &[String], auth_time: Option<i64>) -> Option<i64> {
    auth_time.filter(|_| multi_factor(amr))
}

/// Whether multi-factor proof at `mfa_at` is recent at `now`.
pub fn recent(mfa_at: Option<OffsetDateTime>, now: OffsetDateTime, max_age: Duration) -> bool {
    mfa_at.is_some_and(|t| t <= now + SKEW && now - t <= max_age)
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
        assert!(recent(Some(NOW - Duration::minutes(15)), NOW, age));
        assert!(!recent(Some(NOW - Duration::minutes(16)), NOW, age));
        assert!(
            recent(Some(NOW + Duration::seconds(30)), NOW, age),
            "a little skew"
        );
        assert!(!recent(Some(NOW + Duration::minutes(1)), NOW, age));
        assert!(!recent(None, NOW, age));
    }

    #[test]
    fn proof_is_the_auth_time_of_a_multi_factor_sign_in() {
        assert_eq!(
            proven_at(&amr(&["pwd", "otp"]), Some(1_700_000_000)),
            Some(1_700_000_000)
        );
        assert_eq!(proven_at(&amr(&["pwd"]), Some(1_700_000_000)), None);
        assert_eq!(proven_at(&amr(&["mfa"]), None), None, "no time, no proof");
    }
}
