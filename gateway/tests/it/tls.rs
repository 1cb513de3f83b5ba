//! `listen.tls`: the gateway terminates TLS itself with rustls on aws-lc-rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::support::gateway::{config, Gateway};
use crate::support::pg::{free_port, shared};

/// A TLS connection to the gateway trusting `roots`, offering only `alpn`.
async fn connect(
    port: u16,
    roots: &rustls::RootCertStore,
    alpn: &[u8],
) -> std::io::Result<TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await
}

async fn https_get(
    port: u16,
    roots: &rustls::RootCertStore,
    path: &str,
) -> std::io::Result<(String, String)> {
    let mut tls = connect(port, roots, b"http/1.1").await?;
    let version = format!("{:?}", tls.get_ref().1.protocol_version());
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    tls.read_to_end(&mut buf).await?;
    Ok((String::from_utf8_lossy(&buf).into_owned(), version))
}

/// Connects offering only `h2`; with `preface`, sends the HTTP/2 connection preface and an
/// empty SETTINGS frame. Returns the ALPN protocol chosen and the stream.
async fn h2_connect(
    port: u16,
    roots: &rustls::RootCertStore,
    preface: bool,
) -> std::io::Result<(Option<Vec<u8>>, TlsStream<TcpStream>)> {
    let mut tls = connect(port, roots, b"h2").await?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    if preface {
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .await?;
    }
    Ok((alpn, tls))
}

/// The next frame: its type, flags, stream and payload.
async fn read_frame(tls: &mut TlsStream<TcpStream>) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    tls.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    tls.read_exact(&mut payload).await?;
    Ok((head[3], head[4], stream, payload))
}

/// A HEADERS frame (END_STREAM, END_HEADERS) for `GET path` on stream 1, each field a literal
/// without indexing.
fn get_on_stream_1(path: &str) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", path),
        (":authority", "localhost"),
    ] {
        block.push(0);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    let len = (block.len() as u32).to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], 1, 0x5, 0, 0, 0, 1];
    frame.extend(block);
    frame
}

/// Reads until the server closes; how long that took.
async fn closed_within(tls: &mut TlsStream<TcpStream>, bound: Duration) -> Duration {
    let started = Instant::now();
    let mut rest = Vec::new();
    match tokio::time::timeout(bound, tls.read_to_end(&mut rest)).await {
        Ok(_) => started.elapsed(),
        Err(_) => panic!("still open after {bound:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_terminates_tls() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert.cert.der().to_vec()))
        .unwrap();

    let url = shared().new_db();
    let port = free_port();
    let yaml = config(port, &url, "timeouts: {client_header_read_ms: 300}\n").replace(
        "listen: {host: 127.0.0.1, port: ",
        &format!(
            "listen: {{tls: {{cert: {}, key: {}}}, host: 127.0.0.1, port: ",
            cert_path.display(),
            key_path.display()
        ),
    );
    let gw = Gateway::spawn(&yaml, port, &[]);

    let deadline = Instant::now() + Duration::from_secs(30);
    let (answer, version) = loop {
        match https_get(port, &roots, "/healthz").await {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("no TLS answer: {e}\n{}", gw.stderr()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer
        .to_ascii_lowercase()
        .contains("x-frame-options: deny"));
    assert_eq!(version, "Some(TLSv1_3)");

    // A client that negotiates h2 is spoken to in HTTP/2: the first frame is SETTINGS (type 4)
    // on stream 0, and a request gets its answer.
    let (alpn, mut h2) = h2_connect(port, &roots, true).await.unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let (kind, _, stream, _) = read_frame(&mut h2).await.unwrap();
    assert_eq!((kind, stream), (4, 0));
    h2.write_all(&get_on_stream_1("/healthz")).await.unwrap();
    let status = loop {
        let (kind, _, stream, payload) = read_frame(&mut h2).await.unwrap();
        if kind == 1 && stream == 1 {
            break payload[0];
        }
    };
    assert_eq!(status, 0x88, "`:status: 200`, indexed");
    // Once its answer is over, a connection that carries no request is closed after the header
    // timeout, as an HTTP/1.1 one is; so is one that never sends the connection preface.
    let waited = closed_within(&mut h2, Duration::from_secs(10)).await;
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    let (_, mut silent) = h2_connect(port, &roots, false).await.unwrap();
    closed_within(&mut silent, Duration::from_secs(10)).await;

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = crate::support::http::get(port, "/healthz", &[]);
    assert_ne!(plain.status, 200);
    gw.assert_no_secrets();
}

#[test]
fn unreadable_tls_files_fail_boot_naming_the_key() {
    let url = shared().new_db();
    let port = free_port();
    let yaml = config(port, &url, "timeouts: {client_header_read_ms: 300}\n").replace(
        "listen: {host: 127.0.0.1, port: ",
        "listen: {tls: {cert: /nonexistent/cert.pem, key: /nonexistent/key.pem}, host: 127.0.0.1, port: ",
    );
    let mut gw = Gateway::spawn(&yaml, port, &[]);
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(1));
    assert!(gw.stderr().contains("listen.tls.cert"), "{}", gw.stderr());
}
