//! Hostile clients over raw TCP: bodies larger than a route accepts (chunked or with a length),
//! bodies that trickle in, and connections that say nothing. Each stops by itself: when the
//! gateway answers or closes, or after a bounded number of bytes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::http::{parse, Response};

/// How a body is framed.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`, no length.
    Chunked,
    /// A `Content-Length` of the whole body.
    Length,
}

/// POSTs up to `total` bytes to `path` in 64 KiB pieces while reading the answer; stops sending
/// when the gateway answers or closes. Returns the answer and how many body bytes went out.
pub fn post(port: u16, path: &str, extra: &str, total: u64, framing: Framing) -> (Response, u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let framing_header = match framing {
        Framing::Chunked => "Transfer-Encoding: chunked".to_owned(),
        Framing::Length => format!("Content-Length: {total}"),
    };
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}{framing_header}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut writer = s.try_clone().unwrap();
    let (counter, stop) = (sent.clone(), done.clone());
    let pump = std::thread::spawn(move || {
        let piece = vec![b'a'; 64 << 10];
        while counter.load(Ordering::Relaxed) < total && !stop.load(Ordering::Relaxed) {
            let n = (total - counter.load(Ordering::Relaxed)).min(piece.len() as u64) as usize;
            let ok = match framing {
                Framing::Chunked => writer
                    .write_all(format!("{n:x}\r\n").as_bytes())
                    .and_then(|()| writer.write_all(&piece[..n]))
                    .and_then(|()| writer.write_all(b"\r\n")),
                Framing::Length => writer.write_all(&piece[..n]),
            };
            if ok.is_err() {
                return;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
        if matches!(framing, Framing::Chunked) {
            let _ = writer.write_all(b"0\r\n\r\n");
        }
    });
    let res = read_head(&mut s);
    done.store(true, Ordering::Relaxed);
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = pump.join();
    (res, sent.load(Ordering::Relaxed))
}

/// POSTs a body announced as `length` bytes but sent one byte every `every`, never all of it;
/// returns the answer (status 0 if none came within a minute).
pub fn drip(port: u16, path: &str, extra: &str, length: u64, every: Duration) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Content-Length: {length}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut writer = s.try_clone().unwrap();
    let stop = done.clone();
    let pump = std::thread::spawn(move || {
        for _ in 1..length {
            if stop.load(Ordering::Relaxed) || writer.write_all(b"a").is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    });
    let res = read_head(&mut s);
    done.store(true, Ordering::Relaxed);
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = pump.join();
    res
}

/// Sends only a request head announcing a `length`-byte body, and reads the answer.
pub fn head_only(port: u16, path: &str, extra: &str, length: u64) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Content-Length: {length}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    read_head(&mut s)
}

/// Reads a response head and whatever body came with it, until the blank line and a short
/// body or the connection's end.
fn read_head(s: &mut TcpStream) -> Response {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = parse(&buf[..end + 4]);
                    let want = head
                        .header("content-length")
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + want {
                        break;
                    }
                }
            }
        }
    }
    parse(&buf)
}
