//! A throwaway certificate authority and a server certificate it signs for `localhost`, for
//! tests that run the gateway on `listen.tls` where clients must trust it as they would a
//! company CA (Claude Code through `NODE_EXTRA_CA_CERTS`, which takes a CA, not a self-signed
//! leaf).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// The CA's certificate and the leaf's certificate and key, as files in a folder of their own.
pub struct TestCa {
    _dir: tempfile::TempDir,
    /// The CA certificate (PEM file).
    pub ca_pem: PathBuf,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// The server certificate for `localhost` and 127.0.0.1 (PEM file).
    pub cert_pem: PathBuf,
    /// Its key (PEM file).
    pub key_pem: PathBuf,
}

impl TestCa {
    /// A new CA and a `localhost` certificate signed by it.
    pub fn new() -> TestCa {
        let dir = tempfile::Builder::new().prefix("gw-ca-").tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "claude-gateway test CA");
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "localhost");
        leaf.distinguished_name = dn;
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        let write = |name: &str, text: &str| -> PathBuf {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        TestCa {
            ca_pem: write("ca.pem", &ca_cert.pem()),
            ca_der: ca_cert.der().to_vec(),
            cert_pem: write("cert.pem", &leaf_cert.pem()),
            key_pem: write("key.pem", &leaf_key.serialize_pem()),
            _dir: dir,
        }
    }

    /// The `listen.tls` mapping for the gateway.
    pub fn listen_tls(&self) -> String {
        format!(
            "tls: {{cert: {}, key: {}}}",
            yaml_path(&self.cert_pem),
            yaml_path(&self.key_pem)
        )
    }
}

fn yaml_path(p: &Path) -> String {
    format!("'{}'", p.display())
}
