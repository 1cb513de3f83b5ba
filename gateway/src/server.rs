//! Sockets: accept connections (plain or TLS), set TCP_NODELAY, serve HTTP/1.1, and HTTP/2 where
//! TLS negotiated it, and on shutdown stop accepting and let open requests and streams finish
//! within the drain window.
//!
//! The protocol is known before the first byte is read: a plain connection is HTTP/1.1 (as from a
//! load balancer or the reference gateway's clients), a TLS one is what ALPN chose. Guessing it
//! from the first bytes instead would read them into a buffer of their own and, once handed back,
//! double each connection's read buffer (16 KB instead of 8 on every open stream).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::util::Oneshot;
use tower::ServiceExt;

use crate::h2_idle::{idle_for, Activity, Tracked};
use crate::http::access::ConnPeer;
use crate::shutdown::{Phase, Shutdown};
use crate::write_stall::WriteStall;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("listen.tls.{field}: {message}")]
    Pem {
        /// `cert` or `key`.
        field: &'static str,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the pair.
    #[error("listen.tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A TLS acceptor from PEM files, with rustls on aws-lc-rs, offering h2 and http/1.1.
pub fn tls_acceptor(cert_path: &str, key_path: &str) -> Result<TlsAcceptor, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            field: "cert",
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            field: "cert",
            message: "no certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Pem {
        field: "key",
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// How long a client may take over its side of a connection.
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    /// From the connection's start, or the end of its last answer, to a complete request head.
    pub header_read: Duration,
    /// One write waiting for the client to read.
    pub write_stall: Duration,
}

/// After the drain window, how long streams ended in-band get to reach their clients.
const CUT_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until the stop begins, then drains for at most `drain`; past it,
/// cuts what is still open (streams end with an in-band error) and waits a moment for that.
/// A client that sends no complete request head within `client.header_read`, or leaves a write
/// waiting `client.write_stall` for it to read, loses its connection.
/// Returns true when every connection finished inside the window.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    shutdown: Shutdown,
    drain: Duration,
    client: ClientTimeouts,
) -> bool {
    let builder = Arc::new(Builders::new(client));
    let graceful = GracefulShutdown::new();

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and similar: pause instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let stream = WriteStall::new(stream, client.write_stall);
                spawn_connection(stream, peer, tls.clone(), app.clone(), builder.clone(), &graceful);
            }
            () = shutdown.reached(Phase::Draining) => break,
        }
    }
    drop(listener);
    let all_closed = graceful.shutdown();
    tokio::pin!(all_closed);
    tokio::select! {
        () = &mut all_closed => return true,
        () = tokio::time::sleep(drain) => {}
    }
    shutdown.advance(Phase::Cut);
    tokio::select! {
        () = &mut all_closed => {}
        () = tokio::time::sleep(CUT_GRACE) => {
            tracing::warn!("connections still open {} ms after the cut: closing them", CUT_GRACE.as_millis());
        }
    }
    false
}

/// The connection settings of each protocol.
struct Builders {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    /// How long an HTTP/2 connection may carry no request ([`crate::h2_idle`]).
    h2_idle: Duration,
}

impl Builders {
    fn new(client: ClientTimeouts) -> Self {
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(client.header_read)
            .max_buf_size(512 * 1024);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new()).max_header_list_size(256 * 1024);
        Builders {
            h1,
            h2,
            h2_idle: client.header_read,
        }
    }
}

/// The router's answer to `req`, which came from `peer`.
fn route(
    app: &Router,
    peer: SocketAddr,
    mut req: hyper::Request<Incoming>,
) -> Oneshot<Router, Request> {
    req.extensions_mut().insert(ConnPeer(peer));
    app.clone().oneshot(req.map(Body::new))
}

/// Spawns the task serving one accepted connection. A plain connection and a TLS one are tasks
/// of their own kinds: a task's future is as large as its largest state, and every open stream
/// holds one, so a plain connection does not carry room for a TLS session and an HTTP/2 server.
fn spawn_connection(
    stream: WriteStall<TcpStream>,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    builder: Arc<Builders>,
    graceful: &GracefulShutdown,
) {
    let watcher = graceful.watcher();
    match tls {
        None => {
            tokio::spawn(serve_plain(stream, peer, app, builder, watcher));
        }
        Some(acceptor) => {
            tokio::spawn(serve_tls(stream, peer, acceptor, app, builder, watcher));
        }
    }
}

/// Serves a plain connection: HTTP/1.1.
async fn serve_plain(
    stream: WriteStall<TcpStream>,
    peer: SocketAddr,
    app: Router,
    builder: Arc<Builders>,
    watcher: Watcher,
) {
    let service = service_fn(move |req| route(&app, peer, req));
    let conn = builder.h1.serve_connection(TokioIo::new(stream), service);
    ended(peer, watcher.watch(conn).await);
}

/// Serves a TLS connection: its handshake, then HTTP/2 or HTTP/1.1 as ALPN chose.
async fn serve_tls(
    stream: WriteStall<TcpStream>,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    builder: Arc<Builders>,
    watcher: Watcher,
) {
    let tls_stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let io = TokioIo::new(tls_stream);
    let result = if io.inner().get_ref().1.alpn_protocol() == Some(b"h2") {
        let (activity, count) = Activity::new();
        let service = service_fn(move |req| {
            let busy = activity.begin();
            let answer = route(&app, peer, req);
            async move {
                let res = answer.await?;
                Ok::<_, Infallible>(res.map(|b| Body::new(Tracked::new(b, busy))))
            }
        });
        let conn = builder.h2.serve_connection(io, service);
        tokio::select! {
            r = watcher.watch(conn) => r,
            () = idle_for(count, builder.h2_idle) => {
                tracing::debug!(%peer, "HTTP/2 connection carried no request for {} ms: closing it", builder.h2_idle.as_millis());
                Ok(())
            }
        }
    } else {
        let service = service_fn(move |req| route(&app, peer, req));
        let conn = builder.h1.serve_connection(io, service);
        watcher.watch(conn).await
    };
    ended(peer, result);
}

/// Logs how a connection ended, when it ended with an error.
fn ended(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(%peer, "connection ended with an error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every open stream holds its connection's task, so the task of a plain connection (what a
    /// load balancer opens) must not be sized for a TLS session and an HTTP/2 server as well.
    #[tokio::test]
    async fn a_plain_connection_task_is_sized_for_http1_alone() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let timeouts = ClientTimeouts {
            header_read: Duration::from_secs(1),
            write_stall: Duration::from_secs(1),
        };
        let builder = Arc::new(Builders::new(timeouts));
        let graceful = GracefulShutdown::new();
        let stream = || async {
            WriteStall::new(
                TcpStream::connect(addr).await.unwrap(),
                timeouts.write_stall,
            )
        };
        let plain = serve_plain(
            stream().await,
            addr,
            Router::new(),
            builder.clone(),
            graceful.watcher(),
        );
        let tls = serve_tls(
            stream().await,
            addr,
            test_acceptor(),
            Router::new(),
            builder,
            graceful.watcher(),
        );
        let (plain, tls) = (std::mem::size_of_val(&plain), std::mem::size_of_val(&tls));
        assert!(plain * 2 < tls, "plain {plain} bytes, TLS {tls}");
    }

    /// An acceptor with a fresh self-signed certificate.
    fn test_acceptor() -> TlsAcceptor {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
        tls_acceptor(cert_path.to_str().unwrap(), key_path.to_str().unwrap()).unwrap()
    }
}
