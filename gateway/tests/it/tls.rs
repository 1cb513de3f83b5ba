//! `listen.tls`: the gateway terminates TLS itself with rustls on aws-lc-rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use crate::support::gateway::{config, Gateway};
use crate::support::pg::{free_port, shared};

async fn https_get(
    port: u16,
    roots: &rustls::RootCertStore,
    path: &str,
) -> std::io::Result<(String, String)> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut tls = TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await?;
    let version = format!("{:?}", tls.get_ref().1.protocol_version());
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    tls.read_to_end(&mut buf).await?;
    Ok((String::from_utf8_lossy(&buf).into_owned(), version))
}

/// Connects offering only `h2`, sends the HTTP/2 preface and an empty SETTINGS frame, and
/// returns the ALPN protocol chosen and the head of the first frame the gateway sends back.
async fn h2_first_frame(
    port: u16,
    roots: &rustls::RootCertStore,
) -> std::io::Result<(Option<Vec<u8>>, [u8; 9])> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut tls = TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await?;
    let mut head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(10), tls.read_exact(&mut head))
        .await
        .map_err(std::io::Error::other)??;
    Ok((alpn, head))
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
    let yaml = config(port, &url, "").replace(
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

    // A client that negotiates h2 is spoken to in HTTP/2: its first frame is SETTINGS (type 4)
    // on stream 0.
    let (alpn, head) = h2_first_frame(port, &roots).await.unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(head[3], 4, "{head:?}");
    assert_eq!(&head[5..], &[0, 0, 0, 0]);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = crate::support::http::get(port, "/healthz", &[]);
    assert_ne!(plain.status, 200);
    gw.assert_no_secrets();
}

#[test]
fn unreadable_tls_files_fail_boot_naming_the_key() {
    let url = shared().new_db();
    let port = free_port();
    let yaml = config(port, &url, "").replace(
        "listen: {host: 127.0.0.1, port: ",
        "listen: {tls: {cert: /nonexistent/cert.pem, key: /nonexistent/key.pem}, host: 127.0.0.1, port: ",
    );
    let mut gw = Gateway::spawn(&yaml, port, &[]);
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(1));
    assert!(gw.stderr().contains("listen.tls.cert"), "{}", gw.stderr());
}
