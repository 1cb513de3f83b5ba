//! The abuse mix: against one gateway at once, unauthenticated large uploads to the sign-in routes
//! and the relay (chunked and with a length), bodies that trickle in, hundreds of idle
//! connections and maximal authenticated relay payloads, while a signed-in user keeps using
//! `/v1/messages`. The user is served throughout, the process stays under a memory ceiling that
//! fits the default 1 GiB task with a wide margin, and it returns near its baseline afterwards.
//! Every client is bounded and stops by itself; everything is on loopback.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use testkit::{FakeBedrock, Options};

use crate::support::flood::{drip, post, Framing};
use crate::support::gateway::{config_with, double_upstream, token_for, Gateway};
use crate::support::otlp::Receiver;
use crate::support::pg::shared;

/// The documented ceiling (docs/GUIDE.md, "Limits"): resident memory under the mix.
const CEILING_KIB: u64 = 384 * 1024;
/// How far above its baseline the process may stay once the mix is over.
const SETTLED_KIB: u64 = 96 * 1024;
const MIB: u64 = 1 << 20;
const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";
const SIGN_IN: [&str; 4] = [
    "/oauth/token",
    "/oauth/device_authorization",
    "/device",
    "/device/deny",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_users_are_served_through_an_abuse_mix_within_the_memory_ceiling() {
    let opts = Options::default();
    let fake = FakeBedrock::start(opts.clone()).await.unwrap();
    let receiver = Receiver::start().await;
    receiver.hold(Duration::from_millis(500));
    let ups = double_upstream(&fake, &opts);
    let url = shared().new_db();
    let extra = format!(
        "telemetry:\n  forward_to:\n    - {{url: '{}', metrics: true, logs: true, traces: true}}\nlimits: {{small_body_read_timeout_seconds: 3}}\n",
        receiver.url
    );
    let gw = tokio::task::spawn_blocking(move || {
        Gateway::start(
            |port| {
                config_with(port, &url, &ups, &extra).replacen(
                    &format!("listen: {{host: 127.0.0.1, port: {port}}}"),
                    &format!("listen: {{host: 127.0.0.1, port: {port}, public_url: 'http://127.0.0.1:{port}'}}"),
                    1,
                )
            },
            &[],
        )
    })
    .await
    .unwrap();
    let port = gw.port;
    let http = crate::support::client();
    let user = token_for("dev1", &["eng"], Some(&format!("http://127.0.0.1:{port}")));
    let ask = || {
        http.post(format!("http://127.0.0.1:{port}/v1/messages"))
            .bearer_auth(&user)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(ask().await.unwrap().status(), 200);
    }
    let baseline = gw.rss_kib();
    assert!(baseline > 0);

    // Resident memory, sampled until the mix is over.
    let peak = Arc::new(AtomicU64::new(baseline));
    let stop = Arc::new(AtomicBool::new(false));
    let pid = gw.pid();
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_of(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // 300 idle connections: half silent, half stopped in the middle of a request head.
    let idle: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            if i % 2 == 1 {
                s.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
            }
            s
        })
        .collect();

    let mut clients: Vec<std::thread::JoinHandle<(String, u16)>> = Vec::new();
    // 32 unauthenticated 32 MiB uploads to the sign-in routes, chunked and with a length.
    for i in 0..32 {
        let path = SIGN_IN[i % SIGN_IN.len()];
        let framing = if i % 2 == 0 {
            Framing::Chunked
        } else {
            Framing::Length
        };
        clients.push(std::thread::spawn(move || {
            let (res, _) = post(port, path, FORM, 32 * MIB, framing);
            (format!("upload {path}"), res.status)
        }));
    }
    // 8 unauthenticated 32 MiB uploads to the relay.
    for i in 0..8 {
        let framing = if i % 2 == 0 {
            Framing::Chunked
        } else {
            Framing::Length
        };
        clients.push(std::thread::spawn(move || {
            let (res, _) = post(port, "/v1/logs", FORM, 32 * MIB, framing);
            ("anonymous relay".into(), res.status)
        }));
    }
    // 16 bodies that trickle in.
    for i in 0..16 {
        let path = SIGN_IN[i % SIGN_IN.len()];
        clients.push(std::thread::spawn(move || {
            let res = drip(port, path, FORM, 1000, Duration::from_millis(200));
            (format!("drip {path}"), res.status)
        }));
    }
    // 32 maximal (4 MiB) authenticated relay payloads at once: more than the relay may hold.
    let tele = token_for("tele", &[], Some(&format!("http://127.0.0.1:{port}")));
    for _ in 0..32 {
        let auth =
            format!("Authorization: Bearer {tele}\r\nContent-Type: application/x-protobuf\r\n");
        clients.push(std::thread::spawn(move || {
            let (res, _) = post(port, "/v1/metrics", &auth, 4 * MIB, Framing::Length);
            ("relay".into(), res.status)
        }));
    }

    // Meanwhile, the signed-in user.
    for _ in 0..20 {
        let res = ask().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["type"], "message", "{body}");
    }

    let outcomes = tokio::task::spawn_blocking(move || {
        clients
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    drop(idle);
    let mut relayed = 0;
    for (what, status) in &outcomes {
        let expected: &[u16] = match what.as_str() {
            // Cut off at the form limit, or refused from the head by a sign-in rate limit.
            w if w.starts_with("upload") => &[413, 429],
            w if w.starts_with("drip") => &[408, 429],
            // Refused on its length from the head, or for want of a bearer before its body.
            "anonymous relay" => &[401, 413],
            _ => &[200, 503],
        };
        assert!(expected.contains(status), "{what}: {status}");
        if what == "relay" && *status == 200 {
            relayed += 1;
        }
    }
    assert!(relayed > 0, "no maximal payload was relayed");
    // The 64 MiB budget holds at most 16 payloads of 4 MiB at any moment.
    assert!(
        receiver.max_in_flight() <= 16,
        "{} payloads in flight at once",
        receiver.max_in_flight()
    );
    assert!(receiver.wait_for(relayed, Duration::from_secs(20)).await);
    assert_eq!(ask().await.unwrap().status(), 200, "still serving");

    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    // Settled: sampled until it stops falling (bounded).
    let mut after = gw.rss_kib();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let now = gw.rss_kib();
        if now >= after {
            break;
        }
        after = now;
    }
    eprintln!("abuse mix: baseline {baseline} KiB, peak {peak} KiB, after {after} KiB");
    assert!(
        peak < CEILING_KIB,
        "peak RSS {peak} KiB over the {CEILING_KIB} KiB ceiling"
    );
    assert!(
        after < baseline + SETTLED_KIB,
        "RSS stayed at {after} KiB after the mix (baseline {baseline} KiB)"
    );
    gw.assert_no_secrets();
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A connection that never sends a byte, or stops in the middle of its request head, is closed
/// once `timeouts.client_header_read_ms` has passed; one that finishes its request in time is
/// answered. (A connection that sent nothing used to stay open for as long as the client liked.)
#[test]
fn connections_without_a_request_head_are_closed_after_the_header_timeout() {
    use std::io::Read;
    use std::time::Instant;

    let url = shared().new_db();
    let gw = Gateway::start(
        |port| {
            crate::support::gateway::config(port, &url, "timeouts: {client_header_read_ms: 300}\n")
        },
        &[],
    );
    let silent = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    let mut partial = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    for (what, mut s) in [("silent", silent), ("partial", partial)] {
        // The read returns when the gateway closes; the bound only keeps a failure from hanging.
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        let read = s.read_to_end(&mut buf);
        assert!(read.is_ok(), "{what} connection still open: {read:?}");
        assert!(
            buf.is_empty() || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"),
            "{what}: {}",
            String::from_utf8_lossy(&buf)
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));

    // A request that arrives in time is served, on a connection of the same kind.
    let mut prompt = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    prompt
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    prompt.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
