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

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        s.push_str(": ");
        s.push_str(&e.to_string());
        source = e.source();
    }
    s
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
}
