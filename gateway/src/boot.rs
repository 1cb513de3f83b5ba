//! The boot sequence: audit the config, reach the store and migrate it, bind the port, serve, and
//! drain on SIGTERM. Everything that can fail fails here, before the first request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Admin, Env, Loaded};
use crate::server;
use crate::shutdown::{Phase, Shutdown};
use crate::state::AppState;
use crate::store::{connect_options, spawn_sweeper, Retention, Store, StoreError};
use crate::telemetry::audit::Audit;
use crate::upstream::Upstreams;

/// Default drain window on SIGTERM.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(25);
/// After the drain, how long the store gets to take what requests left to write.
const SETTLE_WINDOW: Duration = Duration::from_secs(10);
/// The variable that overrides the drain window, in milliseconds.
pub const DRAIN_VAR: &str = "CLAUDE_GATEWAY_DRAIN_TIMEOUT_MS";

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A setting outside gateway.yaml is wrong.
    #[error("{0}")]
    Setting(String),
    /// The store could not be reached or migrated.
    #[error(
        "could not prepare Postgres: {0}. Check store.postgres_url (or the GATEWAY_PG_* variables)"
    )]
    Store(#[from] StoreError),
    /// TLS files.
    #[error(transparent)]
    Tls(#[from] server::TlsError),
    /// The port could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads the drain window from the environment.
pub fn drain_window(env: &dyn Env) -> Result<Duration, BootError> {
    match env.var(DRAIN_VAR) {
        None => Ok(DEFAULT_DRAIN),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
            _ => Err(BootError::Setting(format!(
                "{DRAIN_VAR} must be a positive whole number of milliseconds"
            ))),
        },
    }
}

/// Boots and serves until a shutdown signal; `source` names where the config came from.
pub async fn run(loaded: Loaded, source: &str, env: &dyn Env) -> Result<(), BootError> {
    serve(loaded, source, env, Stop::Signals).await
}

/// Boots and serves until `stop` resolves, then drains as on a first SIGTERM. The process's
/// signals are left to the caller (a program that runs the gateway among other parts and stops
/// them all in its own order).
pub async fn run_until<F>(
    loaded: Loaded,
    source: &str,
    env: &dyn Env,
    stop: F,
) -> Result<(), BootError>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    serve(loaded, source, env, Stop::When(Box::pin(stop))).await
}

/// What starts the drain.
enum Stop {
    /// SIGTERM or SIGINT; a second one exits at once.
    Signals,
    /// This future resolving.
    When(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
}

async fn serve(loaded: Loaded, source: &str, env: &dyn Env, stop: Stop) -> Result<(), BootError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let audit = Audit::stdout();
    audit.emit(
        "config.load",
        clock.now(),
        serde_json::json!({"path": source, "sha256": loaded.sha256}),
    );
    let drain = drain_window(env)?;
    let cfg = &loaded.config;

    let tls = match &cfg.listen.tls {
        Some(t) => Some(server::tls_acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let options =
        connect_options(&cfg.store, env).map_err(|e| BootError::Setting(e.to_string()))?;
    let timeout = Duration::from_secs(u64::from(cfg.store.connect_timeout_seconds));
    let store = Store::connect(
        options,
        cfg.store.max_connections,
        timeout,
        3,
        Duration::from_secs(2),
    )
    .await?;
    store.migrate().await?;
    tracing::info!("store ready: migrations applied");

    let addr = format!("{}:{}", cfg.listen.host, cfg.listen.port);
    let listener = bind(&addr).await?;
    let local = listener.local_addr().map_err(|source| BootError::Bind {
        addr: addr.clone(),
        source,
    })?;

    let upstreams = Upstreams::build(cfg, env, clock.clone())
        .await
        .map_err(|e| BootError::Setting(e.to_string()))?;
    let state = AppState::new(loaded, audit, clock.clone(), store.clone(), upstreams)
        .map_err(BootError::Setting)?;
    state.readiness.ok_at(clock.now().unix_timestamp());
    log_banner(&state, local, tls.is_some(), env);

    // Background tasks stop once the last request has ended.
    let (stop_tx, stop_rx) = watch::channel(false);
    let admin = state.config.admin.as_ref();
    let retention = Retention {
        admin: admin.map(|a| {
            (
                a.spend_retention_months,
                a.audit_retention_days,
                a.identity_retention_days,
            )
        }),
        // The agent-access trail is kept as long as the admin trail, also without `admin`.
        aws_days: state
            .config
            .aws_access
            .as_ref()
            .map(|_| admin.map_or(Admin::default_audit_days(), |a| a.audit_retention_days)),
        aws_proxy: state
            .config
            .aws_access
            .as_ref()
            .and_then(|a| a.proxy.as_ref())
            .map(|p| (p.recording.retention_days, p.limits.window_seconds)),
    };
    let sweeper = spawn_sweeper(store.clone(), clock.clone(), retention, stop_rx.clone());
    let settler = state
        .settler
        .spawn(store.clone(), clock.clone(), stop_rx.clone());
    let returns = state
        .meter
        .as_ref()
        .map(|m| m.spawn_returns(stop_rx.clone()));
    if state.meter.is_some() {
        // The first capped request then finds a lease connection open.
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.warm_leases().await {
                tracing::warn!("could not open a spend lease connection ahead of requests: {e}");
            }
        });
    }
    let recorder = state.recorder.spawn(store.clone(), stop_rx);
    let shutdown = state.shutdown.clone();
    match stop {
        Stop::Signals => {
            tokio::spawn(watch_signals(shutdown.clone(), drain));
        }
        Stop::When(when) => {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                when.await;
                tracing::info!(
                    "stopping: refusing new connections; open requests get up to {} ms to finish",
                    drain.as_millis()
                );
                shutdown.advance(Phase::Draining);
            });
        }
    }

    let kept = state.clone();
    let client = server::ClientTimeouts {
        header_read: Duration::from_millis(state.config.timeouts.client_header_read_ms),
        write_stall: Duration::from_millis(state.config.timeouts.client_write_stall_ms),
    };
    // The accept loop runs on a runtime worker, not on the thread that boots: a new connection
    // then starts where the runtime noticed it, without a hand-off to this thread and back.
    let serving = tokio::spawn(server::serve(
        listener,
        tls,
        crate::app::router(state),
        shutdown,
        drain,
        client,
    ));
    // A panic in the loop itself is not a clean drain.
    let finished = serving.await.unwrap_or(false);
    if finished {
        tracing::info!("shutdown complete: every open request finished, none was cut");
    } else {
        tracing::warn!(
            "drain window over after {} ms: open streams were ended with an in-band error",
            drain.as_millis()
        );
    }
    // Every request has ended (or been cut): write their ends, then close the store.
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    let _ = settler.await;
    if let Some(returns) = returns {
        let _ = returns.await;
    }
    // No request is open: every lease goes back with the last costs charged to it.
    if let Some(meter) = &kept.meter {
        meter.return_all();
    }
    let left = kept.settler.drain(&store, &clock, SETTLE_WINDOW).await;
    if left > 0 {
        tracing::error!("{left} request ends (spend settlements, stream slots) could not be written before exit");
    } else {
        tracing::info!("every request's spend and rate-limit accounting is written");
    }
    let _ = recorder.await;
    let left = kept.recorder.drain(&store, SETTLE_WINDOW).await;
    if left > 0 {
        tracing::warn!("{left} AWS call recordings could not be written before exit (their aws.call audit lines have the calls)");
    }
    tokio::task::spawn_blocking(move || kept.otel.shutdown())
        .await
        .ok();
    store.close().await;
    Ok(())
}

