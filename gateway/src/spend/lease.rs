//! This replica's spend leases: the pure bookkeeping behind admission under a cap.
//!
//! A lease is a slice of one principal's remaining budget that PostgreSQL reserved for this
//! replica (see `store::leases`). A request whose worst case fits in what the lease has left is
//! admitted here, with no round trip; otherwise the lease grows, in one statement that grants at
//! least the shortfall or refuses. The slice beyond the shortfall follows the principal's recent
//! demand (none for a first request, so a lone request reserves exactly its worst case, as it
//! always did), and PostgreSQL caps it at a quarter of the headroom so replicas leave room for
//! each other. When a request ends its cost is charged to the lease and kept with it; PostgreSQL
//! learns of the charges when the lease is given back (a lease with nothing in flight for [`IDLE`]
//! is), in the same batch; between its requests once they are [`WRITE_EVERY`] old; and at the
//! latest once they are [`WRITE_LATEST`] old.
//!
//! Every total here counts since the lease opened (granted, charged), so the bookkeeping does not
//! depend on when batches reach the store: what the lease has left is `granted − held − charged`.
//! Time is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::store::leases::Charge;
use crate::store::spend::{BucketCap, Totals};

/// How long a lease with nothing in flight is kept before it is given back.
pub const IDLE: Duration = Duration::from_millis(200);
/// A lease's charges this old are written when its last request in flight ends, between its
/// requests rather than while one streams. Longer than [`IDLE`] plus a look for idle leases, so
/// the last charges of a lease going idle are written with it, in one batch.
pub const WRITE_EVERY: Duration = Duration::from_millis(500);
/// A lease that never goes quiet has its charges written once they are this old.
pub const WRITE_LATEST: Duration = Duration::from_secs(2);
/// ...and as soon as this many are waiting.
const WRITE_AT: usize = 1024;
/// At most this many of a request's worst case are leased ahead of demand.
const AHEAD: i64 = 8;
/// Principals with a lease on this replica at once, at most.
pub const MAX_LEASES: usize = 100_000;

/// One lease.
#[derive(Debug)]
struct Lease {
    id: String,
    principal: String,
    buckets: Vec<BucketCap>,
    granted: i64,
    held: i64,
    charged: i64,
    /// The row exists in the store (a grant was seen).
    exists: bool,
    /// Grow statements in flight.
    growing: u32,
    last_used: Instant,
    /// Admissions per second, recently.
    demand: Demand,
    /// Per bucket, everyone else's totals at the last grant, and `charged` then.
    others: Vec<Totals>,
    charged_at_grant: i64,
    /// Charges not yet handed to the store, oldest first, with when each was made.
    unwritten: Vec<(Instant, Charge)>,
}

/// Admissions counted per second: the second now running and the one before it, so the estimate
/// does not fall to nothing each time a new second starts.
#[derive(Debug, Clone, Copy)]
struct Demand {
    /// When the current second started.
    start: Instant,
    now: i64,
    before: i64,
}

impl Demand {
    const SECOND: Duration = Duration::from_secs(1);

    fn new(now: Instant) -> Self {
        Self {
            start: now,
            now: 0,
            before: 0,
        }
    }

    /// Counts an admission at `at`; returns the demand before it: the larger of the running
    /// second's count and the last full second's.
    fn admit(&mut self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.start);
        if since >= Self::SECOND * 2 {
            *self = Self::new(at);
        } else if since >= Self::SECOND {
            self.before = self.now;
            self.now = 0;
            self.start += Self::SECOND;
        }
        let recent = self.now.max(self.before);
        self.now = self.now.saturating_add(1);
        recent
    }
}

impl Lease {
    fn new(id: String, principal: &str, buckets: &[BucketCap], now: Instant) -> Self {
        Self {
            id,
            principal: principal.to_owned(),
            buckets: buckets.to_vec(),
            granted: 0,
            held: 0,
            charged: 0,
            exists: false,
            growing: 0,
            last_used: now,
            demand: Demand::new(now),
            others: vec![Totals::default(); buckets.len()],
            charged_at_grant: 0,
            unwritten: Vec::new(),
        }
    }

    fn left(&self) -> i64 {
        self.granted
            .saturating_sub(self.held)
            .saturating_sub(self.charged)
    }

