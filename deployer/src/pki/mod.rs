//! The deployment's private CA and the certificates it signs: the VPN server and client
//! certificates, and the gateway's own certificate in self-signed mode.
//!
//! Keys are RSA 2048 because AWS Client VPN accepts only RSA. The CA key stays in the state
//! directory; a later run reloads it and signs new client certificates with the same CA.
//!
//! Every certificate is issued from the time it is made (passed in, so issuing is pure) with a
//! lifetime clients accept: server certificates at most [`SERVER_DAYS`] (Apple platforms refuse
//! longer TLS server certificates), client certificates [`CLIENT_DAYS`], the CA [`CA_DAYS`]; no
//! certificate outlives the CA that signs it. [`expiry`] reads them back for `status` and `renew`.

pub mod expiry;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_RSA_SHA256,
};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};

/// Lifetime of the CA, in days (ten years).
pub const CA_DAYS: i64 = 3650;
/// Longest lifetime of a server certificate, in days: what Apple platforms and browsers accept.
pub const SERVER_DAYS: i64 = 397;
/// Lifetime of a VPN client certificate, in days.
pub const CLIENT_DAYS: i64 = 730;
/// How far before `now` a certificate starts, for clocks that run a little behind.
const BACKDATE: Duration = Duration::hours(1);

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
    /// When the CA's certificate ends; nothing it signs lasts longer.
    pub not_after: OffsetDateTime,
}

fn fail(what: &str, e: rcgen::Error) -> Error {
    Error::failed(format!("cannot create the {what}: {e}"))
}

/// A random serial number (the default, a hash of the key, would repeat when a certificate is
/// issued again for the same key).
fn serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::failed("cannot draw a random certificate serial number"))?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

fn ca_params(deployment: &str, now: OffsetDateTime) -> Result<CertificateParams> {
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
    // A stored certificate's dates come from a file: out of range is an error, not a panic.
    let out_of_range = || Error::failed("the CA's validity dates are out of range");
    let not_before = now.checked_sub(BACKDATE).ok_or_else(out_of_range)?;
    p.not_before = not_before;
    p.not_after = not_before
        .checked_add(Duration::days(CA_DAYS))
        .ok_or_else(out_of_range)?;
    p.serial_number = Some(serial()?);
    Ok(p)
}

impl Ca {
    /// Creates a new CA for `deployment`, valid from `now` for [`CA_DAYS`].
    pub fn create(deployment: &str, now: OffsetDateTime) -> Result<Self> {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(|e| fail("CA key", e))?;
        let params = ca_params(deployment, now)?;
        let not_after = params.not_after;
        let issuer = params.self_signed(&key).map_err(|e| fail("CA", e))?;
        let pem = Issued {
            cert_pem: issuer.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(Self {
            pem,
            issuer,
            key,
            not_after,
        })
    }

    /// Reloads a CA made earlier: the stored certificate stays the one clients trust; the signer is
    /// rebuilt from the same name and key, so what it signs chains to the stored certificate.
    pub fn load(deployment: &str, cert_pem: &str, key_pem: &str) -> Result<Self> {
        let (not_before, not_after) = expiry::validity(cert_pem).ok_or_else(|| {
            Error::failed("the stored CA certificate (pki/ca.pem) cannot be read")
        })?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| fail("CA key from its PEM", e))?;
        let start = not_before.checked_add(BACKDATE).ok_or_else(|| {
            Error::failed("the stored CA certificate (pki/ca.pem) has dates out of range")
        })?;
        let issuer = ca_params(deployment, start)?
            .self_signed(&key)
            .map_err(|e| fail("CA", e))?;
        let pem = Issued {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        };
        Ok(Self {
            pem,
            issuer,
            key,
            not_after,
        })
    }

    /// The same CA (name and key) with a new certificate valid from `now` for [`CA_DAYS`]: what
    /// it signed before still chains to it, and clients that trust the CA install the new
    /// certificate in place of the old one.
    pub fn renewed(&self, deployment: &str, now: OffsetDateTime) -> Result<Self> {
        let key = KeyPair::from_pem(&self.pem.key_pem).map_err(|e| fail("CA key", e))?;
        let params = ca_params(deployment, now)?;
        let not_after = params.not_after;
        let issuer = params.self_signed(&key).map_err(|e| fail("CA", e))?;
        let pem = Issued {
            cert_pem: issuer.pem(),
            key_pem: self.pem.key_pem.clone(),
        };
        Ok(Self {
            pem,
            issuer,
            key,
            not_after,
        })
    }

    /// Signs a server certificate for `dns_name` (serverAuth), valid from `now` for at most
    /// [`SERVER_DAYS`].
    pub fn server(&self, dns_name: &str, now: OffsetDateTime) -> Result<Issued> {
        self.leaf(
            dns_name,
            ExtendedKeyUsagePurpose::ServerAuth,
            now,
            SERVER_DAYS,
        )
    }

