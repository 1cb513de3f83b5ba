//! The text walker: a string masked by the value detectors, repeated until nothing more is
//! found, so that masking the result again changes nothing.

use super::budget::Budget;
use super::detect::detect;
use super::kind::{token, Counts};
use super::{Rules, Unmaskable};

/// The most detector passes over one string. A pass after a change can find what the change
/// revealed (the word `secret` brought near a key by masking what stood between); the passes
/// stop as soon as one finds nothing.
pub(crate) const MAX_ROUNDS: usize = 8;

/// `text` masked by value, or `None` when nothing in it is masked.
pub(crate) fn mask(
    text: &str,
    rules: &Rules,
    budget: &mut Budget,
    counts: &mut Counts,
) -> Result<Option<String>, Unmaskable> {
    let mut current: Option<String> = None;
    for _ in 0..MAX_ROUNDS {
        let source = current.as_deref().unwrap_or(text);
        budget.spend(source.len())?;
        let hits = detect(source, rules);
        if hits.is_empty() {
            break;
        }
        let mut out = String::with_capacity(source.len());
        let mut last = 0;
        for hit in hits {
            out.push_str(source.get(last..hit.start).unwrap_or_default());
            out.push_str(&token(hit.kind));
            counts.add(hit.kind);
            last = hit.end;
        }
        out.push_str(source.get(last..).unwrap_or_default());
        current = Some(out);
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_proxy::mask::kind::Kind;

    #[test]
    fn every_detected_value_becomes_a_token_and_is_counted() {
        let rules = Rules::default();
        let mut budget = Budget::for_body(1000);
        let mut counts = Counts::default();
        let text = "id AKIAIOSFODNN7EXAMPLE key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY url postgres://u:pw@h/db";
        let masked = mask(text, &rules, &mut budget, &mut counts)
            .unwrap()
            .unwrap();
        assert_eq!(
            masked,
            "id [MASKED:aws_access_key_id] key [MASKED:aws_secret_access_key] url postgres://u:[MASKED:password]@h/db"
        );
        assert_eq!(counts.get(Kind::AwsAccessKeyId), 1);
        assert_eq!(counts.get(Kind::AwsSecretAccessKey), 1);
        assert_eq!(counts.get(Kind::Password), 1);
        let again = mask(&masked, &rules, &mut budget, &mut counts).unwrap();
        assert_eq!(again, None);
    }

    #[test]
    fn text_beyond_its_budget_is_refused() {
        let mut counts = Counts::default();
        let mut budget = Budget::for_body(0);
        let long = "a".repeat(100 * 1024);
        let out = mask(&long, &Rules::default(), &mut budget, &mut counts);
        assert_eq!(out, Err(Unmaskable::TooMuchWork));
    }

    #[test]
    fn clean_text_is_reported_unchanged() {
        let mut counts = Counts::default();
        let mut budget = Budget::for_body(12);
        let out = mask("nothing here", &Rules::default(), &mut budget, &mut counts);
        assert_eq!(out, Ok(None));
        assert_eq!(counts.total(), 0);
    }
}