    /// The totals each bucket had before a request now admitted: everyone else's at the last
    /// grant, plus what this lease charged since and holds.
    fn before(&self) -> Vec<Totals> {
        let charged = self.charged.saturating_sub(self.charged_at_grant);
        self.others
            .iter()
            .map(|t| Totals {
                settled: t.settled.saturating_add(charged),
                reserved: t.reserved.saturating_add(self.held),
            })
            .collect()
    }

    /// Takes the charges at least `age` old (all of them when they piled up).
    fn take_older(&mut self, now: Instant, age: Duration) -> impl Iterator<Item = Charge> + '_ {
        let n = if self.unwritten.len() >= WRITE_AT {
            self.unwritten.len()
        } else {
            self.unwritten
                .iter()
                .take_while(|(t, _)| now.saturating_duration_since(*t) >= age)
                .count()
        };
        self.unwritten.drain(..n).map(|(_, c)| c)
    }

    fn idle(&self, now: Instant) -> bool {
        self.held <= 0 && self.growing == 0 && now.duration_since(self.last_used) >= IDLE
    }
}

/// What admission does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Admitted against the lease: the request holds its worst case there.
    Admitted {
        /// The lease.
        lease: String,
        /// Each bucket's totals before this request (for the usage headers).
        before: Vec<Totals>,
    },
    /// The lease must grow first: ask the store, then call [`Book::granted`] or [`Book::failed`].
    Grow {
        /// The lease.
        lease: String,
        /// Grant at least this much.
        need: i64,
        /// Up to this much.
        want: i64,
        /// Whether the lease row exists already.
        existing: bool,
    },
    /// No lease can be opened now (too many principals hold one here, or no id could be drawn);
    /// retry shortly.
    Full,
}

/// What a grant did for the request that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    /// The request is admitted.
    Admitted(Vec<Totals>),
    /// Others took what was granted meanwhile: grow again.
    Again,
    /// The lease is no longer kept here: give it back to the store.
    Gone,
}

/// A lease to give back to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    /// The lease.
    pub lease: String,
    /// Whose.
    pub principal: String,
    /// Its buckets.
    pub buckets: Vec<String>,
}

/// This replica's leases, by principal; leases replaced before they went idle (the caps or the
/// period changed) wait in `retired` until their requests end.
#[derive(Debug, Default)]
pub struct Book {
    open: HashMap<String, Lease>,
    retired: HashMap<String, Lease>,
}

impl Book {
    /// Admits a request of worst case `worst` for `principal` under `buckets`, or says how the
    /// lease must grow. `new_id` names a lease opened here.
    pub fn admit(
        &mut self,
        principal: &str,
        buckets: &[BucketCap],
        worst: i64,
        now: Instant,
        new_id: impl FnOnce() -> Option<String>,
    ) -> Step {
        if self
            .open
            .get(principal)
            .is_some_and(|l| !same(&l.buckets, buckets))
        {
            if let Some(old) = self.open.remove(principal) {
                self.retired.insert(old.id.clone(), old);
            }
        }
        if !self.open.contains_key(principal) {
            let id = match new_id() {
                Some(id) if self.open.len() < MAX_LEASES => id,
                _ => return Step::Full,
            };
            self.open.insert(
                principal.to_owned(),
                Lease::new(id, principal, buckets, now),
            );
        }
        let Some(lease) = self.open.get_mut(principal) else {
            return Step::Full;
        };
        lease.last_used = now;
        let recent = lease.demand.admit(now);
        let left = lease.left();
        if left >= worst {
            let before = lease.before();
            lease.held = lease.held.saturating_add(worst);
            return Step::Admitted {
                lease: lease.id.clone(),
                before,
            };
        }
        lease.growing += 1;
        let need = worst.saturating_sub(left.max(0));
        Step::Grow {
            lease: lease.id.clone(),
            need,
            want: need.saturating_add(worst.saturating_mul(recent.min(AHEAD))),
            existing: lease.exists,
        }
    }

