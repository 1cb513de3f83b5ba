//! A device grant: created by `POST /oauth/device_authorization`, found by its user code at
//! `/device`, completed or denied by the callback, collected once by the token poll. Stored
//! sealed in `kv` under the hash of the device code, with a pointer from the user code.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::codes::sha256_hex;
use super::seal::{SealError, Sealer};
use crate::store::{Store, StoreError};

/// How long a device code lives.
pub const GRANT_TTL: time::Duration = time::Duration::seconds(600);
const PURPOSE: &str = "device_grant";

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the person at the browser.
    Pending,
    /// Signed in; tokens are ready for the poll.
    Complete,
    /// Refused or cancelled.
    Denied,
}

/// What the token poll collects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// The gateway session token.
    pub access_token: String,
    /// The IdP refresh token, handed to the client (the gateway keeps no refresh state).
    pub refresh_token: Option<String>,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
}

/// A device grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Where it stands.
    pub status: Status,
    /// The user code (stored form).
    pub user_code: String,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Expires (unix seconds).
    pub expires_at: i64,
    /// Who asked for it.
    pub client_ip: Option<String>,
    /// The client's `surface` parameter.
    pub surface: Option<String>,
    /// Tokens, once complete.
    pub issued: Option<Issued>,
}

/// Store key of a device code (its hash: the code itself is never stored).
pub fn device_key(device_code: &str) -> String {
    format!("device:dc:{}", sha256_hex(device_code))
}

fn user_key(user_code: &str) -> String {
    format!("device:uc:{user_code}")
}

/// Failures of grant storage.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Creates a pending grant under fresh codes; returns (device code, grant).
pub async fn create(
    store: &Store,
    sealer: &Sealer,
    now: OffsetDateTime,
    client_ip: Option<String>,
    surface: Option<String>,
) -> Result<(String, Grant), GrantError> {
    let device_code = super::codes::device_code().map_err(|_| SealError::Random)?;
    let key = device_key(&device_code);
    let expires = now + GRANT_TTL;
    // A user-code collision is possible (20^8 codes); take another until one is free.
    let mut user_code = super::codes::user_code().map_err(|_| SealError::Random)?;
    for _ in 0..5 {
        if store
            .kv_put_new(&user_key(&user_code), &key, expires, now)
            .await?
        {
            break;
        }
        user_code = super::codes::user_code().map_err(|_| SealError::Random)?;
    }
    let grant = Grant {
        status: Status::Pending,
        user_code,
        created_at: now.unix_timestamp(),
        expires_at: expires.unix_timestamp(),
        client_ip,
        surface: surface.map(|s| s.chars().take(64).collect()),
        issued: None,
    };
    save(store, sealer, &key, &grant).await?;
    Ok((device_code, grant))
}

/// Writes a new grant (sealed, until its own expiry).
async fn save(store: &Store, sealer: &Sealer, key: &str, grant: &Grant) -> Result<(), GrantError> {
    let blob = sealer.seal(PURPOSE, grant, grant.expires_at)?;
    store.kv_put(key, &blob, at(grant.expires_at)).await?;
    Ok(())
}

/// The stored form of a grant as it was read: what [`replace`] compares against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

/// The live grant under `key`.
pub async fn load(
    store: &Store,
    sealer: &Sealer,
    key: &str,
    now: OffsetDateTime,
) -> Result<Option<Grant>, GrantError> {
    Ok(load_versioned(store, sealer, key, now)
        .await?
        .map(|(g, _)| g))
}

/// The live grant under `key` and the version it was read at, for a later [`replace`].
pub async fn load_versioned(
    store: &Store,
    sealer: &Sealer,
    key: &str,
    now: OffsetDateTime,
) -> Result<Option<(Grant, Version)>, GrantError> {
    match store.kv_get(key, now).await? {
        None => Ok(None),
        Some(blob) => match sealer.open(PURPOSE, &blob, now.unix_timestamp()) {
            Ok(g) => Ok(Some((g, Version(blob)))),
            Err(SealError::Expired) | Err(SealError::Invalid) => Ok(None),
            Err(e) => Err(e.into()),
        },
    }
}

/// Writes `grant` over the version `read` was loaded at, only if nobody changed it since: of a
/// deny and a callback that race, exactly one settles the grant. False when another change won
/// (or the grant expired): the caller says so and changes nothing.
pub async fn replace(
    store: &Store,
    sealer: &Sealer,
    key: &str,
    read: &Version,
    grant: &Grant,
    now: OffsetDateTime,
) -> Result<bool, GrantError> {
    let blob = sealer.seal(PURPOSE, grant, grant.expires_at)?;
    Ok(store
        .kv_replace(key, &read.0, &blob, at(grant.expires_at), now)
        .await?)
}

/// Removes and returns the grant under `key`: only one poll can collect tokens.
pub async fn take(
    store: &Store,
    sealer: &Sealer,
    key: &str,
    now: OffsetDateTime,
) -> Result<Option<Grant>, GrantError> {
    let Some(blob) = store.kv_take(key, now).await? else {
        return Ok(None);
    };
    Ok(sealer.open(PURPOSE, &blob, now.unix_timestamp()).ok())
}

/// The device-code key a typed user code points at.
pub async fn find_by_user_code(
    store: &Store,
    user_code: &str,
    now: OffsetDateTime,
) -> Result<Option<String>, GrantError> {
    Ok(store.kv_get(&user_key(user_code), now).await?)
}

/// Forgets a user code (after the grant is settled).
pub async fn forget_user_code(store: &Store, user_code: &str) -> Result<(), GrantError> {
    Ok(store.kv_delete(&user_key(user_code)).await?)
}
