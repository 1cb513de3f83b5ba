//! How the gateway proves itself to Bedrock: SigV4 with its own credentials, or a Bedrock API key
//! as a bearer token. Credentials come from the configured provider (static keys, an assumed role,
//! or the default chain: the ECS task role in production) and are kept until five minutes before
//! they expire; one caller at a time fetches new ones while the others keep signing with the old.

use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::errors::error_chain;
use crate::clock::SharedClock;
use crate::upstream::failure::{mask, Failure};

/// Credentials are replaced this long before they expire.
const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);

/// The signing name of the Bedrock runtime.
const SERVICE: &str = "bedrock";

/// How requests are authenticated.
pub enum Auth {
    /// SigV4 with the gateway's AWS credentials.
    SigV4(Signer),
    /// A Bedrock API key (`Authorization: Bearer`).
    Bearer(HeaderValue),
}

impl Auth {
    /// Adds the headers that authenticate a `POST` of `body` to `url`.
    pub async fn apply(
        &self,
        url: &str,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), Failure> {
        match self {
            Auth::Bearer(token) => {
                headers.insert(http::header::AUTHORIZATION, token.clone());
                Ok(())
            }
            Auth::SigV4(signer) => signer.sign(url, headers, body).await,
        }
    }
}

/// SigV4 signing with cached credentials.
pub struct Signer {
    provider: SharedCredentialsProvider,
    region: String,
    clock: SharedClock,
    cached: RwLock<Option<Credentials>>,
    refreshing: tokio::sync::Mutex<()>,
}

/// Whether credentials that expire at `expiry` are still good to sign with at `now`, keeping
/// [`REFRESH_AHEAD`] in hand (pure, for tests).
pub fn usable(expiry: Option<SystemTime>, now: SystemTime) -> bool {
    expiry.is_none_or(|e| e > now + REFRESH_AHEAD)
}

impl Signer {
    /// A signer for `region` with credentials from `provider`, reading the time from `clock`.
    pub fn new(provider: SharedCredentialsProvider, region: String, clock: SharedClock) -> Self {
        Self {
            provider,
            region,
            clock,
            cached: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn now(&self) -> SystemTime {
        self.clock.now().into()
    }

    fn cached(&self, now: SystemTime) -> Option<Credentials> {
        let cached = self.cached.read().ok()?;
        cached.as_ref().filter(|c| usable(c.expiry(), now)).cloned()
    }

    /// Credentials to sign with now.
    async fn credentials(&self) -> Result<Credentials, Failure> {
        if let Some(c) = self.cached(self.now()) {
            return Ok(c);
        }
        let _one = self.refreshing.lock().await;
        let now = self.now();
        if let Some(c) = self.cached(now) {
            return Ok(c);
        }
        match self.provider.provide_credentials().await {
            Ok(c) => {
                if let Ok(mut slot) = self.cached.write() {
                    *slot = Some(c.clone());
                }
                Ok(c)
            }
            Err(e) => {
                let detail = format!("Bedrock credentials: {}", mask(&error_chain(&e)));
                // Credentials not yet expired still sign, while the provider is unwell.
                let old = self.cached.read().ok().and_then(|c| c.clone());
                match old.filter(|c| c.expiry().is_none_or(|e| e > now)) {
                    Some(c) => {
                        tracing::warn!("{detail}; signing with the current ones until they expire");
                        Ok(c)
                    }
                    None => Err(Failure::transport(detail)),
                }
            }
        }
    }

    /// Signs a `POST` of `body` to `url`, adding the signature headers to `headers`.
    async fn sign(&self, url: &str, headers: &mut HeaderMap, body: &[u8]) -> Result<(), Failure> {
        let creds = self.credentials().await?;
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(self.now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Failure::transport(format!("Bedrock signing: {e}")))?
            .into();
        let signed = {
            let pairs = headers
                .iter()
                .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)));
            let signable = SignableRequest::new("POST", url, pairs, SignableBody::Bytes(body))
                .map_err(|e| Failure::transport(format!("Bedrock signing: {e}")))?;
            sign(signable, &params)
                .map_err(|e| Failure::transport(format!("Bedrock signing: {e}")))?
                .into_parts()
                .0
        };
        for h in signed.into_parts().0 {
            let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(h.name().as_bytes()),
                HeaderValue::from_str(h.value()),
            ) else {
                return Err(Failure::transport("Bedrock signing: bad header".into()));
            };
            value.set_sensitive(h.sensitive());
            headers.insert(name, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_replaced_five_minutes_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(usable(None, now), "static keys never expire");
        assert!(usable(Some(now + Duration::from_secs(301)), now));
        assert!(!usable(Some(now + Duration::from_secs(300)), now));
        assert!(!usable(Some(now - Duration::from_secs(1)), now));
    }

