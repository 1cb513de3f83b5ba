//! Personal data, masked only when enabled: email addresses and phone numbers.
//!
//! An email is a local part (1 to 64 of `A-Z a-z 0-9 . _ % + -`, not starting with a dot), `@`,
//! and a domain of letters, digits, `-` and dots with at least two labels, none empty, the last
//! all letters and at least two long.
//!
//! A phone number is a run of digit groups, each optionally in parentheses, separated by one
//! space, `-` or `.` (or nothing after a parenthesis), at most six groups, not glued to a letter,
//! digit or `+ . - / _` before it nor to a letter or digit after it (the longest such run of
//! groups from its start counts), and of one of these shapes:
//!
//! - international: `+` and 8 to 15 digits (E.164), any grouping (`+14155552671`,
//!   `+44 20 7946 0958`, `+49 (0)30 1234567`);
//! - North American: groups of 3, 3 and 4 digits, optionally after a `1` (`(415) 555-2671`,
//!   `415.555.2671`, `1 415 555 2671`);
//! - national with a trunk prefix: starting with `0` and a non-zero digit, 9 to 12 digits, the
//!   first group at least two digits, groups separated by spaces or `-` only, or a single group
//!   of 10 or 11 digits (`020 7946 0958`, `0171-1234567`, `07700900123`; not a 12-digit account
//!   id such as `012345678901`).
//!
//! Dates, times, version numbers, IP addresses, account ids and card numbers match none of these.

use super::Hit;
use crate::aws_proxy::mask::kind::Kind;

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_GROUPS: usize = 6;
const MAX_DIGITS: usize = 15;

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// The email addresses in `text`.
pub(super) fn emails(text: &str, hits: &mut Vec<Hit>) {
    let b = text.as_bytes();
    let mut last_end = 0;
    for at in (0..b.len()).filter(|&p| b[p] == b'@') {
        if at < last_end {
            continue;
        }
        let mut start = at;
        while start > last_end && at - start < MAX_LOCAL && is_local(b[start - 1]) {
            start -= 1;
        }
        while start < at && b[start] == b'.' {
            start += 1;
        }
        let domain_len = b[at + 1..]
            .iter()
            .take(MAX_DOMAIN)
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.'))
            .count();
        let mut end = at + 1 + domain_len;
        while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start < at && valid_domain(&b[at + 1..end]) {
            hits.push(Hit {
                start,
                end,
                kind: Kind::Email,
            });
            last_end = end;
        }
    }
}

fn valid_domain(domain: &[u8]) -> bool {
    let labels: Vec<&[u8]> = domain.split(|c| *c == b'.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty())
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic))
}

/// The phone numbers in `text`.
pub(super) fn phones(text: &str, hits: &mut Vec<Hit>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let starts = (c == b'+' || c == b'(' || c.is_ascii_digit())
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric()
                    || matches!(b[i - 1], b'+' | b'.' | b'-' | b'/' | b'_')));
        if starts {
            if let Some(end) = phone_at(b, i) {
                hits.push(Hit {
                    start: i,
                    end,
                    kind: Kind::Phone,
                });
                i = end;
                continue;
            }
        }
        i += 1;
    }
}

struct Group {
    start: usize,
    len: usize,
    /// One past the group, its closing parenthesis included.
    end: usize,
}

