//! Sign-in rate limits: which network a hit counts against, and what a check says. A store that
//! cannot count is an outage to report, never a limit the caller is blamed for.

use std::net::IpAddr;

/// The answer of one rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Under the limit: go on.
    Within,
    /// Over the limit: refuse as too many attempts.
    Over,
    /// The counter could not be read (store outage): refuse as unavailable, not as a limit.
    Unavailable,
}

/// The network a sign-in limit counts against: an IPv4 address on its own (/32), an IPv6 address
/// by its /64 (the smallest prefix one subscriber is given, so hopping addresses inside it buys
/// nothing), an IPv4-mapped IPv6 address as the IPv4 address it carries.
pub fn network_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        network_key(s.parse().unwrap())
    }

    #[test]
    fn ipv6_counts_by_its_64_and_ipv4_by_its_address() {
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::1"), key("2001:db8:1:2::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::1"), "0:0:0:0::/64");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7", "IPv4-mapped is IPv4");
    }
}
