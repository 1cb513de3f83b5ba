//! The load: streamed and plain Messages requests, to the double directly or through the gateway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

/// Where requests go and how.
#[derive(Clone)]
pub struct Target {
    client: reqwest::Client,
    url_stream: String,
    url_plain: String,
    auth: Auth,
    /// The Bedrock body: `anthropic_version` in it, the model and streaming in the path.
    bedrock_body: bool,
}

#[derive(Clone)]
enum Auth {
    /// The Bedrock double accepts unsigned calls.
    None,
    /// The gateway's session token.
    Bearer(String),
    /// The Anthropic API's key.
    ApiKey(&'static str),
}

impl Target {
    /// Straight to the double (its Bedrock paths).
    pub fn direct(fake: &str) -> Target {
        let model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
        Target {
            client: client(),
            url_stream: format!("{fake}/model/{model}/invoke-with-response-stream"),
            url_plain: format!("{fake}/model/{model}/invoke"),
            auth: Auth::None,
            bedrock_body: true,
        }
    }

    /// Straight to the Anthropic API stand-in.
    pub fn direct_anthropic(fake: &str) -> Target {
        Target {
            client: client(),
            url_stream: format!("{fake}/v1/messages"),
            url_plain: format!("{fake}/v1/messages"),
            auth: Auth::ApiKey(crate::fake_anthropic::API_KEY),
            bedrock_body: false,
        }
    }

    /// Through the gateway.
    pub fn gateway(gw: &str) -> Target {
        let token = token("bench");
        Target {
            client: client(),
            url_stream: format!("{gw}/v1/messages"),
            url_plain: format!("{gw}/v1/messages"),
            auth: Auth::Bearer(token),
            bedrock_body: false,
        }
    }

    /// The same target as worker `i`'s own user (each worker is a different developer).
    fn for_worker(&self, i: usize) -> Target {
        let mut t = self.clone();
        if let Auth::Bearer(_) = t.auth {
            t.auth = Auth::Bearer(token(&format!("dev{i}")));
        }
        t
    }

    fn request(&self, stream: bool) -> reqwest::RequestBuilder {
        let mut body = serde_json::json!({
            "max_tokens": 256,
            "messages": [{"role": "user", "content": "Write a short greeting."}],
        });
        if self.bedrock_body {
            body["anthropic_version"] = "bedrock-2023-05-31".into();
        } else {
            body["model"] = "claude-sonnet-4-5".into();
            body["stream"] = stream.into();
        }
        let url = if stream {
            &self.url_stream
        } else {
            &self.url_plain
        };
        let mut req = self.client.post(url).json(&body);
        match &self.auth {
            Auth::None => {}
            // Claude Code sends the API version to the gateway as to the API.
            Auth::Bearer(t) => req = req.bearer_auth(t).header("anthropic-version", "2023-06-01"),
            Auth::ApiKey(k) => {
                req = req
                    .header("x-api-key", *k)
                    .header("anthropic-version", "2023-06-01")
            }
        }
        req
    }
}

/// A session token for `sub`, minted with the benchmark gateway's secret.
fn token(sub: &str) -> String {
    token_in(sub, &[])
}

/// A session token for `sub` in `groups`, minted with the benchmark gateway's secret.
pub fn token_in(sub: &str, groups: &[&str]) -> String {
    use claude_gateway::auth::token::{Identity, SessionKeys};
    use claude_gateway::config::Secret;
    let keys = SessionKeys::new(&[Secret::new(crate::procs::SECRET)], None);
    let who = Identity {
        sub: sub.to_owned(),
        email: Some(format!("{sub}@example.com")),
        name: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        mfa_at: None,
    };
    keys.mint(
        &who,
        time::OffsetDateTime::now_utc(),
        time::Duration::hours(2),
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(2048)
        .build()
        .unwrap_or_default()
}

/// How much load.
#[derive(Clone, Copy)]
pub struct Workload {
    pub concurrency: usize,
    pub rounds: usize,
    pub stream: bool,
    /// Worker `i` starts `spread * i / concurrency` late: zero starts every worker at once (each
    /// round then arrives as one burst); a stream's length spreads arrivals evenly over it.
    pub spread: Duration,
}

/// Latencies of a run.
#[derive(Default)]
pub struct Run {
    pub ttfb: Vec<Duration>,
    pub total: Vec<Duration>,
}

async fn one(target: &Target, stream: bool) -> Result<(Duration, Duration), String> {
    let started = Instant::now();
    let res = target
        .request(stream)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("status {}", res.status()));
    }
    let mut body = res.bytes_stream();
    let mut ttfb = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if ttfb.is_none() && !chunk.is_empty() {
            ttfb = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    Ok((ttfb.unwrap_or(total), total))
}

/// `concurrency` workers each sending `rounds` requests back to back.
pub async fn streams(target: &Target, w: &Workload) -> Result<Run, String> {
    let mut tasks = Vec::new();
    for i in 0..w.concurrency {
        let t = target.for_worker(i);
        let (rounds, stream) = (w.rounds, w.stream);
        let late = w.spread.mul_f64(i as f64 / w.concurrency as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(late).await;
            let mut out = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                out.push(one(&t, stream).await?);
            }
            Ok::<_, String>(out)
        }));
    }
    let mut run = Run::default();
    for t in tasks {
        for (ttfb, total) in t.await.map_err(|e| e.to_string())?? {
            run.ttfb.push(ttfb);
            run.total.push(total);
        }
    }
    Ok(run)
}

