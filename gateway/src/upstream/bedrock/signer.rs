//! How the gateway proves itself to Bedrock: SigV4 with its own credentials, or a Bedrock API key
//! as a bearer token. Credentials come from the configured provider (static keys, an assumed role,
//! or the default chain: the ECS task role in production) and are kept until five minutes before
//! they expire; one caller at a time fetches new ones while the others keep signing with the old.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_lc_rs::{digest, hmac};
use http::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use time::OffsetDateTime;

use super::errors::error_chain;
use crate::clock::SharedClock;
use crate::config::hex;
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
        url: &Url,
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
    /// The day's signing key, with the key id and day it is for.
    day_key: RwLock<Option<Arc<DayKey>>>,
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
            day_key: RwLock::new(None),
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
    async fn sign(&self, url: &Url, headers: &mut HeaderMap, body: &[u8]) -> Result<(), Failure> {
        let creds = self.credentials().await?;
        let now = self.clock.now();
        let day = Day::of(now);
        let key = self.day_key(&creds, day);
        let signed = sign_post(
            &Scope {
                access_key_id: creds.access_key_id(),
                session_token: creds.session_token(),
                region: &self.region,
                key: &key.key,
            },
            url,
            headers,
            body,
            now,
        )
        .map_err(|e| Failure::transport(format!("Bedrock signing: {e}")))?;
        for (name, mut value, sensitive) in signed {
            value.set_sensitive(sensitive);
            headers.insert(name, value);
        }
        Ok(())
    }

    /// The day's signing key of these credentials, derived once a day (four HMACs saved on
    /// every request).
    fn day_key(&self, creds: &Credentials, day: Day) -> Arc<DayKey> {
        if let Ok(slot) = self.day_key.read() {
            if let Some(k) = slot.as_ref() {
                if k.day == day && k.creds == *creds {
                    return k.clone();
                }
            }
        }
        let key = Arc::new(DayKey {
            creds: creds.clone(),
            day,
            key: signing_key(creds.secret_access_key(), day, &self.region),
        });
        if let Ok(mut slot) = self.day_key.write() {
            *slot = Some(key.clone());
        }
        key
    }
}

/// A signing key, with the credentials and day it was derived for (the whole credentials, so
/// a secret replaced under the same key id gets a key of its own).
struct DayKey {
    creds: Credentials,
    day: Day,
    key: hmac::Key,
}

/// A UTC day, as SigV4's credential scope names it (`YYYYMMDD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Day([u8; 8]);

impl Day {
    fn of(t: OffsetDateTime) -> Day {
        let t = t.to_offset(time::UtcOffset::UTC);
        let mut d = [0u8; 8];
        digits(&mut d[..4], t.year().unsigned_abs());
        digits(&mut d[4..6], u32::from(u8::from(t.month())));
        digits(&mut d[6..], u32::from(t.day()));
        Day(d)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("00000000")
    }
}

