//! MCP sessions: the id `initialize` hands out in `Mcp-Session-Id`, and what it is bound to.
//! A session belongs to one developer (the token's subject): another developer's token with it
//! finds nothing. Kept in the store's `kv` table so every replica knows every session, with a
//! sliding idle expiry (`aws_access.mcp.session_idle_seconds`) moved on each request.
//!
//! Each developer has [`MAX_SESSIONS_PER_USER`] slots, and a session lives in one of them (its
//! id names the slot), so a client calling `initialize` in a loop holds at most that many rows:
//! a new session takes a free slot, or, with none free, replaces the session in a slot drawn
//! at random (whose client starts a new one when told its session is not found).

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::auth::codes::{self, sha256_hex, NoRandom};
use crate::store::{Store, StoreError};

/// The most bytes of a session id looked at; longer ones are unknown.
const MAX_ID_BYTES: usize = 128;

/// The most live sessions of one developer.
pub const MAX_SESSIONS_PER_USER: u8 = 32;

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

/// A session as stored in its slot: with the hash of its id, so the table never holds a
/// usable id and a slot's next session does not answer to the last one's id.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    session: Session,
    id_hash: String,
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

/// The store key of slot `slot` of developer `sub`.
fn key(sub: &str, slot: u8) -> String {
    format!("mcp_session:{}:{slot}", sha256_hex(sub))
}

/// The slot a session id names (`<slot>.<random>`); none for an id this server did not make.
fn slot_of(id: &str) -> Option<u8> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return None;
    }
    let (slot, rest) = id.split_once('.')?;
    if rest.is_empty() || slot.len() > 2 || !slot.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    slot.parse::<u8>()
        .ok()
        .filter(|s| *s < MAX_SESSIONS_PER_USER)
}

/// The session stored as `value`, if it is session `id` of developer `sub`.
fn read(value: &str, id: &str, sub: &str) -> Option<Session> {
    let stored = serde_json::from_str::<Stored>(value).ok()?;
    (codes::same(&stored.id_hash, &sha256_hex(id)) && stored.session.sub == sub)
        .then_some(stored.session)
}

/// Starts a session; its new id: its slot, a dot, and 256 random bits in base64url (visible
/// ASCII as the transport asks).
pub async fn start(
    store: &Store,
    session: &Session,
    now: OffsetDateTime,
    idle: Duration,
) -> Result<String, SessionError> {
    let random = codes::token(32)?;
    // The first slot tried is drawn with the id, so a full set loses a random session.
    let first = random
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % u32::from(MAX_SESSIONS_PER_USER);
    let first = u8::try_from(first).unwrap_or(0);
    let slots = (0..MAX_SESSIONS_PER_USER).map(|i| (first + i) % MAX_SESSIONS_PER_USER);
    for slot in slots {
        let id = format!("{slot}.{random}");
        let value = stored(session, &id);
        let k = key(&session.sub, slot);
        if store.kv_put_new(&k, &value, now + idle, now).await? {
            return Ok(id);
        }
    }
    // Every slot holds a live session: the first one tried gives way.
    let id = format!("{first}.{random}");
    store
        .kv_put(&key(&session.sub, first), &stored(session, &id), now + idle)
        .await?;
    Ok(id)
}

fn stored(session: &Session, id: &str) -> String {
    serde_json::to_string(&Stored {
        session: session.clone(),
        id_hash: sha256_hex(id),
    })
    .unwrap_or_default()
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
    let Some(slot) = slot_of(id) else {
        return Ok(None);
    };
    // Only this developer's own slot is touched, whatever the id says.
    let Some(value) = store.kv_touch(&key(sub, slot), now, now + idle).await? else {
        return Ok(None);
    };
    Ok(read(&value, id, sub))
}

/// Ends session `id` of developer `sub`; false when there was no such live session.
pub async fn end(
    store: &Store,
    id: &str,
    sub: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let Some(slot) = slot_of(id) else {
        return Ok(false);
    };
    let k = key(sub, slot);
    let Some(value) = store.kv_get(&k, now).await? else {
        return Ok(false);
    };
    if read(&value, id, sub).is_none() {
        return Ok(false);
    }
    Ok(store.kv_take(&k, now).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_key_names_a_hash_of_the_developer_and_the_slot() {
        let k = key("ana", 3);
        assert!(k.starts_with("mcp_session:") && k.ends_with(":3"), "{k}");
        assert!(!k.contains("ana"));
        assert_eq!(k, key("ana", 3));
        assert_ne!(k, key("bob", 3));
        assert_ne!(k, key("ana", 4));
    }

    #[test]
    fn an_id_names_one_of_the_slots_or_is_unknown() {
        assert_eq!(slot_of("0.abc"), Some(0));
        assert_eq!(slot_of("31.abc"), Some(31));
        for id in [
            "32.abc", "abc", ".abc", "1.", "-1.abc", "001.abc", "+1.abc", "1a.b", "",
        ] {
            assert_eq!(slot_of(id), None, "{id}");
        }
        assert_eq!(slot_of(&format!("1.{}", "a".repeat(10 * 1024))), None);
    }

    #[test]
    fn a_slot_answers_only_to_its_sessions_id_and_developer() {
        let s = Session {
            sub: "ana".into(),
            client_id: "c".into(),
            protocol_version: "2025-11-25".into(),
        };
        let value = stored(&s, "3.abc");
        assert!(!value.contains("3.abc"), "{value}");
        assert_eq!(read(&value, "3.abc", "ana"), Some(s));
        assert_eq!(read(&value, "3.abd", "ana"), None);
        assert_eq!(read(&value, "3.abc", "bob"), None);
        assert_eq!(read("not json", "3.abc", "ana"), None);
    }
}
