//! Oversized uploads are refused from the request head: a 1 GiB body is never read, and the
//! process does not grow.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::gateway::{config, Gateway};
use crate::support::http::{get, parse};
use crate::support::pg::shared;

const GIB: u64 = 1 << 30;

/// Sends `head` then streams up to 1 GiB of body; returns the response and how much was sent.
fn upload(port: u16, head: &str) -> (crate::support::http::Response, u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("{head}\r\n\r\n").as_bytes()).unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let mut writer = s.try_clone().unwrap();
    let counter = sent.clone();
    let pump = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        while counter.load(Ordering::Relaxed) < GIB {
            if writer.write_all(&chunk).is_err() {
                return;
            }
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = pump.join();
    (parse(&buf), sent.load(Ordering::Relaxed))
}

#[test]
fn a_one_gib_upload_is_refused_without_growing_the_process() {
    let url = shared().new_db();
    let gw = Gateway::start(|port| config(port, &url, ""), &[]);
    for _ in 0..20 {
        get(gw.port, "/healthz", &[]);
    }
    let before = gw.rss_kib();
    assert!(before > 0);

    let (res, sent) = upload(gw.port, &format!("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {GIB}"));
    assert_eq!(res.status, 413, "{res:?}");
    assert!(
        sent < GIB / 2,
        "the gateway kept reading the body: {sent} bytes went in"
    );

    let (res, sent) = upload(gw.port, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked");
    assert_eq!(res.status, 411, "{res:?}");
    assert!(sent < GIB / 2, "{sent}");

    let after = gw.rss_kib();
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert_eq!(get(gw.port, "/healthz", &[]).status, 200, "still serving");
    gw.assert_no_secrets();
}