    /// The store granted `give` more to `lease`, asked for by a request of worst case `worst`;
    /// `others` are the buckets' totals without this lease.
    pub fn granted(
        &mut self,
        principal: &str,
        lease: &str,
        give: i64,
        others: Vec<Totals>,
        worst: i64,
        now: Instant,
    ) -> Granted {
        let Some(l) = self.find(principal, lease) else {
            return Granted::Gone;
        };
        l.growing = l.growing.saturating_sub(1);
        l.exists = true;
        l.granted = l.granted.saturating_add(give);
        l.others = others;
        l.charged_at_grant = l.charged;
        l.last_used = now;
        if l.left() >= worst {
            let before = l.before();
            l.held = l.held.saturating_add(worst);
            Granted::Admitted(before)
        } else {
            Granted::Again
        }
    }

    /// A grant that arrived after its request stopped waiting: the lease keeps it (and gives it
    /// back when idle). False when the lease is no longer kept here: give it back to the store.
    pub fn granted_late(&mut self, principal: &str, lease: &str, give: i64, now: Instant) -> bool {
        match self.find(principal, lease) {
            Some(l) => {
                l.growing = l.growing.saturating_sub(1);
                l.exists = true;
                l.granted = l.granted.saturating_add(give);
                l.last_used = now;
                true
            }
            None => false,
        }
    }

    /// Growing `lease` got no grant: refused, failed, or `lost` (its row expired, so it is
    /// dropped and the next request opens a new one).
    pub fn failed(&mut self, principal: &str, lease: &str, lost: bool) {
        if let Some(l) = self.find(principal, lease) {
            l.growing = l.growing.saturating_sub(1);
            if lost {
                l.exists = false;
            }
        }
        if lost && self.open.get(principal).is_some_and(|l| l.id == lease) {
            if let Some(l) = self.open.remove(principal) {
                self.retired.insert(l.id.clone(), l);
            }
        }
    }

    /// A request admitted against `lease` with worst case `worst` ended having cost `cost`; its
    /// `charge` (none when nothing was served) is kept with the lease, or handed back when the
    /// lease is no longer kept here.
    pub fn ended(
        &mut self,
        principal: &str,
        lease: &str,
        worst: i64,
        cost: i64,
        charge: Option<Charge>,
        now: Instant,
    ) -> Option<Charge> {
        let Some(l) = self.find(principal, lease) else {
            return charge;
        };
        l.held = l.held.saturating_sub(worst);
        l.charged = l.charged.saturating_add(cost);
        l.last_used = now;
        if let Some(c) = charge {
            l.unwritten.push((now, c));
        }
        None
    }

    /// Takes the charges of leases that are [`WRITE_LATEST`] old, or all of a lease's when they
    /// piled up.
    pub fn take_due(&mut self, now: Instant) -> Vec<Charge> {
        let mut out = Vec::new();
        for l in self.open.values_mut().chain(self.retired.values_mut()) {
            out.extend(l.take_older(now, WRITE_LATEST));
        }
        out
    }

    /// Takes the charges [`WRITE_EVERY`] old of `lease` when nothing is in flight on it: the
    /// moment between a user's requests.
    pub fn take_quiet(&mut self, principal: &str, lease: &str, now: Instant) -> Vec<Charge> {
        match self.find(principal, lease) {
            Some(l) if l.held <= 0 => l.take_older(now, WRITE_EVERY).collect(),
            _ => Vec::new(),
        }
    }

    /// Takes the leases idle since [`IDLE`] before `now` (all of them with `all`): each with the
    /// charges still kept with it, and the lease itself to give back when the store holds it.
    pub fn take_idle(&mut self, now: Instant, all: bool) -> Vec<(Option<Given>, Vec<Charge>)> {
        let mut out = Vec::new();
        let idle: Vec<String> = self
            .open
            .iter()
            .filter(|(_, l)| all || l.idle(now))
            .map(|(p, _)| p.clone())
            .collect();
        let mut gone: Vec<Lease> = idle.iter().filter_map(|p| self.open.remove(p)).collect();
        let done: Vec<String> = self
            .retired
            .iter()
            .filter(|(_, l)| all || l.idle(now))
            .map(|(id, _)| id.clone())
            .collect();
        gone.extend(done.iter().filter_map(|id| self.retired.remove(id)));
        for l in gone {
            let given = l.exists.then(|| Given {
                lease: l.id,
                principal: l.principal,
                buckets: l.buckets.into_iter().map(|b| b.bucket).collect(),
            });
            if given.is_some() || !l.unwritten.is_empty() {
                out.push((given, l.unwritten.into_iter().map(|(_, c)| c).collect()));
            }
        }
        out
    }

