//! Which caps apply to a user, per period: the user's own cap, else the group caps (the lowest, or
//! the highest with `group_limit_mode: max`), else the organization's, else none. A group or
//! organization cap is a per-seat default, not a shared pool.

use serde::{Deserialize, Serialize};

use super::periods::Period;
use crate::config::GroupLimitMode;

/// Who a cap is set for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// One user (OIDC `sub`).
    User(String),
    /// Every member of an IdP group.
    Group(String),
    /// Everyone.
    Organization,
}

/// A cap as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Its id (`spl_…`).
    pub id: String,
    /// For whom.
    pub scope: Scope,
    /// Cents; `None` is unlimited (and, as a user override, lifts group and organization caps).
    pub amount_cents: Option<i64>,
    /// Which period.
    pub period: Period,
}

/// The cap that applies for one period, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The period.
    pub period: Period,
    /// Cents, `None` = unlimited.
    pub amount_cents: Option<i64>,
    /// The cap row it came from.
    pub limit_id: String,
    /// Its scope.
    pub source: Scope,
}

/// Caps as stored, read into [`Limit`]s (rows with an unknown period are skipped).
pub fn from_rows(rows: Vec<crate::store::spend::LimitRow>) -> Vec<Limit> {
    rows.into_iter()
        .filter_map(|r| {
            let scope = match r.scope_type.as_str() {
                "user" => Scope::User(r.scope_id),
                "rbac_group" => Scope::Group(r.scope_id),
                _ => Scope::Organization,
            };
            Some(Limit {
                id: r.id,
                scope,
                amount_cents: r.amount_cents,
                period: Period::parse(&r.period)?,
            })
        })
        .collect()
}

/// The caps that apply to `sub` in `groups`, one per period that has any.
pub fn effective(
    limits: &[Limit],
    sub: &str,
    groups: &[String],
    mode: GroupLimitMode,
) -> Vec<Effective> {
    let mut out = Vec::new();
    for period in Period::ALL {
        let in_period: Vec<&Limit> = limits.iter().filter(|l| l.period == period).collect();
        let user = in_period
            .iter()
            .find(|l| matches!(&l.scope, Scope::User(u) if u == sub));
        let pick = if let Some(user) = user {
            Some(*user)
        } else {
            let group_caps: Vec<&Limit> = in_period
                .iter()
                .filter(|l| matches!(&l.scope, Scope::Group(g) if groups.contains(g)))
                .copied()
                .collect();
            let chosen = match mode {
                // Lowest cap; an unlimited group does not lift another group's cap.
                GroupLimitMode::Min => group_caps
                    .iter()
                    .filter(|l| l.amount_cents.is_some())
                    .min_by_key(|l| l.amount_cents)
                    .or(group_caps.first()),
                // Highest cap; unlimited wins.
                GroupLimitMode::Max => group_caps
                    .iter()
                    .find(|l| l.amount_cents.is_none())
                    .or_else(|| group_caps.iter().max_by_key(|l| l.amount_cents)),
            };
            chosen.copied().or_else(|| {
                in_period
                    .iter()
                    .find(|l| matches!(l.scope, Scope::Organization))
                    .copied()
            })
        };
        if let Some(l) = pick {
            out.push(Effective {
                period,
                amount_cents: l.amount_cents,
                limit_id: l.id.clone(),
                source: l.scope.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(id: &str, scope: Scope, cents: Option<i64>, period: Period) -> Limit {
        Limit {
            id: id.into(),
            scope,
            amount_cents: cents,
            period,
        }
    }

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn precedence_user_then_group_then_organization() {
        let limits = vec![
            l("org-m", Scope::Organization, Some(10_000), Period::Monthly),
            l(
                "eng-m",
                Scope::Group("eng".into()),
                Some(50_000),
                Period::Monthly,
            ),
            l(
                "ops-m",
                Scope::Group("ops".into()),
                Some(20_000),
                Period::Monthly,
            ),
            l(
                "alice-m",
                Scope::User("alice".into()),
                None,
                Period::Monthly,
            ),
            l("org-d", Scope::Organization, Some(1_000), Period::Daily),
        ];
        let bob = effective(
            &limits,
            "bob",
            &groups(&["eng", "ops"]),
            GroupLimitMode::Min,
        );
        assert_eq!(
            bob.iter()
                .map(|e| (e.period, e.amount_cents, e.limit_id.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (Period::Daily, Some(1_000), "org-d"),
                (Period::Monthly, Some(20_000), "ops-m"),
            ]
        );
        let bob_max = effective(
            &limits,
            "bob",
            &groups(&["eng", "ops"]),
            GroupLimitMode::Max,
        );
        assert_eq!(bob_max[1].amount_cents, Some(50_000));
        let alice = effective(&limits, "alice", &groups(&["eng"]), GroupLimitMode::Min);
        assert_eq!(
            alice[1].amount_cents, None,
            "a user override of null lifts the group cap"
        );
        assert_eq!(alice[1].limit_id, "alice-m");
        let nobody = effective(&limits, "carol", &[], GroupLimitMode::Min);
        assert_eq!(nobody[1].limit_id, "org-m");
        assert!(effective(&[], "x", &[], GroupLimitMode::Min).is_empty());
    }

    #[test]
    fn unlimited_groups_in_max_mode() {
        let limits = vec![
            l("a", Scope::Group("a".into()), Some(100), Period::Daily),
            l("b", Scope::Group("b".into()), None, Period::Daily),
        ];
        assert_eq!(
            effective(&limits, "u", &groups(&["a", "b"]), GroupLimitMode::Max)[0].amount_cents,
            None
        );
        assert_eq!(
            effective(&limits, "u", &groups(&["a", "b"]), GroupLimitMode::Min)[0].amount_cents,
            Some(100)
        );
    }
}
