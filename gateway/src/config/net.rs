//! Address parsing shared by config checks and the access layer: CIDRs, proxy entries, loopback
//! and cloud-metadata hosts.

use std::net::IpAddr;

use ipnet::IpNet;

/// Parses `10.0.0.0/8`, `10.1.2.3` or `::1` into a network (a bare address is a /32 or /128).
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Parses a trusted-proxy entry: a CIDR or address, also `1.2.3.4:443` and `[::1]:443` with the
/// port dropped.
pub fn parse_proxy(s: &str) -> Option<IpNet> {
    if let Some(net) = parse_cidr(s) {
        return Some(net);
    }
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, port) = rest.split_once("]:")?;
        port.parse::<u16>().ok()?;
        return addr.parse::<IpAddr>().ok().map(IpNet::from);
    }
    let (addr, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|a| IpNet::from(IpAddr::V4(a)))
}

/// Maps an IPv4-mapped IPv6 address to IPv4, so one rule covers both spellings.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// True for `localhost`, 127.0.0.0/8 and ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .map(|ip| canonical(ip).is_loopback())
            .unwrap_or(false)
}

/// True for the cloud metadata endpoints an SSRF would aim at.
pub fn is_metadata_host(host: &str) -> bool {
    let h = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if h == "metadata.google.internal" || h == "metadata" {
        return true;
    }
    match h.parse::<IpAddr>().map(canonical) {
        Ok(IpAddr::V4(v4)) => v4.octets()[..2] == [169, 254],
        Ok(IpAddr::V6(v6)) => v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_proxies() {
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert!(parse_cidr("10.1.2.3:80").is_none());
        assert_eq!(
            parse_proxy("10.1.2.3:80").unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(parse_proxy("[::1]:443").unwrap().to_string(), "::1/128");
        assert!(parse_proxy("nope").is_none());
    }

    #[test]
    fn loopback_and_metadata() {
        assert!(is_loopback_host("127.0.0.2"));
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(is_metadata_host("169.254.169.254"));
        assert!(is_metadata_host("[fd00:ec2::254]"));
        assert!(!is_metadata_host("fd00::1"));
        assert!(canonical("::ffff:10.0.0.1".parse().unwrap()).is_ipv4());
    }
}