    /// Leases held here.
    pub fn len(&self) -> usize {
        self.open.len() + self.retired.len()
    }

    /// Whether no lease is held here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn find(&mut self, principal: &str, lease: &str) -> Option<&mut Lease> {
        match self.open.get_mut(principal) {
            Some(l) if l.id == lease => Some(l),
            _ => self.retired.get_mut(lease),
        }
    }
}

/// Whether two bucket lists are the same periods under the same caps.
fn same(a: &[BucketCap], b: &[BucketCap]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.bucket == y.bucket && x.cap_micros == y.cap_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(daily: Option<i64>) -> Vec<BucketCap> {
        vec![
            BucketCap {
                bucket: "d:2026-12-07".into(),
                cap_micros: daily,
            },
            BucketCap {
                bucket: "m:2026-12".into(),
                cap_micros: None,
            },
        ]
    }

    fn ids() -> impl FnMut() -> Option<String> {
        let mut n = 0;
        move || {
            n += 1;
            Some(format!("lse_{n}"))
        }
    }

    /// Grants what was asked, as a store with room would.
    fn grant(book: &mut Book, step: Step, worst: i64, now: Instant) -> Granted {
        let Step::Grow { lease, want, .. } = step else {
            panic!("expected a grow, got {step:?}")
        };
        book.granted("u", &lease, want, vec![Totals::default(); 2], worst, now)
    }

    #[test]
    fn demand_carries_the_last_second_over_into_the_next() {
        let start = Instant::now();
        let mut d = Demand::new(start);
        let at = |ms: u64| start + Duration::from_millis(ms);
        let seen: Vec<i64> = [0, 100, 200, 300]
            .iter()
            .map(|&ms| d.admit(at(ms)))
            .collect();
        assert_eq!(seen, [0, 1, 2, 3]);
        // A new second starts: the last one's four still count, until this one has more.
        assert_eq!(d.admit(at(1_050)), 4);
        assert_eq!(d.admit(at(1_100)), 4);
        // A quiet second: the one before it counts.
        assert_eq!(d.admit(at(2_100)), 2);
        // After two quiet seconds, nothing.
        assert_eq!(d.admit(at(5_000)), 0);
        assert_eq!(d.admit(at(5_001)), 1);
    }

    #[test]
    fn a_lone_request_leases_exactly_its_worst_case() {
        let mut book = Book::default();
        let now = Instant::now();
        let step = book.admit("u", &caps(Some(1_000_000)), 700, now, ids());
        assert_eq!(
            step,
            Step::Grow {
                lease: "lse_1".into(),
                need: 700,
                want: 700,
                existing: false
            }
        );
    }

    #[test]
    fn a_steady_caller_grows_rarely_and_is_admitted_without_the_store() {
        let mut book = Book::default();
        let mut next = ids();
        let start = Instant::now();
        let mut grows = 0;
        for i in 0..100u64 {
            let now = start + Duration::from_millis(i * 5);
            let step = book.admit("u", &caps(Some(1_000_000_000)), 700, now, &mut next);
            let lease = match step {
                Step::Admitted { lease, .. } => lease,
                grow @ Step::Grow { .. } => {
                    grows += 1;
                    let lease = match &grow {
                        Step::Grow { lease, .. } => lease.clone(),
                        _ => unreachable!(),
                    };
                    assert!(matches!(
                        grant(&mut book, grow, 700, now),
                        Granted::Admitted(_)
                    ));
                    lease
                }
                Step::Full => panic!("full"),
            };
            book.ended("u", &lease, 700, 300, None, now);
        }
        assert!(grows <= 15, "100 requests, {grows} trips to the store");
        assert_eq!(book.len(), 1, "one lease serves them all");
    }

    #[test]
    fn what_is_in_flight_and_charged_counts_against_the_lease() {
        let mut book = Book::default();
        let now = Instant::now();
        let step = book.admit("u", &caps(Some(10_000)), 1_000, now, ids());
        let Step::Grow { lease, .. } = step.clone() else {
            panic!("{step:?}")
        };
        // Granted 2,500: this request holds 1,000, 1,500 are left.
        assert!(matches!(
            book.granted("u", &lease, 2_500, vec![Totals::default(); 2], 1_000, now),
            Granted::Admitted(_)
        ));
        assert!(matches!(
            book.admit("u", &caps(Some(10_000)), 1_000, now, ids()),
            Step::Admitted { .. }
        ));
        // 500 are left: a third request needs 500 more.
        match book.admit("u", &caps(Some(10_000)), 1_000, now, ids()) {
            Step::Grow { need, existing, .. } => {
                assert_eq!(need, 500);
                assert!(existing);
            }
            other => panic!("{other:?}"),
        }
        book.failed("u", &lease, false);
        // The first ends costing more than its worst case: the lease is overdrawn, and the next
        // request's need covers the overdraft.
        book.ended("u", &lease, 1_000, 2_000, None, now);
        match book.admit("u", &caps(Some(10_000)), 1_000, now, ids()) {
            Step::Grow { need, .. } => assert_eq!(need, 1_000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_grant_others_used_up_is_asked_for_again() {
        let mut book = Book::default();
        let now = Instant::now();
        let first = book.admit("u", &caps(Some(10_000)), 1_000, now, ids());
        let Step::Grow { lease, .. } = first else {
            panic!()
        };
        // While the first waits, a second asks too; its grant arrives first and covers both.
        let second = book.admit("u", &caps(Some(10_000)), 1_000, now, ids());
        assert!(matches!(second, Step::Grow { .. }));
        assert!(matches!(
            book.granted("u", &lease, 1_000, vec![Totals::default(); 2], 1_000, now),
            Granted::Admitted(_)
        ));
        assert_eq!(
            book.granted("u", &lease, 0, vec![Totals::default(); 2], 1_000, now),
            Granted::Again,
            "nothing left for the first: it grows again"
        );
    }

    #[test]
    fn idle_leases_go_back_and_busy_ones_stay() {
        let mut book = Book::default();
        let now = Instant::now();
        let step = book.admit("u", &caps(Some(10_000)), 1_000, now, ids());
        assert!(matches!(
            grant(&mut book, step, 1_000, now),
            Granted::Admitted(_)
        ));
        let later = now + IDLE * 4;
        assert!(
            book.take_idle(later, false).is_empty(),
            "a request is in flight"
        );
        book.ended("u", "lse_1", 1_000, 10, None, now);
        assert!(
            book.take_idle(now + IDLE / 2, false).is_empty(),
            "not idle long enough"
        );
        let back = book.take_idle(later, false);
        assert_eq!(
            back,
            vec![(
                Some(Given {
                    lease: "lse_1".into(),
                    principal: "u".into(),
                    buckets: vec!["d:2026-12-07".into(), "m:2026-12".into()],
                }),
                Vec::new()
            )]
        );
        assert!(book.is_empty());
        // A grant arriving for a lease no longer kept is given back by the caller.
        assert!(!book.granted_late("u", "lse_1", 500, later));
    }

    #[test]
    fn new_caps_or_a_new_period_open_a_new_lease_and_retire_the_old() {
        let mut book = Book::default();
        let now = Instant::now();
        let step = book.admit("u", &caps(Some(10_000)), 1_000, now, ids());
        assert!(matches!(
            grant(&mut book, step, 1_000, now),
            Granted::Admitted(_)
        ));
        // The cap was lowered: the old lease's budget must not admit under the new cap.
        let next = || Some("lse_2".to_owned());
        match book.admit("u", &caps(Some(5_000)), 1_000, now, next) {
            Step::Grow {
                lease, existing, ..
            } => {
                assert_eq!(lease, "lse_2");
                assert!(!existing);
            }
            other => panic!("{other:?}"),
        }
        book.failed("u", "lse_2", false);
        // The retired lease still settles its request, then goes back when idle.
        book.ended("u", "lse_1", 1_000, 10, None, now);
        let back: Vec<String> = book
            .take_idle(now + IDLE, false)
            .into_iter()
            .filter_map(|(g, _)| g.map(|g| g.lease))
            .collect();
        assert_eq!(
            back,
            vec!["lse_1".to_owned()],
            "lse_2 was never granted: nothing to give back"
        );
    }

    #[test]
    fn a_lost_lease_is_replaced() {
        let mut book = Book::default();
        let now = Instant::now();
        let step = book.admit("u", &caps(Some(10_000)), 1_000, now, ids());
        assert!(matches!(
            grant(&mut book, step, 1_000, now),
            Granted::Admitted(_)
        ));
        book.ended("u", "lse_1", 1_000, 1_000, None, now);
        let next = || Some("lse_2".to_owned());
        let step = book.admit("u", &caps(Some(10_000)), 1_000, now, next);
        assert!(matches!(step, Step::Grow { ref lease, existing: true, .. } if lease == "lse_1"));
        book.failed("u", "lse_1", true);
        match book.admit("u", &caps(Some(10_000)), 1_000, now, next) {
            Step::Grow {
                lease, existing, ..
            } => {
                assert_eq!((lease.as_str(), existing), ("lse_2", false));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            book.take_idle(now + IDLE, true)
                .iter()
                .all(|(g, _)| g.as_ref().is_none_or(|g| g.lease != "lse_1")),
            "the store no longer holds the lost lease: nothing to give back"
        );
    }

    fn a_charge(cost: i64) -> Charge {
        Charge {
            principal: "u".into(),
            buckets: vec!["d:2026-12-07".into()],
            lease: Some("lse_1".into()),
            cost,
            ledger: None,
        }
    }

    #[test]
    fn charges_wait_with_their_lease_and_go_with_it_or_when_due() {
        let mut book = Book::default();
        let now = Instant::now();
        let step = book.admit("u", &caps(Some(10_000)), 1_000, now, ids());
        assert!(matches!(
            grant(&mut book, step, 1_000, now),
            Granted::Admitted(_)
        ));
        assert_eq!(
            book.ended("u", "lse_1", 1_000, 10, Some(a_charge(10)), now),
            None
        );
        assert!(matches!(
            book.admit("u", &caps(Some(10_000)), 10, now, ids()),
            Step::Admitted { .. }
        ));
        let soon = now + WRITE_EVERY / 2;
        assert!(book.take_due(soon).is_empty(), "not due yet");
        assert_eq!(
            book.ended("u", "lse_1", 10, 20, Some(a_charge(20)), soon),
            None
        );
        assert_eq!(
            book.take_due(now + WRITE_LATEST),
            vec![a_charge(10)],
            "a busy lease's charges are written once old enough; newer ones wait"
        );
        let back = book.take_idle(soon + IDLE, false);
        assert_eq!(back.len(), 1);
        assert_eq!(
            back[0].1,
            vec![a_charge(20)],
            "the last charges go with the lease"
        );
        assert_eq!(
            book.ended("u", "lse_1", 1_000, 30, Some(a_charge(30)), now),
            Some(a_charge(30)),
            "a charge for a lease no longer kept is handed back to be written on its own"
        );
    }

    #[test]
    fn between_requests_the_older_charges_are_written() {
        let mut book = Book::default();
        let now = Instant::now();
        let step = book.admit("u", &caps(Some(10_000)), 100, now, ids());
        assert!(matches!(
            grant(&mut book, step, 100, now),
            Granted::Admitted(_)
        ));
        book.ended("u", "lse_1", 100, 10, Some(a_charge(10)), now);
        let later = now + WRITE_EVERY;
        assert!(matches!(
            book.admit("u", &caps(Some(10_000)), 10, later, ids()),
            Step::Admitted { .. }
        ));
        assert!(
            book.take_quiet("u", "lse_1", later).is_empty(),
            "a request is in flight: its relay is not the moment"
        );
        book.ended("u", "lse_1", 10, 20, Some(a_charge(20)), later);
        assert_eq!(
            book.take_quiet("u", "lse_1", later),
            vec![a_charge(10)],
            "nothing in flight: the old charge goes, the new one waits for the lease's end"
        );
    }

    #[test]
    fn the_number_of_leases_is_bounded() {
        let mut book = Book::default();
        let now = Instant::now();
        for i in 0..MAX_LEASES {
            let step = book.admit(&format!("u{i}"), &caps(Some(10)), 1, now, || {
                Some(format!("l{i}"))
            });
            assert!(matches!(step, Step::Grow { .. }));
        }
        assert_eq!(
            book.admit("one-more", &caps(Some(10)), 1, now, ids()),
            Step::Full
        );
    }
}
