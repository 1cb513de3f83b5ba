//! `GET /v1/aws/status`: the projects a developer is a member of now or later (config members and
//! Admin API members), with the level and window of each and their write requests of the last
//! seven days.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{header, HeaderValue};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use super::developer::Developer;
use super::grants::{entries, expire, section, wire};
use super::membership::{standing, Entry};
use super::refusal::Refusal;
use super::wire::AwsError;
use crate::clock::rfc3339;
use crate::config::aws_access::{Environment, WriteApproval};
use crate::state::AppState;

/// How far back the requests listed go.
pub const GRANTS_SINCE: Duration = Duration::days(7);
/// The most requests listed.
const MAX_GRANTS: i64 = 200;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/aws/status", get(status))
}

/// The entry that places the developer on `project`: the best open now, else the next to open.
fn placing<'a>(
    mine: &'a [Entry],
    project: &str,
    email: Option<&str>,
    groups: &[String],
    now: OffsetDateTime,
) -> Option<&'a Entry> {
    let one = |e: &Entry| standing(std::slice::from_ref(e), project, email, groups, now);
    let open = mine
        .iter()
        .filter(|e| one(e).is_ok())
        .max_by_key(|e| (e.level, e.until.is_none(), e.until));
    open.or_else(|| {
        mine.iter()
            .filter(|e| matches!(one(e), Err(Refusal::NotYet { .. })))
            .min_by_key(|e| e.from)
    })
}

async fn status(State(state): State<AppState>, dev: Developer) -> Result<Response, AwsError> {
    let now = state.clock.now();
    let mut res = Json(of(&state, &dev.claims.identity, now).await?).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// What `who` holds at `now`: `{user, projects: [{name, environment, regions, level, from,
/// until, write_approval, max_session_seconds, grants}]}` (also the MCP `aws_access` tool's).
pub(crate) async fn of(
    state: &AppState,
    who: &crate::auth::token::Identity,
    now: OffsetDateTime,
) -> Result<Value, AwsError> {
    let a = section(state)?;
    let all = entries(state, who, None).await?;
    expire(state, now).await?;
    let grants = state
        .store
        .aws_user_grants(&who.sub, now - GRANTS_SINCE, MAX_GRANTS)
        .await
        .map_err(|e| {
            tracing::error!("agent access store: {e}");
            AwsError::Unavailable
        })?;
    let mut projects = Vec::new();
    for p in &a.projects {
        let Some(e) = placing(&all, &p.name, who.email.as_deref(), &who.groups, now) else {
            continue;
        };
        let mine: Vec<Value> = grants
            .iter()
            .filter(|g| g.project == p.name)
            .map(wire)
            .collect();
        projects.push(json!({
            "name": p.name,
            "environment": match p.environment { Environment::Prod => "prod", Environment::Nonprod => "nonprod" },
            "regions": p.regions,
            "level": e.level.as_str(),
            "from": e.from.map(rfc3339),
            "until": e.until.map(rfc3339),
            "write_approval": match p.write_approval { WriteApproval::Required => "required", WriteApproval::Auto => "auto" },
            "max_session_seconds": p.max_session_seconds,
            "grants": mine,
        }));
    }
    Ok(json!({
        "user": {"sub": who.sub, "email": who.email},
        "projects": projects,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::aws_access::Level;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

    fn entry(level: Level, from: i64, until: i64) -> Entry {
        Entry {
            project: "payments".into(),
            groups: vec!["payments".into()],
            emails: vec![],
            level,
            from: Some(NOW + Duration::days(from)),
            until: Some(NOW + Duration::days(until)),
        }
    }

    #[test]
    fn a_member_now_or_later_is_placed_by_the_best_or_next_entry() {
        let g = vec!["payments".to_owned()];
        let both = [
            entry(Level::Read, -5, 5),
            entry(Level::Write, 2, 9),
            entry(Level::Write, -9, -1),
        ];
        assert_eq!(
            placing(&both, "payments", None, &g, NOW),
            Some(&both[0]),
            "open now beats later and ended"
        );
        let later = [entry(Level::Read, 4, 9), entry(Level::Write, 2, 9)];
        assert_eq!(placing(&later, "payments", None, &g, NOW), Some(&later[1]));
        let ended = [entry(Level::Write, -9, -1)];
        assert_eq!(placing(&ended, "payments", None, &g, NOW), None);
        assert_eq!(
            placing(&both, "payments", None, &["ops".to_owned()], NOW),
            None
        );
    }
}
