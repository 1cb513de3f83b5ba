//! Masking by value: detectors that find secrets wherever they appear in a string, whatever the
//! field around them. Each returns the byte ranges to mask with their kind; [`detect`] runs the
//! enabled ones and merges overlapping ranges. Every detector is a hand-written scanner that reads
//! each byte a bounded number of times: no backtracking, linear in the input.

mod assign;
mod aws;
mod conn;
mod contact;
mod jwt;
mod pem;

use super::kind::{is_token, Kind};
use super::Rules;

/// A range of the scanned string to mask, and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte of the range.
    pub end: usize,
    /// What the range holds.
    pub kind: Kind,
}

/// Every range of `text` the enabled detectors want masked, sorted, on character boundaries
/// and without overlap (overlapping ranges become one, with the kind of the one that starts first).
pub fn detect(text: &str, rules: &Rules) -> Vec<Hit> {
    let mut hits = Vec::new();
    let key_ids = aws::access_key_ids(text);
    aws::secret_access_keys(text, &key_ids, &mut hits);
    hits.extend(key_ids);
    pem::private_keys(text, &mut hits);
    jwt::tokens(text, &mut hits);
    conn::url_passwords(text, &mut hits);
    assign::assignments(text, &mut hits);
    if rules.emails_enabled() {
        contact::emails(text, &mut hits);
    }
    if rules.phones_enabled() {
        contact::phones(text, &mut hits);
    }
    merge(text, hits)
}

fn merge(text: &str, mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
    let mut merged: Vec<Hit> = Vec::with_capacity(hits.len());
    for mut hit in hits {
        while hit.start > 0 && !text.is_char_boundary(hit.start) {
            hit.start -= 1;
        }
        hit.end = hit.end.min(text.len());
        while !text.is_char_boundary(hit.end) {
            hit.end += 1;
        }
        if hit.start >= hit.end {
            continue;
        }
        match merged.last_mut() {
            Some(last) if hit.start < last.end => last.end = last.end.max(hit.end),
            _ => merged.push(hit),
        }
    }
    merged
}

/// Whether `text[start..end]` is worth masking: not empty, not already a token.
fn maskable(text: &str, start: usize, end: usize) -> bool {
    text.get(start..end)
        .is_some_and(|v| !v.trim().is_empty() && !is_token(v.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_ranges_merge_and_adjacent_ones_stay_apart() {
        let text = "abcdefghij";
        let hit = |start, end, kind| Hit { start, end, kind };
        let merged = merge(
            text,
            vec![
                hit(5, 7, Kind::Email),
                hit(0, 3, Kind::Jwt),
                hit(2, 4, Kind::Password),
                hit(7, 9, Kind::Phone),
            ],
        );
        assert_eq!(
            merged,
            vec![
                hit(0, 4, Kind::Jwt),
                hit(5, 7, Kind::Email),
                hit(7, 9, Kind::Phone)
            ]
        );
    }

    #[test]
    fn ranges_widen_to_character_boundaries() {
        let text = "aé€b";
        let merged = merge(
            text,
            vec![Hit {
                start: 2,
                end: 4,
                kind: Kind::Secret,
            }],
        );
        assert_eq!(merged[0].start, 1);
        assert_eq!(merged[0].end, 6);
    }
}
