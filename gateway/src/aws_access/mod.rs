//! Agent access to AWS: the gateway hands a developer's agents short-lived credentials for a
//! project's account, scoped to the level they hold and ending with their time on the project.
//! The stages, each a file:
//!
//! - [`decide`]: the pure decision behind one credential request, from membership to duration.
//! - [`membership`]: who may hold what on a project now: the member entries that name the
//!   developer, their windows and levels.
//! - [`policy`]: the inline session policy a credential carries: the level's IAM actions, and the
//!   explicit denies that win over any of them.
//! - [`session`]: how long a credential may live: the shortest of the project's limit, the
//!   member's window and the grant, or a refusal that says when access ends.
//! - [`assume`]: the `sts:AssumeRole` request behind a credential: role, session name, source
//!   identity, session tags, policy and duration.
//! - [`mint`]: the `AssumeRole` call, and STS's answer read into credentials or a clear error.
//! - [`broker`]: what lives between requests: config members, the minter, the credential cache.
//! - [`endpoint`]: `GET /v1/aws/credentials`, the container credentials endpoint.
//! - [`credentials`]: a minted credential, its two wire shapes (container endpoint and
//!   `credential_process`), and the cache that reuses it until shortly before it expires.
//! - [`gateway_credential`]: credentials valid only at the gateway (`--via-gateway`), for the
//!   AWS proxy: a sealed session and a secret only the gateway can derive.
//! - [`mfa`]: whether a sign-in showed recent multi-factor authentication (prod writes need it).
//! - [`refusal`]: why a developer gets no credential, in words they can act on.
//! - [`developer`]: the signed-in developer behind a request (the bearer token, verified).
//! - [`wire`]: the subsystem's one error type and its `{"code", "message"}` wire shape.
//! - [`grants`]: a developer's write requests; [`status`]: their projects, windows and requests.
//! - [`approval`]: who may decide a request, and how long approved write lasts.
//! - [`approval_page`]: the page where an approver decides, signed in by [`approver`], a write
//!   request or a held AWS call ([`approval_request`]).
//! - [`admin`]: the Admin API of members, requests and the trail.
//! - [`webhook`]: the announcement of a new write request.

pub mod admin;
pub mod approval;
pub mod approval_page;
pub mod approval_request;
pub mod approver;
pub mod assume;
pub mod broker;
pub mod credentials;
pub mod decide;
pub mod developer;
pub mod endpoint;
pub mod gateway_credential;
pub mod grants;
pub mod membership;
pub mod mfa;
pub mod mint;
pub mod policy;
pub mod refusal;
pub mod session;
pub mod status;
pub mod webhook;
pub mod wire;

use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// The subsystem's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/aws/credentials", get(endpoint::credentials))
        .merge(grants::routes())
        .merge(status::routes())
        .merge(admin::routes())
        .merge(approval_page::routes())
}
