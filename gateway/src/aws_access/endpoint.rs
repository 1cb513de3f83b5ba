//! `GET /v1/aws/credentials?project=NAME&level=read|write`: the container credentials endpoint.
//! The developer's gateway session token in, the AWS SDKs' container JSON out
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN`). Every request
//! is decided afresh (membership now, grant in force, MFA), so a member whose window ended or who
//! left the group gets nothing on the next one; a credential minted earlier is handed out again
//! only while it is good and ends within what the decision allows now. A session token older than
//! `token_max_age_seconds` is refused with 401, so the client refreshes it at the IdP first.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue};
use serde_json::json;
use time::Duration;

use super::assume::{self, Developer as StsDeveloper};
use super::decide::{decide, Asker, Request};
use super::developer::Developer;
use super::gateway_credential::{self, Grantee};
use super::mfa;
use super::wire::AwsError;
use crate::config::aws_access::{Environment, Level, WriteApproval};
use crate::state::AppState;

/// The longest query string read.
const MAX_QUERY: usize = 1024;
/// The most characters of an asked project name a refusal's audit line carries.
const MAX_LOGGED_NAME: usize = 64;

/// What the query asks for.
#[derive(Debug, PartialEq, Eq)]
struct Ask {
    project: String,
    level: Level,
    /// `via=gateway`: a gateway-only credential for the AWS proxy.
    via_gateway: bool,
}

fn ask(query: Option<&str>) -> Result<Ask, AwsError> {
    let query = query.unwrap_or("");
    if query.len() > MAX_QUERY {
        return Err(AwsError::BadRequest("the query is too long".into()));
    }
    let (mut project, mut level, mut via) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "project" => &mut project,
            "level" => &mut level,
            "via" => &mut via,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(AwsError::BadRequest(format!("`{k}` is given twice")));
        }
    }
    let project = project
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AwsError::BadRequest("name the project: ?project=NAME".into()))?;
    let level = match level.as_deref() {
        None | Some("read") => Level::Read,
        Some("write") => Level::Write,
        Some(_) => return Err(AwsError::BadRequest("level is read or write".into())),
    };
    let via_gateway = match via.as_deref() {
        None => false,
        Some("gateway") => true,
        Some(_) => return Err(AwsError::BadRequest("via is gateway, or not given".into())),
    };
    Ok(Ask {
        project,
        level,
        via_gateway,
    })
}

/// The handler.
pub async fn credentials(
    State(state): State<AppState>,
    dev: Developer,
    RawQuery(query): RawQuery,
) -> Result<Response, AwsError> {
    let asked = ask(query.as_deref());
    let outcome = match &asked {
        Ok(a) => issue(&state, &dev, a).await,
        Err(e) => Err(AwsError::BadRequest(e.to_string())),
    };
    if let Err(e) = &outcome {
        let (_, code) = e.status_code();
        // What was asked, when the query said it (the name cut short: it may name no project).
        let (project, level) = match &asked {
            Ok(a) => (
                Some(a.project.chars().take(MAX_LOGGED_NAME).collect::<String>()),
                Some(a.level.as_str()),
            ),
            Err(_) => (None, None),
        };
        state.audit.emit(
            "aws.credentials.refused",
            state.clock.now(),
            json!({"user": dev.claims.identity.sub, "email": dev.claims.identity.email,
                   "project": project, "level": level, "code": code, "client_ip": dev.ip}),
        );
    }
    outcome
}

async fn issue(state: &AppState, dev: &Developer, asked: &Ask) -> Result<Response, AwsError> {
    let (Some(cfg), Some(broker)) = (&state.config.aws_access, &state.aws) else {
        return Err(AwsError::NotConfigured);
    };
    let (name, level) = (asked.project.clone(), asked.level);
    let who = &dev.claims.identity;
    let now = state.clock.now();
    // Groups and the IdP's say-so are as of the token's sign-in or refresh: a fresh one is asked.
    if now.unix_timestamp() - dev.claims.iat > i64::from(cfg.token_max_age_seconds) {
        return Err(AwsError::StaleSignIn {
            minutes: cfg.token_max_age_seconds / 60,
        });
    }
    let proxy = cfg.proxy.as_ref();
    if asked.via_gateway && proxy.is_none() {
        return Err(AwsError::NotConfigured);
    }
    let project = cfg.projects.iter().find(|p| p.name == name);
    let entries = super::grants::entries(state, who, Some(&name)).await?;
    // Through the proxy, with every write held for a person, a write credential needs no grant.
    let each_write_approved = asked.via_gateway && proxy.is_some_and(|p| p.risk.writes);
    let needs_grant = project.is_some_and(|p| p.write_approval == WriteApproval::Required)
        && !each_write_approved;
    let grant = if level == Level::Write && needs_grant {
        state
            .store
            .aws_write_grant(&who.sub, &name, now)
            .await
            .map_err(|e| {
                tracing::warn!("aws grants unreadable: {e}");
                AwsError::Unavailable
            })?
    } else {
        None
    };
    let mfa_age = Duration::seconds(i64::from(cfg.mfa_max_age_seconds));
    let mfa_at = who
        .mfa_at
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok());
    let mfa = mfa::recent(mfa_at, now, mfa_age);
    let req = Request {
        name: &name,
        level,
        asker: Asker {
            email: who.email.as_deref(),
            groups: &who.groups,
            mfa,
        },
        grant: grant.as_ref(),
        mfa_age,
    };
    let project = if each_write_approved {
        project.map(|p| {
            let mut p = p.clone();
            p.write_approval = WriteApproval::Auto;
            p
        })
    } else {
        project.cloned()
    };
    let project = project.as_ref();
    let allowed = match decide(&req, project, &entries, now) {
        Ok(a) => a,
        Err(refusal) => {
            broker.forget(&who.sub, &name);
            return Err(refusal.into());
        }
    };
    let Some(project) = project else {
        return Err(AwsError::NotConfigured);
    };
    let key = (
        who.sub.clone(),
        name.clone(),
        level,
        allowed.grant.clone(),
        mfa,
    );
    let by = now + allowed.duration;
    let cached_creds = if asked.via_gateway {
        let grantee = grantee(who, &name, &entries, &allowed, mfa);
        Some(gateway_only(state, broker, grantee, by)?)
    } else {
        broker.cached(&key, now, by)
    };
    let (creds, cached) = match cached_creds {
        Some(c) => (c, !asked.via_gateway),
        None => {
            let sts_dev = StsDeveloper {
                sub: &who.sub,
                email: who.email.as_deref(),
                mfa,
            };
            let req = assume::request(
                project,
                level,
                sts_dev,
                allowed.grant.as_deref(),
                allowed.duration,
            )
            .map_err(|e| AwsError::PolicyTooLarge {
                project: name.clone(),
                detail: e.to_string(),
            })?;
            let c = broker.minter.assume(&name, &req).await?;
            broker.keep(key, c.clone(), now);
            (c, false)
        }
    };
    state.audit.emit(
        "aws.credentials",
        now,
        json!({
            "user": who.sub, "email": who.email, "project": name, "level": level.as_str(),
            "environment": match project.environment { Environment::Prod => "prod", Environment::Nonprod => "nonprod" },
            "duration_seconds": (creds.expiration - now).whole_seconds(),
            "grant": allowed.grant, "mfa": mfa, "access_key_id": creds.access_key_id,
            "cached": cached, "client_ip": dev.ip,
            "via": if asked.via_gateway { "gateway" } else { "sts" },
        }),
    );
    let mut res = Json(creds.container_json()).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Who a gateway-only credential is for. It carries the developer's groups that name them on
/// the project, which the proxy checks membership with on every call.
fn grantee(
    who: &crate::auth::token::Identity,
    project: &str,
    entries: &[super::membership::Entry],
    allowed: &super::decide::Allowed,
    mfa: bool,
) -> Grantee {
    let groups = who
        .groups
        .iter()
        .filter(|g| entries.iter().any(|e| e.groups.contains(g)))
        .cloned()
        .collect();
    Grantee {
        sub: who.sub.clone(),
        email: who.email.clone(),
        groups,
        project: project.to_owned(),
        level: allowed.level,
        mfa,
        grant: allowed.grant.clone(),
    }
}

/// A gateway-only credential for the proxy, for `grantee`, ending at `by`.
fn gateway_only(
    state: &AppState,
    broker: &super::broker::Broker,
    grantee: Grantee,
    by: time::OffsetDateTime,
) -> Result<super::credentials::Credentials, AwsError> {
    let issued = gateway_credential::issue(&broker.proxy_keys, &state.sealer, grantee, by)
        .map_err(|e| {
            tracing::warn!("gateway credential not issued: {e}");
            AwsError::Unavailable
        })?;
    Ok(super::credentials::Credentials {
        access_key_id: issued.access_key_id,
        secret_access_key: crate::config::Secret::new(issued.secret_access_key),
        session_token: crate::config::Secret::new(issued.token),
        expiration: issued.expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_a_project_and_maybe_a_level() {
        assert_eq!(
            ask(Some("project=payments")).unwrap(),
            Ask {
                project: "payments".into(),
                level: Level::Read,
                via_gateway: false,
            }
        );
        assert_eq!(
            ask(Some("level=write&project=pay%2Dments")).unwrap().level,
            Level::Write
        );
        for bad in [
            None,
            Some(""),
            Some("project="),
            Some("project=a&project=b"),
            Some("project=a&level=admin"),
            Some("project=a&via=nonsense"),
            Some("project=a&via=gateway&via=gateway"),
        ] {
            assert_eq!(
                ask(bad).unwrap_err().status_code().1,
                "bad_request",
                "{bad:?}"
            );
        }
        assert!(ask(Some("project=a&via=gateway")).unwrap().via_gateway);
        let long = format!("project={}", "a".repeat(2000));
        assert!(ask(Some(&long)).is_err());
    }
}