    /// Signs a client certificate named `name` (clientAuth), valid from `now` for at most
    /// [`CLIENT_DAYS`].
    pub fn client(&self, name: &str, now: OffsetDateTime) -> Result<Issued> {
        self.leaf(name, ExtendedKeyUsagePurpose::ClientAuth, now, CLIENT_DAYS)
    }

    fn leaf(
        &self,
        name: &str,
        eku: ExtendedKeyUsagePurpose,
        now: OffsetDateTime,
        days: i64,
    ) -> Result<Issued> {
        let not_before = now - BACKDATE;
        let not_after = (not_before + Duration::days(days)).min(self.not_after);
        if not_after <= now {
            return Err(Error::failed(format!(
                "cannot sign a certificate for {name}: the deployment's CA expired on {}; renew it first (deployer renew)",
                expiry::date(self.not_after)
            )));
        }
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
        p.not_before = not_before;
        p.not_after = not_after;
        p.serial_number = Some(serial()?);
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
    let der = der(pem)?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    Some(claude_gateway::config::hex(digest.as_ref()))
}

/// The DER bytes of the first certificate in `pem`.
pub fn der(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    if b64.is_empty() {
        return None;
    }
    base64_decode(&b64)
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
pub(crate) mod tests {
    use super::*;

    /// A server certificate signed by `ca` lasting `days` from `from`, whatever the limits (as
    /// earlier releases made them).
    pub(crate) fn leaf_for_days(ca: &Ca, from: OffsetDateTime, days: i64) -> String {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
        let mut p = CertificateParams::new(vec!["claude.corp.example.com".to_owned()]).unwrap();
        p.not_before = from;
        p.not_after = from + Duration::days(days);
        p.signed_by(&key, &ca.issuer, &ca.key).unwrap().pem()
    }

    fn at(y: i32, m: u8, d: u8) -> OffsetDateTime {
        let month = time::Month::try_from(m).unwrap();
        time::Date::from_calendar_date(y, month, d)
            .unwrap()
            .midnight()
            .assume_utc()
    }

    #[test]
    fn a_stored_ca_dated_near_the_end_of_time_is_refused_not_a_panic() {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = at(9995, 1, 1);
        p.not_after = at(9999, 12, 31);
        let pem = p.self_signed(&key).unwrap().pem();
        assert!(Ca::load("t", &pem, &key.serialize_pem()).is_err());
        assert!(Ca::create("t", at(9999, 1, 1)).is_err());
    }

    #[test]
    fn ca_signs_and_reloads() {
        let now = at(2026, 12, 6);
        let ca = Ca::create("t", now).unwrap();
        let server = ca.server("vpn.claude.example.com", now).unwrap();
        assert!(server.cert_pem.contains("BEGIN CERTIFICATE"));
        let again = Ca::load("t", &ca.pem.cert_pem, &ca.pem.key_pem).unwrap();
        assert_eq!(again.not_after, ca.not_after);
        let client = again.client("alice", now).unwrap();
        assert!(client.key_pem.contains("PRIVATE KEY"));
        assert_eq!(fingerprint(&ca.pem.cert_pem).unwrap().len(), 64);
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
    }

    #[test]
    fn certificates_start_now_with_lifetimes_clients_accept() {
        let now = at(2031, 3, 15);
        let ca = Ca::create("t", now).unwrap();
        let (ca_from, ca_to) = expiry::validity(&ca.pem.cert_pem).unwrap();
        assert!(ca_from <= now && now - ca_from <= Duration::hours(1));
        assert_eq!(ca_to - ca_from, Duration::days(CA_DAYS));

        let server = ca.server("claude.corp.example.com", now).unwrap();
        let (from, to) = expiry::validity(&server.cert_pem).unwrap();
        assert!(from <= now && now - from <= Duration::hours(1), "{from}");
        assert!(to - from <= Duration::days(397), "{from} .. {to}");
        assert!(to > now + Duration::days(390));

        let client = ca.client("alice", now).unwrap();
        let (from, to) = expiry::validity(&client.cert_pem).unwrap();
        assert!(from <= now && to - from == Duration::days(CLIENT_DAYS));
    }

    #[test]
    fn nothing_outlives_its_ca_and_an_expired_ca_signs_nothing() {
        let made = at(2026, 1, 1);
        let ca = Ca::create("t", made).unwrap();
        let late = ca.not_after - Duration::days(10);
        let server = ca.server("claude.corp.example.com", late).unwrap();
        let (_, to) = expiry::validity(&server.cert_pem).unwrap();
        assert_eq!(to, ca.not_after);
        let err = ca
            .client("alice", ca.not_after + Duration::days(1))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CA expired") && err.contains("deployer renew"),
            "{err}"
        );

        // Renewed: same key and name, new dates.
        let renewed = ca.renewed("t", late).unwrap();
        assert_eq!(renewed.pem.key_pem, ca.pem.key_pem);
        assert!(renewed.not_after > late + Duration::days(CA_DAYS - 1));
        assert_ne!(renewed.pem.cert_pem, ca.pem.cert_pem);
    }
}