fn phone_at(b: &[u8], start: usize) -> Option<usize> {
    let international = b[start] == b'+';
    let mut j = start + usize::from(international);
    let mut groups: Vec<Group> = Vec::with_capacity(MAX_GROUPS);
    let mut dotted = false;
    loop {
        let paren = b.get(j) == Some(&b'(');
        j += usize::from(paren);
        let group_start = j;
        while j < b.len() && b[j].is_ascii_digit() && j - group_start <= MAX_DIGITS {
            j += 1;
        }
        let len = j - group_start;
        if len == 0 || len > MAX_DIGITS {
            return None;
        }
        if paren {
            if b.get(j) != Some(&b')') {
                return None;
            }
            j += 1;
        }
        groups.push(Group {
            start: group_start,
            len,
            end: j,
        });
        if groups.len() == MAX_GROUPS {
            break;
        }
        let next_opens = |k: usize| b.get(k).is_some_and(|c| c.is_ascii_digit() || *c == b'(');
        match b.get(j) {
            Some(sep @ (b' ' | b'-' | b'.')) if next_opens(j + 1) => {
                dotted |= *sep == b'.';
                j += 1;
            }
            Some(_) if paren && next_opens(j) => {}
            _ => break,
        }
    }
    // The longest run of groups that ends clear of letters and digits and has a phone's shape.
    (1..=groups.len()).rev().find_map(|k| {
        let end = groups[k - 1].end;
        let clear = !b.get(end).is_some_and(u8::is_ascii_alphanumeric);
        (clear && is_phone(b, &groups[..k], international, dotted)).then_some(end)
    })
}

fn is_phone(b: &[u8], groups: &[Group], international: bool, dotted: bool) -> bool {
    let digits: usize = groups.iter().map(|g| g.len).sum();
    if international {
        return (8..=MAX_DIGITS).contains(&digits);
    }
    let lens: Vec<usize> = groups.iter().map(|g| g.len).collect();
    let Some(first) = groups.first() else {
        return false;
    };
    let first_digit = |k: usize| b.get(first.start + k).copied();
    let nanp = lens == [3, 3, 4] || (lens == [1, 3, 3, 4] && first_digit(0) == Some(b'1'));
    let trunk = first_digit(0) == Some(b'0')
        && first_digit(1).is_some_and(|c| c != b'0')
        && first.len >= 2
        && (9..=12).contains(&digits)
        && (groups.len() > 1 || (10..=11).contains(&digits))
        && !dotted;
    nanp || trunk
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str, detector: fn(&str, &mut Vec<Hit>)) -> Vec<&str> {
        let mut hits = Vec::new();
        detector(text, &mut hits);
        hits.iter().map(|h| &text[h.start..h.end]).collect()
    }

    #[test]
    fn email_addresses_are_found() {
        assert_eq!(
            found("mail ana.b+aws@mail.example.com.", emails),
            vec!["ana.b+aws@mail.example.com"]
        );
        assert_eq!(
            found("<a@b.io>,c_d@e.org", emails),
            vec!["a@b.io", "c_d@e.org"]
        );
    }

    #[test]
    fn near_misses_of_emails_are_left_alone() {
        for text in [
            "@example.com",
            "a@localhost",
            "a@b.c",
            "a@b..com",
            "a@.com",
            "a@b.c0m",
            "[MASKED:email]@x",
        ] {
            assert!(found(text, emails).is_empty(), "{text}");
        }
    }

    #[test]
    fn phone_numbers_of_each_shape_are_found() {
        for phone in [
            "+14155552671",
            "+44 20 7946 0958",
            "+49 (0)30 1234567",
            "(415) 555-2671",
            "(415)555-2671",
            "415.555.2671",
            "1 415 555 2671",
            "020 7946 0958",
            "0171-1234567",
            "07700900123",
        ] {
            assert_eq!(
                found(&format!("call {phone}."), phones),
                vec![phone],
                "{phone}"
            );
        }
        assert_eq!(found("12 555-123-4567", phones), vec!["555-123-4567"]);
        assert_eq!(found("+14155552671 0a", phones), vec!["+14155552671"]);
    }

    #[test]
    fn numbers_that_are_not_phones_are_left_alone() {
        for text in [
            "2024-01-15",
            "2024-01-15 10:30:00",
            "192.168.100.200",
            "123456789012",
            "arn:aws:iam::123456789012:role/x",
            "arn:aws:iam::012345678901:role/x",
            "4111 1111 1111 1111",
            "0.1234567890",
            "1700000000",
            "+1234567",
            "x415-555-2671",
            "415-555-2671x",
            "0000000000",
            "1.2.3",
        ] {
            assert!(found(text, phones).is_empty(), "{text}");
        }
    }
}
