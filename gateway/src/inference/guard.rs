//! The life of one admitted request as a value. Admission takes a hold on a spend lease and rate-limit
//! slots; this guard is the one place they are given back: settled once at the serving upstream's
//! price when the request ends, or released when the guard is dropped first (the client left, every
//! upstream failed, the gateway shut down). Either way the end is queued for the store without
//! waiting, so it also works from `Drop`.

use std::sync::{Arc, Mutex};

use http::HeaderMap;

use crate::api::usage::Usage;
use crate::clock::SharedClock;
use crate::spend::admission::{Meter, Ticket};
use crate::spend::ratelimit::Held;
use crate::spend::settler::{Job, Settler};

/// What an admitted request holds until it ends.
#[derive(Debug)]
pub struct Admitted {
    settler: Settler,
    clock: SharedClock,
    meter: Option<Arc<Meter>>,
    ticket: Option<Ticket>,
    limits: Option<Held>,
    model: String,
    served_by: Option<(String, String)>,
}

impl Admitted {
    /// A guard for a request for `model`, holding nothing yet: admission adds what it takes.
    pub fn new(
        settler: Settler,
        clock: SharedClock,
        meter: Option<Arc<Meter>>,
        model: &str,
    ) -> Self {
        Self {
            settler,
            clock,
            meter,
            ticket: None,
            limits: None,
            model: model.to_owned(),
            served_by: None,
        }
    }

    /// What the request holds under its rate limits, for admission to add to.
    pub fn limits_mut(&mut self) -> &mut Held {
        self.limits.get_or_insert_with(Held::default)
    }

    /// Takes charge of admission's spend ticket.
    pub fn hold_ticket(&mut self, ticket: Ticket) {
        self.ticket = Some(ticket);
    }

    /// Usage headers for the response (empty for an uncapped caller).
    pub fn headers(&self) -> HeaderMap {
        self.ticket
            .as_ref()
            .map(|t| t.headers.clone())
            .unwrap_or_default()
    }

    /// Names the upstream attempt whose price a settlement uses.
    pub fn serving(&mut self, upstream: &str, provider_model: &str) {
        self.served_by = Some((upstream.to_owned(), provider_model.to_owned()));
    }

    /// The request ended having used `usage`: settle at the serving upstream's price.
    pub fn finish(mut self, usage: Usage) {
        self.end(usage);
    }

    /// Shares the guard with a stream's end report; see [`Shared::finish`].
    pub fn share(self) -> Shared {
        Shared(Arc::new(Mutex::new(Some(self))))
    }

    fn end(&mut self, usage: Usage) {
        if let Some(held) = self.limits.take() {
            let tokens = usage
                .input_tokens
                .saturating_add(usage.output_tokens)
                .saturating_add(usage.cache_creation_input_tokens);
            self.settler.submit(Job::Limits(held.done(tokens)));
        }
        if let (Some(meter), Some(ticket)) = (&self.meter, self.ticket.take()) {
            let now = self.clock.now();
            match &self.served_by {
                Some((upstream, provider_model)) => {
                    let charge =
                        meter.settlement(ticket, upstream, provider_model, &self.model, usage, now);
                    if let Some(charge) = charge {
                        self.settler.submit(Job::Spend {
                            charges: vec![charge],
                            give_back: None,
                        });
                    }
                }
                None => meter.release(ticket),
            }
        }
    }
}

impl Drop for Admitted {
    /// Not finished: nothing was served (or what was is unknown), so the hold is released
    /// and the slots freed.
    fn drop(&mut self) {
        self.served_by = None;
        self.end(Usage::default());
    }
}

/// A guard shared between the handler (which keeps it across failover attempts) and the end
/// report of the stream that finally serves the request.
#[derive(Debug, Clone)]
pub struct Shared(Arc<Mutex<Option<Admitted>>>);

impl Shared {
    /// Names the serving attempt.
    pub fn serving(&self, upstream: &str, provider_model: &str) {
        if let Ok(mut g) = self.0.lock() {
            if let Some(a) = g.as_mut() {
                a.serving(upstream, provider_model);
            }
        }
    }

    /// Ends the request with `usage`; only the first call counts.
    pub fn finish(&self, usage: Usage) {
        let taken = self.0.lock().ok().and_then(|mut g| g.take());
        if let Some(a) = taken {
            a.finish(usage);
        }
    }

    /// Usage headers for the response.
    pub fn headers(&self) -> HeaderMap {
        self.0
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(Admitted::headers))
            .unwrap_or_default()
    }
}
