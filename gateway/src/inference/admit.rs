//! The admission stage: the caller's rate limits, then a reservation of the request's worst-case
//! cost under their spend caps, both held by one [`Admitted`] guard from here on.

use super::guard::Admitted;
use crate::api::body::RawObject;
use crate::auth::token::Identity;
use crate::http::edge::RequestId;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Admits a request that any of `targets` (upstream index, provider model) may serve, or refuses
/// it. The reservation is the worst case at the dearest of them, since failover may reach any.
/// A refused request holds nothing.
pub async fn admit(
    state: &AppState,
    who: &Identity,
    rid: &RequestId,
    model: &str,
    obj: &RawObject,
    body_len: usize,
    targets: &[(usize, String)],
) -> Result<Admitted, ApiError> {
    let stream = obj.stream();
    let limits = state
        .policies
        .as_ref()
        .and_then(|p| p.effective(who).and_then(|e| p.rate_limits(&e)));
    // The guard gives back whatever admission takes, also when admission refuses.
    let mut admitted = Admitted::new(
        state.settler.clone(),
        state.clock.clone(),
        state.meter.clone(),
        model,
    );
    if let Some((index, l)) = &limits {
        crate::spend::ratelimit::admit(
            state,
            &index.to_string(),
            who,
            l,
            obj,
            stream,
            rid.as_str(),
            admitted.limits_mut(),
        )
        .await?;
    }
    if let Some(meter) = &state.meter {
        let estimate = crate::spend::estimate::Estimate::of(obj, body_len);
        let dearest = targets
            .iter()
            .map(|(index, provider_model)| {
                let name = state.config.upstreams[*index].name();
                meter.book.rates(name, provider_model).0
            })
            .max_by_key(|rates| meter.book.worst_case_micros(rates, &estimate));
        if let Some(rates) = dearest {
            let ticket = meter.admit(who, &rates, &estimate).await?;
            admitted.hold_ticket(ticket);
        }
    }
    Ok(admitted)
}
