//! Address and name arithmetic the deployer needs before any AWS call: CloudFormation's `Fn::Cidr`,
//! overlap checks, private-address classification and DNS-name rules.

use std::net::IpAddr;

use ipnet::Ipv4Net;

/// What CloudFormation's `Fn::Cidr [block, count, host_bits]` returns: the first `count` subnets
/// of `host_bits` host bits each, in order. Empty when they do not fit.
pub fn cfn_cidr(block: Ipv4Net, count: usize, host_bits: u8) -> Vec<Ipv4Net> {
    let prefix = 32u8.saturating_sub(host_bits);
    if prefix < block.prefix_len() {
        return Vec::new();
    }
    match block.trunc().subnets(prefix) {
        Ok(it) => it.take(count).collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether two blocks share any address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Whether an address is one Claude Code accepts for a gateway: RFC 1918, shared address space
/// (100.64.0.0/10), or IPv6 unique-local. Loopback and link-local are not.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Whether `name` is a DNS hostname of at least two labels (letters, digits, hyphens).
pub fn is_hostname(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether `host` lies inside DNS zone `zone` on a label boundary (`a.example.com` is in
/// `example.com`, `badexample.com` is not). The zone apex itself counts.
pub fn in_zone(host: &str, zone: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    host == zone || host.ends_with(&format!(".{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_like_cloudformation() {
        let s = cfn_cidr(net("10.20.0.0/16"), 4, 12);
        assert_eq!(
            s,
            vec![
                net("10.20.0.0/20"),
                net("10.20.16.0/20"),
                net("10.20.32.0/20"),
                net("10.20.48.0/20")
            ]
        );
        assert!(cfn_cidr(net("10.0.0.0/24"), 4, 12).is_empty());
        assert_eq!(
            cfn_cidr(net("192.168.10.64/26"), 2, 1)[1],
            net("192.168.10.66/31")
        );
    }

    #[test]
    fn overlap_and_private() {
        assert!(overlaps(net("10.0.0.0/8"), net("10.20.0.0/16")));
        assert!(!overlaps(net("10.30.0.0/22"), net("10.20.0.0/16")));
        assert!(is_private("10.1.2.3".parse().unwrap()));
        assert!(is_private("100.64.0.1".parse().unwrap()));
        assert!(is_private("fd00::1".parse().unwrap()));
        assert!(!is_private("8.8.8.8".parse().unwrap()));
        assert!(!is_private("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn zones_on_label_boundaries() {
        assert!(in_zone("claude.corp.example.com", "example.com."));
        assert!(in_zone("example.com", "example.com"));
        assert!(!in_zone("claude.badexample.com", "example.com"));
        assert!(is_hostname("claude.corp.example.com"));
        assert!(!is_hostname("claude"));
        assert!(!is_hostname("-a.example.com"));
    }
}