/// Writes `n` as decimal digits filling `out`, zero-padded.
fn digits(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `kSigning` of SigV4 for the Bedrock runtime in `region` on `day`.
fn signing_key(secret: &str, day: Day, region: &str) -> hmac::Key {
    let step = |key: &[u8], data: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let k = step(format!("AWS4{secret}").as_bytes(), day.as_str().as_bytes());
    let k = step(k.as_ref(), region.as_bytes());
    let k = step(k.as_ref(), SERVICE.as_bytes());
    let k = step(k.as_ref(), b"aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, k.as_ref())
}

/// Who signs: the key id, the session token if any, the region and the day's signing key.
struct Scope<'a> {
    access_key_id: &'a str,
    session_token: Option<&'a str>,
    region: &'a str,
    /// [`signing_key`] for the day of the signing time.
    key: &'a hmac::Key,
}

/// The headers that sign a `POST` of `body` to `url` carrying `headers` at `now`: `x-amz-date`,
/// `x-amz-security-token` with temporary credentials, and `authorization`, each with whether it
/// is secret. Every header given is signed, with `host` (pure, for tests).
///
/// The canonical path encodes the URL's already encoded path once more, as SigV4 asks of every
/// service but S3. A URL with a query is refused: the runtime's paths have none.
fn sign_post(
    scope: &Scope<'_>,
    url: &Url,
    headers: &HeaderMap,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<Vec<(HeaderName, HeaderValue, bool)>, &'static str> {
    if url.query().is_some() {
        return Err("a Bedrock URL has no query");
    }
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => return Err("a URL without a host"),
    };
    let t = now.to_offset(time::UtcOffset::UTC);
    let day = Day::of(t);
    let mut amz_date = [0u8; 16];
    amz_date[..8].copy_from_slice(&day.0);
    amz_date[8] = b'T';
    digits(&mut amz_date[9..11], u32::from(t.hour()));
    digits(&mut amz_date[11..13], u32::from(t.minute()));
    digits(&mut amz_date[13..15], u32::from(t.second()));
    amz_date[15] = b'Z';
    let amz_date = std::str::from_utf8(&amz_date).map_err(|_| "a date out of range")?;

    // Lowercase names (as `HeaderName` keeps them), sorted; values trimmed.
    let mut signed: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 3);
    for (name, value) in headers {
        let value = value
            .to_str()
            .map_err(|_| "a header value that is not text")?;
        signed.push((name.as_str(), value.trim()));
    }
    signed.push(("host", &host));
    signed.push(("x-amz-date", amz_date));
    if let Some(token) = scope.session_token {
        signed.push(("x-amz-security-token", token));
    }
    signed.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if signed.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err("a header given twice");
    }

    let mut canonical = String::with_capacity(512);
    canonical.push_str("POST\n");
    for b in url.path().bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            canonical.push(char::from(b));
        } else {
            canonical.push_str(&format!("%{b:02X}"));
        }
    }
    canonical.push_str("\n\n");
    for (name, value) in &signed {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    canonical.push('\n');
    let names: Vec<&str> = signed.iter().map(|(n, _)| *n).collect();
    let names = names.join(";");
    canonical.push_str(&names);
    canonical.push('\n');
    canonical.push_str(&hex(digest::digest(&digest::SHA256, body).as_ref()));

    let credential_scope = format!("{}/{}/{SERVICE}/aws4_request", day.as_str(), scope.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let signature = hex(hmac::sign(scope.key, to_sign.as_bytes()).as_ref());
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={names}, Signature={signature}",
        scope.access_key_id
    );

    let value = |v: &str| HeaderValue::from_str(v).map_err(|_| "a header value that is not text");
    let mut out = vec![
        (
            HeaderName::from_static("x-amz-date"),
            value(amz_date)?,
            false,
        ),
        (http::header::AUTHORIZATION, value(&authorization)?, true),
    ];
    if let Some(token) = scope.session_token {
        out.push((
            HeaderName::from_static("x-amz-security-token"),
            value(token)?,
            true,
        ));
    }
    Ok(out)
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
        let url = Url::parse(&format!("http://127.0.0.1:9/{}", &path[1..])).unwrap();
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

    /// What our signer and the SDK's add to the same request, each as sorted (name, value) pairs.
    fn both_signers(
        creds: &Credentials,
        url: &Url,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> [Vec<(String, String)>; 2] {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        use aws_sigv4::sign::v4;
        let key = signing_key(creds.secret_access_key(), Day::of(now), "eu-west-3");
        let scope = Scope {
            access_key_id: creds.access_key_id(),
            session_token: creds.session_token(),
            region: "eu-west-3",
            key: &key,
        };
        let mut ours: Vec<(String, String)> = sign_post(&scope, url, headers, body, now)
            .unwrap()
            .into_iter()
            .map(|(n, v, _)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();

        let identity = creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name(SERVICE)
            .time(now.into())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let pairs = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()));
        let signable =
            SignableRequest::new("POST", url.as_str(), pairs, SignableBody::Bytes(body)).unwrap();
        let mut sdk: Vec<(String, String)> = sign(signable, &params)
            .unwrap()
            .into_parts()
            .0
            .into_parts()
            .0
            .into_iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned()))
            .collect();
        ours.sort();
        sdk.sort();
        [ours, sdk]
    }

    proptest::proptest! {
        #[test]
        fn signatures_are_the_sdks(
            model in "[a-zA-Z0-9.:/_~ -]{1,60}",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            secs in 0i64..4_000_000_000,
            token in proptest::option::of("[A-Za-z0-9+/=]{1,80}"),
            port in proptest::option::of(1u16..u16::MAX),
            stream in proptest::bool::ANY,
        ) {
            use percent_encoding::utf8_percent_encode;
            let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token, None, "test");
            let host = match port {
                Some(p) => format!("https://bedrock-runtime.eu-west-3.amazonaws.com:{p}"),
                None => "https://bedrock-runtime.eu-west-3.amazonaws.com".to_owned(),
            };
            let action = if stream { "invoke-with-response-stream" } else { "invoke" };
            let base = crate::upstream::BaseUrl::parse(&host).unwrap();
            let url = base.at(&format!("/model/{}/{action}", utf8_percent_encode(&model, super::super::SEGMENT)));
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            headers.insert("x-amzn-bedrock-accept", HeaderValue::from_static("application/json"));
            let now = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let [ours, sdk] = both_signers(&creds, &url, &headers, &body, now);
            proptest::prop_assert_eq!(ours, sdk);
        }
    }

    #[test]
    fn the_day_key_follows_the_day_and_the_credentials() {
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new(
            OffsetDateTime::from_unix_timestamp(1_800_000_000 - 1_800_000_000 % 86_400 + 86_399)
                .unwrap(),
        ));
        let signer = Signer::new(
            SharedCredentialsProvider::new(Credentials::new("AKID1", "s1", None, None, "t")),
            "us-east-1".into(),
            clock.clone(),
        );
        let a = Credentials::new("AKID1", "s1", None, None, "t");
        let b = Credentials::new("AKID2", "s2", None, None, "t");
        let tag = |k: &hmac::Key| hmac::sign(k, b"x").as_ref().to_vec();
        let today = Day::of(crate::clock::Clock::now(&*clock));
        let first = tag(&signer.day_key(&a, today).key);
        assert_eq!(tag(&signer.day_key(&a, today).key), first);
        assert_eq!(first, tag(&signing_key("s1", today, "us-east-1")));
        // Other credentials: their own key.
        assert_eq!(
            tag(&signer.day_key(&b, today).key),
            tag(&signing_key("s2", today, "us-east-1"))
        );
        // The same key id with another secret: a key of its own too.
        let rotated = Credentials::new("AKID2", "s3", None, None, "t");
        assert_eq!(
            tag(&signer.day_key(&rotated, today).key),
            tag(&signing_key("s3", today, "us-east-1"))
        );
        // A second later it is the next day: a new key.
        clock.advance(time::Duration::seconds(1));
        let tomorrow = Day::of(crate::clock::Clock::now(&*clock));
        assert_ne!(tomorrow, today);
        let next = tag(&signer.day_key(&a, tomorrow).key);
        assert_ne!(next, first);
        assert_eq!(next, tag(&signing_key("s1", tomorrow, "us-east-1")));
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
