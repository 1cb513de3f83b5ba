//! Which policies apply to a signed-in user: `groups` (any listed group, exact) and
//! `email_domain` (after the last `@`, case-insensitive), both when both are set; `{}` matches all.

use crate::auth::token::Identity;
use crate::config::PolicyMatch;

/// Whether `m` selects `who`.
pub fn matches(m: &PolicyMatch, who: &Identity) -> bool {
    let groups_ok = m
        .groups
        .as_ref()
        .is_none_or(|gs| gs.iter().any(|g| who.groups.iter().any(|mine| mine == g)));
    let domain_ok = m.email_domain.as_ref().is_none_or(|d| {
        let want = d.trim().trim_start_matches('@');
        who.email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(want))
    });
    groups_ok && domain_ok
}

/// True for the catch-all `match: {}`.
pub fn is_catch_all(m: &PolicyMatch) -> bool {
    m.groups.is_none() && m.email_domain.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(groups: &[&str], email: Option<&str>) -> Identity {
        Identity {
            sub: "u".into(),
            email: email.map(str::to_owned),
            name: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            mfa_at: None,
        }
    }

    #[test]
    fn groups_domains_and_both() {
        let g = PolicyMatch {
            groups: Some(vec!["eng".into(), "ops".into()]),
            email_domain: None,
        };
        assert!(matches(&g, &who(&["ops"], None)));
        assert!(!matches(&g, &who(&["Eng"], None)), "exact, case-sensitive");
        let d = PolicyMatch {
            groups: None,
            email_domain: Some("@Example.com".into()),
        };
        assert!(
            matches(&d, &who(&[], Some("a@b@example.COM"))),
            "after the last @"
        );
        assert!(!matches(&d, &who(&[], Some("a@example.com.evil"))));
        assert!(!matches(&d, &who(&[], None)));
        let both = PolicyMatch {
            groups: Some(vec!["eng".into()]),
            email_domain: Some("example.com".into()),
        };
        assert!(matches(&both, &who(&["eng"], Some("a@example.com"))));
        assert!(!matches(&both, &who(&["eng"], Some("a@other.com"))));
        assert!(matches(&PolicyMatch::default(), &who(&[], None)));
    }
}
