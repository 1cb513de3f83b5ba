//! The access token for API calls: the cached one while it has more than a minute left, else a
//! refresh at the gateway, whose rotated refresh token is stored at once. Refreshes are
//! serialized across processes by a lock on a file, so two `aws` commands starting together do
//! not spend the same (single-use) refresh token. The operating system holds the lock for the
//! process and lets it go when the process ends, however it ends: no lock is ever left behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::Duration;

use crate::client::{gateway_url, Gateway};
use crate::env::Env;
use crate::error::Error;
use crate::oauth;
use crate::store::{private_dir, Session, Store};

/// How long a process waits for another's refresh: longer than one bounded refresh call (30 s).
const LOCK_WAIT: Duration = Duration::from_secs(40);

/// A signed-in gateway: its client, the store and the session.
#[derive(Debug)]
pub struct Signed {
    /// The gateway.
    pub gateway: Gateway,
    store: Store,
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Which gateway: `--gateway` (or `CLAUDE_AWS_GATEWAY`, which clap reads into it), else the one
/// the stored session belongs to.
pub fn resolve_gateway(flag: Option<&str>, stored: Option<&Session>) -> Result<String, Error> {
    match (flag, stored) {
        (Some(g), _) => gateway_url(g),
        (None, Some(s)) => gateway_url(&s.gateway),
        (None, None) => Err(Error::not_signed_in(
            "not signed in, and no gateway given (--gateway or CLAUDE_AWS_GATEWAY)",
        )),
    }
}

/// The gateway's address, signed in or not: `flag`, else the stored session's.
pub fn gateway_address(env: &Env, flag: Option<&str>) -> Result<String, Error> {
    let stored = Store::open(env)?.load()?;
    resolve_gateway(flag, stored.as_ref())
}

impl Signed {
    /// The session for `flag`'s gateway (or the stored one's).
    pub fn open(env: &Env, flag: Option<&str>) -> Result<Signed, Error> {
        let store = Store::open(env)?;
        let stored = store.load()?;
        let base = resolve_gateway(flag, stored.as_ref())?;
        match &stored {
            None => return Err(Error::not_signed_in("not signed in")),
            Some(s) if gateway_url(&s.gateway).ok().as_deref() != Some(base.as_str()) => {
                return Err(Error::not_signed_in(&format!(
                    "signed in to {}, not to {base}",
                    s.gateway
                )))
            }
            Some(_) => {}
        }
        Ok(Signed {
            gateway: Gateway::new(&base)?,
            store,
        })
    }

    /// A bearer token with more than a minute left; `force` refreshes even a fresh one (after
    /// the gateway refused it).
    pub async fn access_token(&self, force: bool) -> Result<String, Error> {
        let session = self.current()?;
        if !force {
            if let Some(t) = session.fresh_access(now()) {
                return Ok(t.to_owned());
            }
        }
        let _lock = Lock::take(self.store.dir()).await?;
        // Another process may have refreshed while this one waited.
        let mut session = self.current()?;
        if !force {
            if let Some(t) = session.fresh_access(now()) {
                return Ok(t.to_owned());
            }
        }
        let Some(rt) = session.refresh_token.clone() else {
            return Err(Error::not_signed_in("your sign-in has expired"));
        };
        let tokens = oauth::refresh(&self.gateway, &rt).await?;
        session.access_expires_at = Some(now() + tokens.expires_in);
        session.access_token = Some(tokens.access_token.clone());
        if let Some(new_rt) = tokens.refresh_token {
            session.refresh_token = Some(new_rt);
        }
        self.store.save(&session)?;
        Ok(tokens.access_token)
    }

    fn current(&self) -> Result<Session, Error> {
        self.store
            .load()?
            .ok_or_else(|| Error::not_signed_in("not signed in"))
    }
}

/// An exclusive lock on `refresh.lock` in the config directory, held until dropped.
struct Lock(#[allow(dead_code)] File);

impl Lock {
    async fn take(dir: &Path) -> Result<Lock, Error> {
        private_dir(dir)?;
        let path = dir.join("refresh.lock");
        let mut open = OpenOptions::new();
        open.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let file = open
            .open(&path)
            .map_err(|e| Error::Failed(format!("could not open {}: {e}", path.display())))?;
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock(file)),
                Err(TryLockError::WouldBlock) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Error::Failed(
                            "another claude-aws has been renewing the sign-in for too long".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(TryLockError::Error(e)) => {
                    return Err(Error::Failed(format!(
                        "could not lock {}: {e}",
                        path.display()
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(gw: &str) -> Session {
        Session {
            gateway: gw.into(),
            refresh_token: None,
            access_token: None,
            access_expires_at: None,
        }
    }

    #[test]
    fn the_flag_wins_over_the_stored_gateway() {
        let s = stored("https://a.example.com");
        assert_eq!(
            resolve_gateway(Some("https://b.example.com/"), Some(&s)).unwrap(),
            "https://b.example.com"
        );
        assert_eq!(
            resolve_gateway(None, Some(&s)).unwrap(),
            "https://a.example.com"
        );
        assert!(matches!(
            resolve_gateway(None, None),
            Err(Error::NotSignedIn(_))
        ));
        assert!(matches!(
            resolve_gateway(Some("http://a.example.com"), None),
            Err(Error::Usage(_))
        ));
    }

    #[tokio::test]
    async fn the_lock_is_exclusive_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let first = Lock::take(tmp.path()).await.unwrap();
        assert!(tmp.path().join("refresh.lock").exists());
        let second = tokio::time::timeout(Duration::from_millis(300), Lock::take(tmp.path())).await;
        assert!(second.is_err(), "a held lock is not taken twice");
        drop(first);
        let _again = tokio::time::timeout(Duration::from_millis(300), Lock::take(tmp.path()))
            .await
            .expect("a dropped lock is free at once")
            .unwrap();
    }

    #[tokio::test]
    async fn a_lock_file_left_behind_does_not_hold_anyone() {
        // What a holder that died leaves: the file, without the lock the process held on it.
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("refresh.lock"), b"").unwrap();
        tokio::time::timeout(Duration::from_millis(300), Lock::take(tmp.path()))
            .await
            .expect("taken at once")
            .unwrap();
    }
}
