//! MCP sessions: the id `initialize` hands out in `Mcp-Session-Id`, and what it is bound to.
//! A session belongs to one developer (the token's subject): another developer's token with it
//! finds nothing. Kept in the store's `kv` table so every replica knows every session, with a
//! sliding idle expiry (`aws_access.mcp.session_idle_seconds`) moved on each request.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::auth::codes::{self, sha256_hex, NoRandom};
use crate::store::{Store, StoreError};

/// The most bytes of a session id looked at; longer ones are unknown.
const MAX_ID_BYTES: usize = 128;

/// What a session is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The developer's subject.
    pub sub: String,
    /// The OAuth client that started it.
    pub client_id: String,
    /// The protocol revision negotiated.
    pub protocol_version: String,
}

/// Why a session could not be used or made.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store did not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No random id could be drawn.
    #[error(transparent)]
    Random(#[from] NoRandom),
}

/// The store key of session `id`: its hash, so the table never holds a usable id.
fn key(id: &str) -> String {
    format!("mcp_session:{}", sha256_hex(id))
}

/// Starts a session; its new id (256 random bits, base64url: visible ASCII as the transport
/// asks).
pub async fn start(
    store: &Store,
    session: &Session,
    now: OffsetDateTime,
    idle: Duration,
) -> Result<String, SessionError> {
    let id = codes::token(32)?;
    let value = serde_json::to_string(session).unwrap_or_default();
    store.kv_put(&key(&id), &value, now + idle).await?;
    Ok(id)
}

/// Session `id` of developer `sub`, its idle expiry moved on; none when it is unknown, ended,
/// idle too long or another developer's.
pub async fn resume(
    store: &Store,
    id: &str,
    sub: &str,
    now: OffsetDateTime,
    idle: Duration,
) -> Result<Option<Session>, StoreError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Ok(None);
    }
    let Some(value) = store.kv_touch(&key(id), now, now + idle).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_str::<Session>(&value)
        .ok()
        .filter(|s| s.sub == sub))
}

/// Ends session `id` of developer `sub`; false when there was no such live session.
pub async fn end(
    store: &Store,
    id: &str,
    sub: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Ok(false);
    }
    let k = key(id);
    let Some(value) = store.kv_get(&k, now).await? else {
        return Ok(false);
    };
    let theirs = serde_json::from_str::<Session>(&value).is_ok_and(|s| s.sub == sub);
    if !theirs {
        return Ok(false);
    }
    Ok(store.kv_take(&k, now).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_key_is_a_hash_of_the_id() {
        let k = key("abc");
        assert!(k.starts_with("mcp_session:"));
        assert!(!k.contains("abc"));
        assert_eq!(k, key("abc"));
        assert_ne!(k, key("abd"));
    }
}
