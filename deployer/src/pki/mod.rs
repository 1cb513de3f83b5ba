//! The deployment's private CA and the certificates it signs: the VPN server and client
//! certificates, and the gateway's own certificate in self-signed mode.
//!
//! Keys are RSA 2048 because AWS Client VPN accepts only RSA. The CA key stays in the state
//! directory; a later run reloads it and signs new client certificates with the same CA.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, PKCS_RSA_SHA256,
};

use crate::error::{Error, Result};

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// The CA: its certificate and key, able to sign more.
pub struct Ca {
    /// Certificate and key.
    pub pem: Issued,
    issuer: rcgen::Certificate,
    key: KeyPair,
}

fn fail(what: &str, e: rcgen::Error) -> Error {
    Error::failed(format!("cannot create the {what}: {e}"))
}

fn ca_params(deployment: &str) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{deployment} private CA"));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2036, 1, 1);
    Ok(p)
}

impl Ca {
    /// Creates a new CA for `deployment`.
    pub fn create(deployment: &str) -> Result<Self> {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(|e| fail("CA key", e))?;
        let issuer = ca_params(deployment)?
            .self_signed(&key)
            .map_err(|e| fail("CA", e))?;
        let pem = Issued {
            cert_pem: issuer.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(Self { pem, issuer, key })
    }

    /// Reloads a CA made earlier: the stored certificate stays the one clients trust; the signer is
    /// rebuilt from the same name and key, so what it signs chains to the stored certificate.
    pub fn load(deployment: &str, cert_pem: &str, key_pem: &str) -> Result<Self> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| fail("CA key from its PEM", e))?;
        let issuer = ca_params(deployment)?
            .self_signed(&key)
            .map_err(|e| fail("CA", e))?;
        let pem = Issued {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        };
        Ok(Self { pem, issuer, key })
    }

    /// Signs a server certificate for `dns_name` (serverAuth).
    pub fn server(&self, dns_name: &str) -> Result<Issued> {
        self.leaf(dns_name, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// Signs a client certificate named `name` (clientAuth).
    pub fn client(&self, name: &str) -> Result<Issued> {
        self.leaf(name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, name: &str, eku: ExtendedKeyUsagePurpose) -> Result<Issued> {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(|e| fail("key", e))?;
        let mut p =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("certificate", e))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        p.distinguished_name = dn;
        if name.contains('.') {
            let san = name.try_into().map_err(|e| fail("certificate name", e))?;
            p.subject_alt_names = vec![SanType::DnsName(san)];
        }
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![eku];
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let cert = p
            .signed_by(&key, &self.issuer, &self.key)
            .map_err(|e| fail("certificate", e))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The SHA-256 fingerprint of the first certificate in `pem`, lower-case hex (Claude Code shows
/// its first 16 characters when it asks a developer to trust a certificate).
pub fn fingerprint(pem: &str) -> Option<String> {
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64_decode(&b64)?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    Some(claude_gateway::config::hex(digest.as_ref()))
}

/// Standard base64 without line breaks.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_signs_and_reloads() {
        let ca = Ca::create("t").unwrap();
        let server = ca.server("vpn.claude.example.com").unwrap();
        assert!(server.cert_pem.contains("BEGIN CERTIFICATE"));
        let again = Ca::load("t", &ca.pem.cert_pem, &ca.pem.key_pem).unwrap();
        let client = again.client("alice").unwrap();
        assert!(client.key_pem.contains("PRIVATE KEY"));
        assert_eq!(fingerprint(&ca.pem.cert_pem).unwrap().len(), 64);
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
    }
}
