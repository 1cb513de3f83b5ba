//! A TCP proxy on loopback between a gateway and PostgreSQL that holds every chunk the client
//! sends for a fixed delay before passing it on (the server's answers pass at once), so each round
//! trip costs about that much more: PostgreSQL in another availability zone, on one machine. It
//! counts the chunks, which is how many times the client waited on the server (a client sends a
//! round trip's messages in one write; two writes that arrive together count once). And a
//! minimal PostgreSQL client that times `SELECT 1`, to show the delay a round trip really gains.
//!
//! The proxy uses blocking threads: a thread sleeps to within tens of microseconds of its
//! deadline, where the async runtime's timer rounds up to the next millisecond.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running proxy; its threads end with the process.
pub struct DelayProxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// Client→server chunks so far, over every connection.
    pub chunks: Arc<AtomicU64>,
}

/// Starts a proxy to `server` that delays each client→server chunk by `delay`.
pub fn start(server: SocketAddr, delay: Duration) -> Result<DelayProxy, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let chunks = Arc::new(AtomicU64::new(0));
    let count = chunks.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || {
                let _ = relay(client, server, delay, count);
            });
        }
    });
    Ok(DelayProxy { port, chunks })
}

fn relay(
    client: TcpStream,
    server: SocketAddr,
    delay: Duration,
    count: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let server = TcpStream::connect(server)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    // Server → client: as it comes.
    let (mut from_server, mut to_client) = (server.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    // Client → server: each chunk stamped when read and written `delay` later, in order, so
    // chunks in flight together are delayed once each, not one after another.
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let mut to_server = server;
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to_server.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let mut from_client = client;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from_client.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let nth = count.fetch_add(1, Ordering::SeqCst) + 1;
        if trace() {
            eprintln!("pg chunk {nth}: {}", describe(&buf[..n]));
        }
        if tx
            .send((Instant::now() + delay, buf[..n].to_vec()))
            .is_err()
        {
            return Ok(());
        }
    }
}

/// Set by `--trace-pg`: each chunk's messages go to stderr.
pub static TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `--trace-pg` was given.
pub fn trace() -> bool {
    TRACE.load(Ordering::Relaxed)
}

/// A chunk's messages: each one's type and the start of a statement's text (`P` parse, `Q`
/// simple query, `B` bind, `E` execute, `S` sync; no type for the startup message).
fn describe(chunk: &[u8]) -> String {
    let mut out = Vec::new();
    let mut rest = chunk;
    while rest.len() >= 5 {
        let kind = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if !kind.is_ascii_alphabetic() || len < 4 {
            out.push("startup".to_owned());
            break;
        }
        let body = &rest[5..rest.len().min(1 + len)];
        let text: String = match kind {
            b'P' | b'Q' => String::from_utf8_lossy(body)
                .chars()
                .filter(|c| !c.is_control())
                .take(60)
                .collect(),
            _ => String::new(),
        };
        out.push(format!(
            "{}{}{text}",
            kind as char,
            if text.is_empty() { "" } else { " " }
        ));
        rest = &rest[rest.len().min(1 + len)..];
    }
    out.join(" | ")
}

/// The median time of `n` `SELECT 1` round trips to the PostgreSQL at `addr`, as `user` on
/// `database` (trust authentication, as the benchmark's PostgreSQL has).
pub async fn select_one(
    addr: SocketAddr,
    user: &str,
    database: &str,
    n: usize,
) -> Result<Duration, String> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut params = Vec::new();
    for (k, v) in [("user", user), ("database", database)] {
        params.extend_from_slice(k.as_bytes());
        params.push(0);
        params.extend_from_slice(v.as_bytes());
        params.push(0);
    }
    params.push(0);
    let mut startup = ((params.len() + 8) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    startup.extend_from_slice(&params);
    s.write_all(&startup).await.map_err(|e| e.to_string())?;
    until_ready(&mut s).await?;
    let sql = b"SELECT 1\0";
    let mut query = vec![b'Q'];
    query.extend_from_slice(&((sql.len() + 4) as u32).to_be_bytes());
    query.extend_from_slice(sql);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&query).await.map_err(|e| e.to_string())?;
        until_ready(&mut s).await?;
        times.push(t.elapsed());
    }
    let _ = s.write_all(&[b'X', 0, 0, 0, 4]).await;
    times.sort_unstable();
    times
        .get(times.len() / 2)
        .copied()
        .ok_or_else(|| "no round trip timed".into())
}

/// Reads backend messages up to `ReadyForQuery`; an `ErrorResponse` or an authentication request
/// other than "ok" is an error.
async fn until_ready(s: &mut tokio::net::TcpStream) -> Result<(), String> {
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).await.map_err(|e| e.to_string())?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        s.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        match head[0] {
            b'Z' => return Ok(()),
            b'E' => return Err("PostgreSQL answered with an error".into()),
            b'R' if body.get(..4) != Some(&[0, 0, 0, 0]) => {
                return Err("PostgreSQL asks for a password; the benchmark expects trust".into())
            }
            _ => {}
        }
    }
}
