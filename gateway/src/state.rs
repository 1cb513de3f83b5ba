//! The state every handler shares, built once at boot from its parts. The parts never import
//! it back: handlers and layers use `AppState`, the store, keys, relay and policies it holds do
//! not (`tests/layering.rs` checks this).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::oidc::RelyingParty;
use crate::auth::seal::Sealer;
use crate::auth::token::SessionKeys;
use crate::clock::SharedClock;
use crate::config::{Config, Loaded};
use crate::http::access::{Access, AccessRules};
use crate::policy::Policies;
use crate::spend::admission::Meter;
use crate::store::readiness::Readiness;
use crate::store::Store;
use crate::telemetry::audit::Audit;
use crate::telemetry::otel::Otel;
use crate::telemetry::relay::Relay;
use crate::upstream::Upstreams;

/// Shared, cheaply cloned application state.
#[derive(Debug, Clone)]
pub struct AppState(Arc<State>);

impl Deref for AppState {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

/// What lives in [`AppState`].
#[derive(Debug)]
pub struct State {
    /// The validated config.
    pub config: Config,
    /// SHA-256 of the config file as written (before references are expanded).
    pub config_sha256: String,
    /// The gateway's public origin: `listen.public_url`, or the loopback origin it listens on.
    pub origin: String,
    /// The audit stream.
    pub audit: Audit,
    /// Time.
    pub clock: SharedClock,
    /// PostgreSQL.
    pub store: Store,
    /// Session token keys.
    pub keys: SessionKeys,
    /// Client address rules, with where refusals are recorded.
    pub access: Access,
    /// Readiness memory.
    pub readiness: Readiness,
    /// Inference upstreams.
    pub upstreams: Upstreams,
    /// Seals OAuth state and device grants.
    pub sealer: Sealer,
    /// The OpenID Connect relying party.
    pub rp: Option<RelyingParty>,
    /// Group policies (`managed`).
    pub policies: Option<Policies>,
    /// The OTLP relay.
    pub relay: Arc<Relay>,
    /// The gateway's own metrics and traces.
    pub otel: Otel,
    /// Spend metering and caps (with an `admin` block).
    pub meter: Option<Arc<Meter>>,
    /// Prices, for the cost the audit log reports (with or without metering).
    pub prices: crate::spend::prices::PriceBook,
    /// Where requests' ends (settlements, rate-limit accounting) are queued for the store.
    pub settler: crate::spend::settler::Settler,
    /// Where AWS call recordings are queued for the store.
    pub recorder: crate::aws_proxy::recorder::Recorder,
    /// The phases of a stop.
    pub shutdown: crate::shutdown::Shutdown,
    /// Agent access to AWS (with an `aws_access` section).
    pub aws: Option<crate::aws_access::broker::Broker>,
    /// The AWS proxy (with an `aws_access.proxy` section).
    pub aws_proxy: Option<crate::aws_proxy::Proxy>,
    /// The calls of this replica held for approval, woken by a decision taken here.
    pub call_waiters: crate::aws_proxy::held::Waiters,
}

impl AppState {
    /// Builds the state from a loaded config and its parts.
    pub fn new(
        loaded: Loaded,
        audit: Audit,
        clock: SharedClock,
        store: Store,
        upstreams: Upstreams,
    ) -> Result<Self, String> {
        let config = loaded.config;
        let origin = config.listen.origin();
        let issuer = config.listen.public_url.as_ref().map(|_| origin.clone());
        let keys = SessionKeys::new(&config.session.jwt_secret.to_vec(), issuer);
        let access = Access::new(
            AccessRules::from_config(&config),
            audit.clone(),
            clock.clone(),
        );
        let probe = Duration::from_secs(u64::from(config.store.connect_timeout_seconds.min(5)));
        let readiness = Readiness::new(config.store.readiness_grace_seconds, probe);
        let sealer = Sealer::new(&config.session.jwt_secret.to_vec());
        let rp = match &config.oidc {
            Some(o) => Some(RelyingParty::new(o, &origin)?),
            None => None,
        };
        let policies = Policies::new(&config);
        let prices = crate::spend::prices::PriceBook::new(config.pricing.as_ref());
        let relay = Arc::new(Relay::new(
            config.telemetry.as_ref(),
            config.limits.telemetry_in_flight_bytes,
            crate::upstream::anthropic::http_client()?,
        ));
        let otel = Otel::new(
            config.telemetry.as_ref().and_then(|t| t.export.as_ref()),
            relay.clone(),
        )?;
        let settler = crate::spend::settler::Settler::new();
        let meter = Meter::new(
            &config,
            crate::spend::admission::Parts {
                store: store.clone(),
                clock: clock.clone(),
                audit: audit.clone(),
                settler: settler.clone(),
                blocked: otel.m.spend_blocked.clone(),
            },
        )
        .map(Arc::new);
        let aws = config.aws_access.as_ref().map(|a| {
            crate::aws_access::broker::Broker::new(a, &config.session.jwt_secret.to_vec())
        });
        let aws_proxy = match config.aws_access.as_ref().and_then(|a| a.proxy.as_ref()) {
            Some(p) => Some(crate::aws_proxy::Proxy::new(
                p,
                crate::upstream::anthropic::http_client()?,
            )?),
            None => None,
        };
        Ok(Self(Arc::new(State {
            aws,
            aws_proxy,
            config,
            config_sha256: loaded.sha256,
            origin,
            audit,
            clock,
            store,
            keys,
            access,
            readiness,
            upstreams,
            sealer,
            rp,
            policies,
            relay,
            otel,
            prices,
            meter,
            settler,
            recorder: crate::aws_proxy::recorder::Recorder::new(),
            shutdown: crate::shutdown::Shutdown::new(),
            call_waiters: crate::aws_proxy::held::Waiters::default(),
        })))
    }
}