/// Slices of non-streaming load taken in turn on two targets.
const PAIR_SLICES: u32 = 10;

/// [`rps`] of two targets, `len` each, taken in turn in slices, so a drift in the machine's
/// speed (large on shared cores) falls on both alike.
pub async fn rps_pair(
    a: &Target,
    b: &Target,
    concurrency: usize,
    len: Duration,
) -> Result<(f64, f64), String> {
    let slice = len / PAIR_SLICES;
    let (mut sa, mut sb) = (0.0, 0.0);
    for _ in 0..PAIR_SLICES {
        sa += rps(a, concurrency, slice).await?;
        sb += rps(b, concurrency, slice).await?;
    }
    let n = f64::from(PAIR_SLICES);
    Ok((sa / n, sb / n))
}

/// Non-streaming requests per second with `concurrency` workers for `len`.
pub async fn rps(target: &Target, concurrency: usize, len: Duration) -> Result<f64, String> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + len;
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let (t, done) = (target.for_worker(i), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                one(&t, false).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / len.as_secs_f64())
}

/// Opens `n` slow streams at once, waits until all have their first byte, and reads `rss` then.
pub async fn hold_open(
    target: &Target,
    n: usize,
    mut rss: impl FnMut() -> u64,
) -> Result<u64, String> {
    let started = Arc::new(AtomicU64::new(0));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (t, started, mut release) = (target.clone(), started.clone(), release_rx.clone());
        tasks.push(tokio::spawn(async move {
            let res = t.request(true).send().await.map_err(|e| e.to_string())?;
            let mut body = res.bytes_stream();
            body.next().await;
            started.fetch_add(1, Ordering::Relaxed);
            let _ = release.changed().await;
            Ok::<_, String>(())
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while started.load(Ordering::Relaxed) < n as u64 {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {n} streams opened",
                started.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kib = rss();
    let _ = release_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(kib)
}

/// What a counter (the PostgreSQL delay proxy's count of client→server chunks) saw around
/// sequential streams.
#[derive(Default)]
pub struct Counted {
    /// Time to first byte of each stream.
    pub ttfb: Vec<Duration>,
    /// Counted between each request's start and its first byte.
    pub before_first_byte: Vec<u64>,
    /// Counted between each stream's first byte and its `message_delta` event, when the text
    /// has been relayed (what the stream's end sets off, racing its last bytes, is not).
    pub relay: Vec<u64>,
    /// Counted from the first request's start until `gap` after the last stream ended.
    pub total: u64,
}

/// `n` streams one after the other, `gap` apart (so what a stream sets off after its end lands
/// before the next begins), reading `counter` at each stream's start, first byte and end.
pub async fn counted(
    target: &Target,
    n: usize,
    gap: Duration,
    counter: &AtomicU64,
) -> Result<Counted, String> {
    let mut out = Counted::default();
    let first = counter.load(Ordering::SeqCst);
    for _ in 0..n {
        let c0 = counter.load(Ordering::SeqCst);
        let started = Instant::now();
        let res = target
            .request(true)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("status {}", res.status()));
        }
        let mut body = res.bytes_stream();
        let (mut c1, mut c2) = (None, None);
        let mut last = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if chunk.is_empty() {
                continue;
            }
            last = counter.load(Ordering::SeqCst);
            if c1.is_none() {
                out.ttfb.push(started.elapsed());
                c1 = Some(last);
            }
            if c2.is_none() && contains(&chunk, b"event: message_delta") {
                c2 = Some(last);
            }
        }
        let c1 = c1.ok_or("a stream without a byte")?;
        let c2 = c2.unwrap_or(last);
        if crate::pg_delay::trace() {
            eprintln!("stream: chunks {c0}..{c1} before its first byte, {c1}..{c2} relaying");
        }
        out.before_first_byte.push(c1 - c0);
        out.relay.push(c2 - c1);
        tokio::time::sleep(gap).await;
    }
    out.total = counter.load(Ordering::SeqCst) - first;
    Ok(out)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Checks that `target` answers as the Messages API does: a streamed answer that ends with
/// `message_stop`, and a whole message with the stand-ins' 20 output tokens.
pub async fn check_answers(target: &Target) -> Result<(), String> {
    let streamed = target
        .request(true)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    if !streamed.contains("event: message_stop") {
        return Err(format!(
            "a streamed answer without message_stop: {streamed:.200}"
        ));
    }
    let whole: serde_json::Value = target
        .request(false)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if whole["type"] != "message" || whole["usage"]["output_tokens"] != 20 {
        return Err(format!("not the whole message: {whole}"));
    }
    Ok(())
}
