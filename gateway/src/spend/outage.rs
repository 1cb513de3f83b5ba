//! A spend check that got no answer met either a store outage or contention inside the gateway (a
//! saturated pool, rows locked by other admissions). Only an outage follows
//! `enforcement.fail_closed_on_error`; contention never admits a capped request unchecked.

use crate::store::StoreError;

/// What kept a spend check from its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The store is unreachable or failing: fail open or closed as configured.
    Outage(String),
    /// The store is up but busy: refuse now, retryable.
    Busy,
}

/// Classifies a failed check: `err` is `None` when the gateway's own wait ran out; `reachable`
/// says whether the database accepted a fresh connection just now (outside the pool).
pub fn classify(err: Option<&StoreError>, reachable: bool) -> Miss {
    let saturated = |why: &str| {
        if reachable {
            Miss::Busy
        } else {
            Miss::Outage(why.to_owned())
        }
    };
    match err {
        None => saturated("no connection to the store answered in time"),
        Some(StoreError::Unavailable(sqlx::Error::PoolTimedOut)) => {
            saturated("no connection to the store could be opened in time")
        }
        Some(StoreError::Unavailable(sqlx::Error::Database(e)))
            if matches!(
                e.code().as_deref(),
                // statement timeout or cancel, lock timeout, serialization failure, deadlock
                Some("57014" | "55P03" | "40001" | "40P01")
            ) =>
        {
            Miss::Busy
        }
        Some(e) => Miss::Outage(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_that_runs_out_while_the_database_answers_is_contention() {
        assert_eq!(classify(None, true), Miss::Busy);
        assert_eq!(
            classify(
                Some(&StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
                true
            ),
            Miss::Busy
        );
    }

    #[test]
    fn an_unreachable_database_or_a_refused_connection_is_an_outage() {
        assert!(matches!(classify(None, false), Miss::Outage(_)));
        assert!(matches!(
            classify(
                Some(&StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
                false
            ),
            Miss::Outage(_)
        ));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            classify(
                Some(&StoreError::Unavailable(sqlx::Error::Io(refused))),
                true
            ),
            Miss::Outage(_)
        ));
        assert!(matches!(
            classify(
                Some(&StoreError::Unavailable(sqlx::Error::PoolClosed)),
                true
            ),
            Miss::Outage(_)
        ));
    }
}
