//! Writes a developer's OpenVPN profile for the Client VPN endpoint from the stack's outputs and
//! the deployment's CA, instead of calling EC2's ExportClientVpnClientConfiguration: that keeps the
//! large EC2 SDK out of the build, and the result is the same file plus the client's certificate,
//! key and the MTU clamp every profile needs.

/// What a profile needs.
#[derive(Debug, Clone)]
pub struct OvpnInputs<'a> {
    /// `cvpn-endpoint-...` id.
    pub endpoint_id: &'a str,
    /// Region.
    pub region: &'a str,
    /// udp or tcp.
    pub transport: &'a str,
    /// The CA that signed the server certificate, PEM.
    pub ca_pem: &'a str,
    /// Client certificate, PEM.
    pub cert_pem: &'a str,
    /// Client key, PEM.
    pub key_pem: &'a str,
}

/// The DNS suffix of a Region's partition.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// The `.ovpn` text.
pub fn render(i: &OvpnInputs) -> String {
    let host = format!(
        "{}.prod.clientvpn.{}.{}",
        i.endpoint_id,
        i.region,
        dns_suffix(i.region)
    );
    format!(
        "client\ndev tun\nproto {proto}\nremote {host} 443\nremote-random-hostname\nresolv-retry infinite\nnobind\nremote-cert-tls server\ncipher AES-256-GCM\nverb 3\n# Some home and hotel networks drop large packets inside the tunnel: keep these two lines.\ntun-mtu 1300\nmssfix 1260\n<ca>\n{ca}</ca>\n<cert>\n{cert}</cert>\n<key>\n{key}</key>\nreneg-sec 0\n",
        proto = i.transport,
        ca = ensure_newline(i.ca_pem),
        cert = ensure_newline(i.cert_pem),
        key = ensure_newline(i.key_pem),
    )
}

fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_owned()
    } else {
        format!("{s}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_has_remote_and_mtu() {
        let t = render(&OvpnInputs {
            endpoint_id: "cvpn-endpoint-0abc",
            region: "eu-west-1",
            transport: "udp",
            ca_pem: "CA",
            cert_pem: "CERT\n",
            key_pem: "KEY",
        });
        assert!(t.contains("remote cvpn-endpoint-0abc.prod.clientvpn.eu-west-1.amazonaws.com 443"));
        assert!(t.contains("tun-mtu 1300\nmssfix 1260"));
        assert!(t.contains("<ca>\nCA\n</ca>"));
    }
}
