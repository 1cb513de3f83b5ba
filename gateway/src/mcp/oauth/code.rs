//! The authorization code: 256 random bits handed to the client's redirect URI, good once and
//! for 60 seconds. The store keeps only its hash, under which the sealed grant waits: the
//! client, redirect URI, PKCE challenge and resource it is bound to, and who signed in.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::codes::{sha256_hex, token};
use crate::auth::grant::GrantError;
use crate::auth::seal::SealError;
use crate::auth::token::Identity;
use crate::state::AppState;

const PURPOSE: &str = "mcp_code";
/// How long a code is good for, in seconds.
pub const CODE_TTL: i64 = 60;

/// What a code was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was sent to.
    pub redirect_uri: String,
    /// The PKCE S256 challenge the verifier must meet.
    pub code_challenge: String,
    /// The resource it is for.
    pub resource: String,
    /// Who signed in.
    pub identity: Identity,
    /// What renews the sign-in at the IdP, when the IdP gave it.
    pub idp_refresh_token: Option<String>,
    /// The subject at the IdP.
    pub idp_sub: String,
    /// When the person signed in at the IdP (unix seconds): the refresh cap counts from here.
    pub signed_in_at: i64,
}

fn key(code: &str) -> String {
    format!("mcp:code:{}", sha256_hex(code))
}

/// The refresh family a code starts, named after the code so that a replayed code can find,
/// and end, what its first use started.
pub fn family_of(code: &str) -> String {
    sha256_hex(&format!("mcp family\0{code}"))
}

/// Stores `grant` under a fresh code and returns the code.
pub async fn issue(
    state: &AppState,
    grant: &Code,
    now: OffsetDateTime,
) -> Result<String, GrantError> {
    let code = token(32).map_err(|_| SealError::Random)?;
    let exp = now + time::Duration::seconds(CODE_TTL);
    let blob = state.sealer.seal(PURPOSE, grant, exp.unix_timestamp())?;
    state.store.kv_put(&key(&code), &blob, exp).await?;
    Ok(code)
}

/// Takes the grant of `code`: `None` when it is unknown, expired or already used. Two callers
/// presenting the same code cannot both get it.
pub async fn take(
    state: &AppState,
    code: &str,
    now: OffsetDateTime,
) -> Result<Option<Code>, GrantError> {
    if code.len() > 256 {
        return Ok(None);
    }
    let Some(blob) = state.store.kv_take(&key(code), now).await? else {
        return Ok(None);
    };
    Ok(state.sealer.open(PURPOSE, &blob, now.unix_timestamp()).ok())
}
