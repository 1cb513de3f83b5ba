//! When the certificates the deployment made expire: their validity read back from the PEM the
//! state directory keeps, and which of them need renewing within a window (`status` warns,
//! `renew` re-issues).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::SERVER_DAYS;

/// Days before expiry from which `status` warns and `renew` re-issues by default.
pub const RENEW_WITHIN_DAYS: i64 = 30;

/// The validity period (not before, not after) of the first certificate in `pem`.
pub fn validity(pem: &str) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let der = super::der(pem)?;
    let (_, cert, _) = read(&der).filter(|(t, _, _)| *t == 0x30)?;
    let (_, tbs, _) = read(cert).filter(|(t, _, _)| *t == 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = read(rest)?.2; // version
    }
    rest = read(rest)?.2; // serial number
    rest = read(rest)?.2; // signature algorithm
    rest = read(rest)?.2; // issuer
    let (_, validity, _) = read(rest).filter(|(t, _, _)| *t == 0x30)?;
    let (t1, from, after) = read(validity)?;
    let (t2, to, _) = read(after)?;
    Some((asn1_time(t1, from)?, asn1_time(t2, to)?))
}

/// One DER element: (tag, contents, what follows).
fn read(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *der.first()?;
    let first = *der.get(1)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = der.get(2..2 + n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = start.checked_add(len)?;
    Some((tag, der.get(start..end)?, der.get(end..)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn asn1_time(tag: u8, bytes: &[u8]) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(bytes).ok()?.strip_suffix('Z')?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i32>().ok();
    let (year, rest) = match (tag, s.len()) {
        (0x17, 12) => {
            let yy = num(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (0x18, 14) => (num(0..4)?, 4),
        _ => return None,
    };
    let part = |i: usize| num(rest + 2 * i..rest + 2 * i + 2);
    let month = Month::try_from(u8::try_from(part(0)?).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(part(1)?).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(part(2)?).ok()?,
        u8::try_from(part(3)?).ok()?,
        u8::try_from(part(4)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// `2027-01-07`.
pub fn date(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Whole days from `now` to `not_after`, rounded down (negative once it has passed).
pub fn days_left(not_after: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (not_after - now).whole_seconds().div_euclid(86_400)
}

/// The lines `status` prints for the certificates the deployment made, and whether any has
/// expired. When one ends within [`RENEW_WITHIN_DAYS`], the last lines say how to renew:
/// `renew_command` re-issues them.
pub fn report(expiries: &[Expiry], renew_command: &str) -> (Vec<String>, bool) {
    let mut lines: Vec<String> = expiries.iter().map(Expiry::line).collect();
    let expired = expiries.iter().any(|e| e.days_left < 0);
    if expiries.iter().any(|e| e.due(RENEW_WITHIN_DAYS)) {
        lines.push(format!("renew with: {renew_command}"));
        lines.push("  it re-issues what ends within 30 days (and server certificates longer than clients accept) from the deployment's CA and re-imports server certificates under the same ACM ARNs (no stack changes); then give developers their new .ovpn files (VPN) and publish the new gateway fingerprint (self-signed)".to_owned());
    }
    (lines, expired)
}

/// One certificate the deployment made, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// What it is (`gateway certificate claude.corp.example.com`).
    pub label: String,
    /// When it ends.
    pub not_after: OffsetDateTime,
    /// Whole days left at `now` (negative once expired).
    pub days_left: i64,
    /// Whole days from its start to its end, when that is longer than clients accept (a server
    /// certificate made before lifetimes were limited).
    pub too_long: Option<i64>,
}

impl Expiry {
    /// Whether it ends within `days` of now (or already has), or lasts longer than clients
    /// accept.
    pub fn due(&self, days: i64) -> bool {
        self.days_left < days || self.too_long.is_some()
    }

    /// One status line.
    pub fn line(&self) -> String {
        let when = date(self.not_after);
        match self.days_left {
            d if d < 0 => format!("{}: EXPIRED on {when}", self.label),
            d if d < RENEW_WITHIN_DAYS => {
                format!("{}: expires {when}, in {d} day(s): renew it", self.label)
            }
            d => match self.too_long {
                Some(n) => format!(
                    "{}: expires {when} (in {d} days), but lasts {n} days, longer than the {SERVER_DAYS} Apple platforms accept for a TLS server certificate: renew it",
                    self.label
                ),
                None => format!("{}: expires {when} (in {d} days)", self.label),
            },
        }
    }
}

/// Whether a certificate valid from `not_before` to `not_after` is a server certificate longer
/// than clients accept; `Some(its days)` when it is.
pub fn server_too_long(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Option<i64> {
    let days = (not_after - not_before).whole_days();
    (days > SERVER_DAYS).then_some(days)
}

/// The expiry of each `(label, pem, is a server certificate)` at `now`; a PEM that cannot be read
/// is reported as such.
pub fn check(certs: &[(String, String, bool)], now: OffsetDateTime) -> Result<Vec<Expiry>, String> {
    certs
        .iter()
        .map(|(label, pem, server)| {
            let (not_before, not_after) =
                validity(pem).ok_or_else(|| format!("{label}: the certificate cannot be read"))?;
            Ok(Expiry {
                label: label.clone(),
                not_after,
                days_left: days_left(not_after, now),
                too_long: server
                    .then(|| server_too_long(not_before, not_after))
                    .flatten(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::Ca;
    use time::Duration;

    fn at(y: i32, m: u8, d: u8) -> OffsetDateTime {
        Date::from_calendar_date(y, Month::try_from(m).unwrap(), d)
            .unwrap()
            .midnight()
            .assume_utc()
    }

    #[test]
    fn validity_is_read_back_from_the_pem() {
        let now = at(2026, 12, 6);
        let ca = Ca::create("t", now).unwrap();
        let (from, to) = validity(&ca.pem.cert_pem).unwrap();
        assert_eq!(date(from), "2026-12-05");
        assert_eq!(to, ca.not_after);
        // Past 2049, GeneralizedTime.
        let late = Ca::create("t", at(2045, 6, 1)).unwrap();
        assert_eq!(validity(&late.pem.cert_pem).unwrap().1.year(), 2055);
        assert!(validity("not a certificate").is_none());
        assert!(
            validity("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").is_none()
        );
    }

    #[test]
    fn certificates_near_their_end_are_due() {
        let made = at(2026, 1, 1);
        let ca = Ca::create("t", made).unwrap();
        let leaf = ca.server("claude.corp.example.com", made).unwrap();
        let certs = vec![
            (
                "gateway certificate".to_owned(),
                leaf.cert_pem.clone(),
                true,
            ),
            ("CA".to_owned(), ca.pem.cert_pem.clone(), false),
        ];
        let soon = made + Duration::days(380);
        let e = check(&certs, soon).unwrap();
        // 397 days from an hour before `made`: 16 whole days and 23 hours left.
        assert_eq!(e[0].days_left, 16);
        assert!(e[0].due(RENEW_WITHIN_DAYS) && !e[1].due(RENEW_WITHIN_DAYS));
        assert!(
            e[0].line().contains("in 16 day(s): renew it"),
            "{}",
            e[0].line()
        );
        let (lines, expired) = report(&e, "deployer renew --profile p.env");
        assert!(!expired);
        assert!(
            lines
                .iter()
                .any(|l| l == "renew with: deployer renew --profile p.env"),
            "{lines:?}"
        );
        let (lines, _) = report(&e[1..], "deployer renew --profile p.env");
        assert!(!lines.iter().any(|l| l.contains("renew with")), "{lines:?}");
        assert!(e[1].line().contains("(in "), "{}", e[1].line());
        let after = made + Duration::days(400);
        let e = check(&certs, after).unwrap();
        assert!(
            e[0].days_left < 0 && e[0].line().contains("EXPIRED on 2027-"),
            "{}",
            e[0].line()
        );
        assert!(report(&e, "r").1, "an expired certificate is a problem");
        assert!(check(&[("x".into(), "junk".into(), false)], made).is_err());
    }

    #[test]
    fn a_server_certificate_longer_than_clients_accept_is_due() {
        // What earlier releases made: a CA signing six-year leaves.
        let made = at(2024, 1, 1);
        let ca = Ca::create("t", made).unwrap();
        let server = crate::pki::tests::leaf_for_days(&ca, made, 2192);
        let certs = vec![
            ("gateway certificate".to_owned(), server.clone(), true),
            ("VPN client certificate".to_owned(), server, false),
        ];
        let e = check(&certs, at(2026, 12, 6)).unwrap();
        assert_eq!(e[0].too_long, Some(2192));
        assert!(e[0].due(RENEW_WITHIN_DAYS) && !e[1].due(RENEW_WITHIN_DAYS));
        assert!(
            e[0].line()
                .contains("but lasts 2192 days, longer than the 397"),
            "{}",
            e[0].line()
        );
        let (lines, expired) = report(&e, "deployer renew --profile p.env");
        assert!(
            !expired && lines.iter().any(|l| l.starts_with("renew with: ")),
            "{lines:?}"
        );
    }
}