    #[tokio::test]
    async fn a_signed_request_verifies_with_the_doubles_independent_check() {
        let creds = Credentials::new("AKIDTEST", "secret-key", None, None, "test");
        let signer = Signer::new(
            SharedCredentialsProvider::new(creds),
            "us-east-1".into(),
            std::sync::Arc::new(crate::clock::SystemClock),
        );
        let path = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc/invoke";
        let url = format!("http://127.0.0.1:9/{}", &path[1..]);
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let body = br#"{"max_tokens":1}"#;
        let auth = Auth::SigV4(signer);
        assert!(auth.apply(&url, &mut headers, body).await.is_ok());
        headers.insert("host", HeaderValue::from_static("127.0.0.1:9"));
        let keys = testkit::sigv4::Keys {
            access_key_id: "AKIDTEST",
            secret_access_key: "secret-key",
            region: "us-east-1",
            service: "bedrock",
        };
        let req = testkit::sigv4::SignedRequest {
            method: "POST",
            path,
            query: None,
            authority: None,
            headers: &headers,
            body,
        };
        assert_eq!(
            testkit::sigv4::verify(
                &keys,
                &req,
                time::OffsetDateTime::now_utc().unix_timestamp()
            ),
            Ok(())
        );
        // The same signature over another body is refused.
        let forged = testkit::sigv4::SignedRequest {
            body: br#"{"max_tokens":9}"#,
            ..req
        };
        assert!(testkit::sigv4::verify(
            &keys,
            &forged,
            time::OffsetDateTime::now_utc().unix_timestamp()
        )
        .is_err());
    }

    /// A provider that hands out numbered credentials expiring `life` after the clock's now, or
    /// fails while `failing`; it counts its calls.
    #[derive(Debug)]
    struct Scripted {
        clock: std::sync::Arc<crate::clock::ManualClock>,
        life: Duration,
        calls: std::sync::atomic::AtomicUsize,
        failing: std::sync::atomic::AtomicBool,
    }

    /// A shared handle on [`Scripted`], which the signer owns while the test watches.
    #[derive(Debug)]
    struct Handle(std::sync::Arc<Scripted>);

    impl ProvideCredentials for Handle {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            use std::sync::atomic::Ordering;
            let s = &self.0;
            let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let out = if s.failing.load(Ordering::SeqCst) {
                Err(
                    aws_credential_types::provider::error::CredentialsError::provider_error(
                        "the metadata endpoint is down",
                    ),
                )
            } else {
                let now: SystemTime = crate::clock::Clock::now(&*s.clock).into();
                Ok(Credentials::new(
                    format!("AKID{n}"),
                    "secret",
                    None,
                    Some(now + s.life),
                    "scripted",
                ))
            };
            aws_credential_types::provider::future::ProvideCredentials::ready(out)
        }
    }

    #[tokio::test]
    async fn credentials_are_fetched_once_reused_and_replaced_before_they_expire() {
        use std::sync::atomic::Ordering;
        use std::sync::Arc;
        let clock = Arc::new(crate::clock::ManualClock::new(
            time::OffsetDateTime::from_unix_timestamp(1_800_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        ));
        let provider = Arc::new(Scripted {
            clock: clock.clone(),
            life: Duration::from_secs(3600),
            calls: Default::default(),
            failing: Default::default(),
        });
        let signer = Signer::new(
            SharedCredentialsProvider::new(Handle(provider.clone())),
            "us-east-1".into(),
            clock.clone(),
        );
        let key = |c: Result<Credentials, Failure>| c.map(|c| c.access_key_id().to_owned()).ok();

        // Many callers at once: one fetch.
        let all = futures_util::future::join_all((0..8).map(|_| signer.credentials())).await;
        assert!(all.into_iter().all(|c| key(c).as_deref() == Some("AKID1")));
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);

        // Fifty-four minutes on: still the same ones, no fetch.
        clock.advance(time::Duration::minutes(54));
        assert_eq!(key(signer.credentials().await).as_deref(), Some("AKID1"));
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);

        // Within five minutes of their end: replaced.
        clock.advance(time::Duration::minutes(2));
        assert_eq!(key(signer.credentials().await).as_deref(), Some("AKID2"));
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);

        // The provider fails near the end: the current ones sign until they expire...
        provider.failing.store(true, Ordering::SeqCst);
        clock.advance(time::Duration::minutes(57));
        assert_eq!(key(signer.credentials().await).as_deref(), Some("AKID2"));
        // ...and not after: the request fails as an unreachable upstream, naming no secret.
        clock.advance(time::Duration::minutes(4));
        let failed = signer.credentials().await.err();
        let detail = failed
            .map(|f| (f.status.as_u16(), f.detail))
            .unwrap_or_default();
        assert_eq!(detail.0, 502);
        assert!(
            detail.1.contains("metadata endpoint is down"),
            "{}",
            detail.1
        );

        // The provider recovers: new credentials at once.
        provider.failing.store(false, Ordering::SeqCst);
        assert_eq!(key(signer.credentials().await).as_deref(), Some("AKID5"));
    }
}
