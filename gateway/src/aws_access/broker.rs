//! The broker: what the credential endpoint keeps between requests. The config's member entries
//! (read once), the STS minter, and the cache of credentials still good.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use super::assume::{self, Developer};
use super::credentials::{Cache, Credentials, Key};
use super::gateway_credential::ProxyKeys;
use super::membership::Entry;
use super::mint::Minter;
use super::wire::AwsError;
use crate::auth::token::Identity;
use crate::config::aws_access::{AwsAccess, AwsProject};
use crate::config::Secret;
use crate::store::{Store, StoreError};

/// Agent access's long-lived parts.
#[derive(Debug)]
pub struct Broker {
    /// Member entries from config.
    config_entries: Vec<Entry>,
    /// Sends `AssumeRole`.
    pub minter: Minter,
    /// Derive the secrets of gateway-only credentials.
    pub proxy_keys: ProxyKeys,
    cache: Mutex<Cache>,
}

impl Broker {
    /// The broker for `cfg`, deriving gateway-credential keys from `secrets`
    /// (`session.jwt_secret`).
    pub fn new(cfg: &AwsAccess, secrets: &[Secret]) -> Self {
        Self {
            proxy_keys: ProxyKeys::new(secrets),
            config_entries: cfg.members.iter().filter_map(Entry::from_config).collect(),
            minter: Minter::new(cfg.sts_endpoint_url.clone()),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The member entries that may name `who`: config's, and those of the Admin API that name
    /// them (on `project` when given).
    pub async fn entries(
        &self,
        store: &Store,
        who: &Identity,
        project: Option<&str>,
    ) -> Result<Vec<Entry>, StoreError> {
        let stored = store
            .aws_member_entries(project, who.email.as_deref(), &who.groups)
            .await?;
        let mut all = self.config_entries.clone();
        all.extend(stored);
        Ok(all)
    }

    /// A held credential for `key` that is still good at `now` and ends no later than `by`.
    pub fn cached(
        &self,
        key: &Key,
        now: OffsetDateTime,
        by: OffsetDateTime,
    ) -> Option<Credentials> {
        let cache = self.cache.lock().ok()?;
        cache.get(key, now).filter(|c| c.expiration <= by).cloned()
    }

    /// Keeps `creds` for `key`.
    pub fn keep(&self, key: Key, creds: Credentials, now: OffsetDateTime) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(key, creds, now);
        }
    }

    /// Mints a credential for `key` on `project` lasting `duration`, and keeps it for reuse.
    pub async fn mint(
        &self,
        project: &AwsProject,
        key: Key,
        dev: Developer<'_>,
        grant: Option<&str>,
        duration: Duration,
        now: OffsetDateTime,
    ) -> Result<Credentials, AwsError> {
        let req = assume::request(project, key.2, dev, grant, duration).map_err(|e| {
            AwsError::PolicyTooLarge {
                project: project.name.clone(),
                detail: e.to_string(),
            }
        })?;
        let c = self.minter.assume(&project.name, &req).await?;
        self.keep(key, c.clone(), now);
        Ok(c)
    }

    /// Forgets `user`'s credentials on `project`.
    pub fn forget(&self, user: &str, project: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.forget(user, project);
        }
    }
}
