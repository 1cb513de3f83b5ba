//! Spend: prices, caps, the atomic admission that keeps every user under every cap however many
//! requests run at once, settlement to the actual cost, and the Admin API that sets the caps.

pub mod admin;
pub mod admission;
pub mod caps;
pub mod caps_cache;
pub mod cost_report;
pub mod estimate;
pub mod lease;
pub mod outage;
pub mod periods;
pub mod prices;
pub mod ratelimit;
pub mod settler;
pub mod usage_route;