async fn bind(addr: &str) -> Result<TcpListener, BootError> {
    let sock: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(addr)
            .await
            .ok()
            .and_then(|mut it| it.next())
            .ok_or_else(|| BootError::Setting(format!("listen.host: cannot resolve {addr}")))?,
    };
    TcpListener::bind(sock)
        .await
        .map_err(|source| BootError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

fn log_banner(state: &AppState, local: SocketAddr, tls: bool, env: &dyn Env) {
    let c = &state.config;
    let scheme = if tls { "https" } else { "http" };
    tracing::info!(
        "claude-gateway {} listening on {scheme}://{local}",
        env!("CARGO_PKG_VERSION")
    );
    tracing::info!("public origin: {}", state.origin);
    if c.listen.trusted_proxies.is_empty() {
        tracing::info!("client IPs: TCP peer address (listen.trusted_proxies empty)");
    } else {
        tracing::info!(
            "client IPs: X-Forwarded-For through {} trusted proxies",
            c.listen.trusted_proxies.len()
        );
    }
    if c.access_control.allow_cidrs.is_empty() {
        tracing::warn!(
            "access_control.allow_cidrs is empty: any address that reaches the port may sign in"
        );
    }
    if let Some(oidc) = c.oidc.as_ref().filter(|o| o.use_proxy.is_none()) {
        let proxy = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
            .into_iter()
            .find(|name| env.var(name).is_some_and(|v| !v.is_empty()));
        if let Some(name) = proxy {
            tracing::info!(
                "IdP calls to {} go straight to it, not through the proxy in {name}: set oidc.use_proxy: true to route them through it",
                oidc.issuer
            );
        }
    }
    for warning in state.policies.iter().flat_map(|p| p.lint()) {
        tracing::warn!("{warning}");
    }
    let ups: Vec<String> = c
        .upstreams
        .iter()
        .map(|u| format!("{}({})", u.name(), u.provider.as_str()))
        .collect();
    tracing::info!("upstreams {}: {}", ups.len(), ups.join(", "));
}

/// First SIGTERM or SIGINT starts the drain; a second one exits at once.
async fn watch_signals(stop: Shutdown, drain: Duration) {
    let mut count = 0;
    loop {
        if !next_signal().await {
            return;
        }
        count += 1;
        if count == 1 {
            tracing::info!(
                "shutdown signal received: refusing new connections; open requests get up to {} ms to finish (set by {DRAIN_VAR})",
                drain.as_millis()
            );
            stop.advance(Phase::Draining);
        } else {
            tracing::warn!("second shutdown signal: exiting now");
            std::process::exit(1);
        }
    }
}

#[cfg(unix)]
async fn next_signal() -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return false;
    };
    tokio::select! {
        _ = term.recv() => true,
        _ = int.recv() => true,
    }
}

#[cfg(not(unix))]
async fn next_signal() -> bool {
    tokio::signal::ctrl_c().await.is_ok()
}
