//! `claude-aws request`: asks for write access to a project for a while, with a reason, and
//! prints where an approver decides; `--wait` follows the request until someone has.

use std::time::Duration;

use serde_json::{json, Value};

use crate::api;
use crate::duration;
use crate::error::{printable, Error};
use crate::out;
use crate::session::Signed;

/// Between two looks at a waiting request.
const POLL: Duration = Duration::from_secs(3);
/// Consecutive failed looks tolerated while waiting.
const POLL_FAILURES: u32 = 5;
/// The longest reason the gateway takes.
pub const MAX_REASON: usize = 500;

/// A grant id as the gateway makes them (safe in a URL path).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Where a grant stands, and whether that is final.
fn settled(status: &str) -> bool {
    !matches!(status, "pending")
}

/// The request's duration in seconds and its reason, checked before anything is sent.
pub fn checked(for_: &str, reason: &str) -> Result<(u64, String), Error> {
    let seconds = duration::parse(for_)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(Error::Usage(format!(
            "give a reason of 1 to {MAX_REASON} characters: approvers read it"
        )));
    }
    Ok((seconds, reason.to_owned()))
}

/// Runs `request` (with [`checked`] arguments).
pub async fn run(
    s: &Signed,
    project: &str,
    seconds: u64,
    reason: &str,
    wait: bool,
) -> Result<(), Error> {
    let body = json!({"project": project, "duration_seconds": seconds, "reason": reason});
    let g = api::request_grant(s, &body).await?;
    let id = g["id"]
        .as_str()
        .filter(|id| valid_id(id))
        .ok_or_else(|| Error::Failed("the gateway's answer has no valid grant id".into()))?
        .to_owned();
    let status = text(&g, "status");
    out::line(&format!("id: {id}"))?;
    out::line(&format!("status: {status}"))?;
    if let Some(url) = g["approval_url"].as_str() {
        out::line(&format!("approval_url: {}", printable(url, 2048)))?;
    }
    eprintln!(
        "Asked for write access to {project} for {}. An approver (not you) decides at the approval URL.",
        duration::show(seconds)
    );
    if !wait || settled(&status) {
        return outcome(&status, &g);
    }
    // One Ctrl-C listener for the whole wait, listening before the line that invites a Ctrl-C.
    let stop = ctrl_c()?;
    eprintln!("Waiting for the decision (Ctrl-C stops waiting; the request stays)...");
    tokio::select! {
        r = wait_for(s, &id, seconds) => r,
        _ = stop => Err(Error::Interrupted(format!(
            "stopped waiting; the request {id} stays pending (see claude-aws status)"
        ))),
    }
}

/// Resolves at Ctrl-C. Listening starts at this call, not at the first poll.
fn ctrl_c() -> Result<impl std::future::Future<Output = ()>, Error> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sig = signal(SignalKind::interrupt())
            .map_err(|e| Error::Failed(format!("could not listen for Ctrl-C: {e}")))?;
        Ok(async move {
            sig.recv().await;
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Looks at the request every 3 s until it is settled, for at most its own duration.
async fn wait_for(s: &Signed, id: &str, seconds: u64) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut failures = 0;
    loop {
        if tokio::time::Instant::now() + POLL > deadline {
            return Err(Error::Refused(format!(
                "no decision within the {} asked for; the request {id} may still be pending",
                duration::show(seconds)
            )));
        }
        tokio::time::sleep(POLL).await;
        match api::grant(s, id).await {
            Ok(g) => {
                failures = 0;
                let now = text(&g, "status");
                if settled(&now) {
                    out::line(&format!("status: {now}"))?;
                    return outcome(&now, &g);
                }
            }
            Err(Error::Unreachable(m)) if failures + 1 < POLL_FAILURES => {
                failures += 1;
                eprintln!("{m}; still waiting");
            }
            Err(e) => return Err(e),
        }
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .map(|s| printable(s, 64))
        .unwrap_or_else(|| "unknown".into())
}

/// Exit by the request's state: pending (not waited for) and approved succeed; the rest refuse.
fn outcome(status: &str, g: &Value) -> Result<(), Error> {
    match status {
        "pending" => Ok(()),
        "approved" => {
            if let Some(until) = g["until"].as_str() {
                out::line(&format!("until: {}", printable(until, 64)))?;
            }
            Ok(())
        }
        other => Err(Error::Refused(format!(
            "the request was not approved: {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_ids_are_checked_before_they_reach_a_path() {
        assert!(valid_id("grt_01HX-abc"));
        assert!(!valid_id("../admin"));
        assert!(!valid_id("a?b"));
        assert!(!valid_id(""));
    }

    #[test]
    fn only_approval_succeeds() {
        assert!(outcome("approved", &json!({})).is_ok());
        assert!(outcome("pending", &json!({})).is_ok());
        for s in ["denied", "revoked", "expired", "weird"] {
            assert!(
                matches!(outcome(s, &json!({})), Err(Error::Refused(_))),
                "{s}"
            );
        }
    }
}
