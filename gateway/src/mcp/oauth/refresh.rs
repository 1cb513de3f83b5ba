//! Refresh tokens, rotated (OAuth 2.1 for public clients): each sign-in starts a family, kept in
//! the store under a random id with its generation, who signed in and what renews that at the
//! IdP. A refresh token is the family id and a generation, sealed. Presenting the current one
//! moves the family to the next generation (compare-and-swap, so two uses of one token cannot
//! both win); presenting an older one is a reuse, and ends the family. A family lives
//! `refresh_hours` from the browser sign-in, whatever its refreshes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::grant::GrantError;
use crate::auth::token::Identity;
use crate::state::AppState;

const FAMILY_PURPOSE: &str = "mcp_family";
const TOKEN_PURPOSE: &str = "mcp_refresh";

/// A sign-in's refresh family, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    /// The generation of the one refresh token that is good now.
    pub generation: u64,
    /// The client it was issued to.
    pub client_id: String,
    /// Who, as last confirmed.
    pub identity: Identity,
    /// What renews the sign-in at the IdP, when the IdP gave it.
    pub idp_refresh_token: Option<String>,
    /// The subject at the IdP.
    pub idp_sub: String,
    /// When the person signed in in the browser (unix seconds).
    pub signed_in_at: i64,
    /// When the family ends (unix seconds): `signed_in_at` plus `refresh_hours`.
    pub ends_at: i64,
}

/// What a refresh token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presented {
    /// The family id.
    #[serde(rename = "f")]
    pub family: String,
    /// The generation.
    #[serde(rename = "g")]
    pub generation: u64,
}

/// The family as it was read: what [`rotate`] compares against.
#[derive(Debug, Clone)]
pub struct Read(String);

fn key(family: &str) -> String {
    format!("mcp:family:{family}")
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The refresh token of `family` at generation `generation`.
pub fn token(
    state: &AppState,
    family: &str,
    generation: u64,
    ends_at: i64,
) -> Result<String, GrantError> {
    let p = Presented {
        family: family.to_owned(),
        generation,
    };
    Ok(state.sealer.seal(TOKEN_PURPOSE, &p, ends_at)?)
}

/// What a presented refresh token names, if it opens.
pub fn open(state: &AppState, presented: &str, now: i64) -> Option<Presented> {
    state.sealer.open(TOKEN_PURPOSE, presented, now).ok()
}

/// Whether `presented` may renew `family` at `now`; else why not, for the audit (either way
/// the family ends): an older generation is a reuse, and past `ends_at` the browser is needed.
pub fn usable(family: &Family, presented: &Presented, now: i64) -> Result<(), &'static str> {
    if presented.generation != family.generation {
        return Err("reuse");
    }
    if now >= family.ends_at {
        return Err("cap_reached");
    }
    Ok(())
}

/// Starts family `id`; false when it already exists (a code used twice at once).
pub async fn start(
    state: &AppState,
    id: &str,
    f: &Family,
    now: OffsetDateTime,
) -> Result<bool, GrantError> {
    let blob = state.sealer.seal(FAMILY_PURPOSE, f, f.ends_at)?;
    Ok(state
        .store
        .kv_put_new(&key(id), &blob, at(f.ends_at), now)
        .await?)
}

/// The live family `id`.
pub async fn load(
    state: &AppState,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<(Family, Read)>, GrantError> {
    let Some(blob) = state.store.kv_get(&key(id), now).await? else {
        return Ok(None);
    };
    Ok(state
        .sealer
        .open(FAMILY_PURPOSE, &blob, now.unix_timestamp())
        .ok()
        .map(|f| (f, Read(blob))))
}

/// Replaces the family read as `read` with `next`; false when it changed in the meantime.
pub async fn rotate(
    state: &AppState,
    id: &str,
    read: &Read,
    next: &Family,
    now: OffsetDateTime,
) -> Result<bool, GrantError> {
    let blob = state.sealer.seal(FAMILY_PURPOSE, next, next.ends_at)?;
    Ok(state
        .store
        .kv_replace(&key(id), &read.0, &blob, at(next.ends_at), now)
        .await?)
}

/// Ends family `id`: none of its refresh tokens is good any more.
pub async fn revoke(state: &AppState, id: &str) -> Result<(), GrantError> {
    Ok(state.store.kv_delete(&key(id)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(generation: u64) -> Family {
        Family {
            generation,
            client_id: "c".into(),
            identity: Identity {
                sub: "u".into(),
                email: None,
                name: None,
                groups: vec![],
                mfa_at: None,
            },
            idp_refresh_token: None,
            idp_sub: "u".into(),
            signed_in_at: 1_000,
            ends_at: 1_000 + 12 * 3600,
        }
    }

    fn presented(generation: u64) -> Presented {
        Presented {
            family: "f".into(),
            generation,
        }
    }

    #[test]
    fn only_the_current_generation_renews_and_only_until_the_cap() {
        let f = family(3);
        assert_eq!(usable(&f, &presented(3), 2_000), Ok(()));
        assert_eq!(usable(&f, &presented(2), 2_000), Err("reuse"));
        assert_eq!(usable(&f, &presented(4), 2_000), Err("reuse"));
        assert_eq!(usable(&f, &presented(3), f.ends_at - 1), Ok(()));
        assert_eq!(usable(&f, &presented(3), f.ends_at), Err("cap_reached"));
    }
}
