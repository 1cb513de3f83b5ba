//! Who is at the other end: the client IP (the TCP peer, or `X-Forwarded-For` walked right to left
//! past `listen.trusted_proxies`), and the `access_control` CIDR rules applied to it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderMap;
use ipnet::IpNet;

use super::error::forbidden;
use crate::clock::SharedClock;
use crate::config::net::{canonical, parse_cidr, parse_proxy};
use crate::config::Config;
use crate::telemetry::audit::Audit;

/// A refused request's path is audited up to this many bytes.
const MAX_AUDITED_PATH: usize = 1024;

/// The TCP peer of a connection, put on each request by the server.
#[derive(Debug, Clone, Copy)]
pub struct ConnPeer(pub SocketAddr);

/// The resolved client address of a request (absent when it could not be known).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

/// The address rules from the config, parsed once.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    trusted: Vec<IpNet>,
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

/// Why a request was refused (the audit `reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// In `deny_cidrs`.
    Denylist,
    /// Not in a non-empty `allow_cidrs`.
    NotAllowlisted,
    /// A trusted proxy sent an `X-Forwarded-For` entry that is not an address.
    XffUnparseable(String),
    /// No peer address at all.
    ClientIpUnknown,
}

impl Denied {
    /// The audit reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Denylist => "ip_denylist",
            Denied::NotAllowlisted => "ip_not_allowlisted",
            Denied::XffUnparseable(_) => "xff_unparseable",
            Denied::ClientIpUnknown => "client_ip_unknown",
        }
    }
}

impl AccessRules {
    /// Rules from a validated config (entries that do not parse were refused at boot).
    pub fn from_config(cfg: &Config) -> Self {
        let parse = |v: &[String]| v.iter().filter_map(|s| parse_cidr(s)).collect();
        Self {
            trusted: cfg
                .listen
                .trusted_proxies
                .iter()
                .filter_map(|s| parse_proxy(s))
                .collect(),
            allow: parse(&cfg.access_control.allow_cidrs),
            deny: parse(&cfg.access_control.deny_cidrs),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// Resolves the client address. `Err` carries an unparseable forwarded entry together with the
    /// peer address to fall back on.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, (String, IpAddr)> {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return Ok(peer);
        }
        // Split as bytes: an entry that is not text matters only if the walk from the right
        // reaches it, as any other unparseable entry (the client may write anything on the left).
        let mut hops: Vec<&[u8]> = Vec::new();
        for v in headers.get_all("x-forwarded-for") {
            hops.extend(
                v.as_bytes()
                    .split(|b| *b == b',')
                    .map(<[u8]>::trim_ascii)
                    .filter(|h| !h.is_empty()),
            );
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            let ip = match std::str::from_utf8(hop).ok().and_then(parse_hop) {
                Some(ip) => canonical(ip),
                None => {
                    let shown = String::from_utf8_lossy(hop).chars().take(64).collect();
                    return Err((shown, peer));
                }
            };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        Ok(client)
    }

    /// Whether any CIDR rule is configured.
    pub fn has_rules(&self) -> bool {
        !self.allow.is_empty() || !self.deny.is_empty()
    }

    /// Applies deny, then allow. Health endpoints are exempt from the allow list only.
    pub fn check(&self, ip: IpAddr, path: &str) -> Result<(), Denied> {
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return Err(Denied::Denylist);
        }
        let exempt = path == "/healthz" || path == "/readyz";
        if !exempt && !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(&ip)) {
            return Err(Denied::NotAllowlisted);
        }
        Ok(())
    }
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| {
        parse_proxy(hop)
            .filter(|n| n.prefix_len() == n.max_prefix_len())
            .map(|n| n.addr())
    })
}

/// What the access layer works with: the rules, and where refusals are recorded.
#[derive(Clone)]
pub struct Access {
    rules: Arc<AccessRules>,
    audit: Audit,
    clock: SharedClock,
}

impl Access {
    /// The layer's state.
    pub fn new(rules: AccessRules, audit: Audit, clock: SharedClock) -> Self {
        Self {
            rules: Arc::new(rules),
            audit,
            clock,
        }
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Layer function: resolve the client IP, apply the CIDR rules, record refusals.
pub async fn access(State(access): State<Access>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnPeer>().map(|p| p.0.ip());
    let rules = &access.rules;
    let resolved = match peer {
        None => Err(Denied::ClientIpUnknown),
        Some(peer) => match rules.client_ip(peer, req.headers()) {
            Ok(ip) => Ok(ip),
            Err((entry, peer)) if rules.has_rules() => {
                let _ = peer;
                Err(Denied::XffUnparseable(entry))
            }
            Err((entry, peer)) => {
                tracing::warn!(entry = ?entry, "a trusted proxy sent an X-Forwarded-For entry that is not an address; using the proxy's address");
                Ok(peer)
            }
        },
    };
    let verdict = match resolved {
        Ok(ip) => rules
            .check(ip, req.uri().path())
            .map(|()| Some(ip))
            .map_err(|d| (d, Some(ip))),
        Err(Denied::ClientIpUnknown) if !rules.has_rules() => Ok(None),
        Err(d) => Err((d, peer)),
    };
    match verdict {
        Ok(ip) => {
            req.extensions_mut().insert(ClientIp(ip));
            next.run(req).await
        }
        Err((denied, ip)) => {
            let mut fields = serde_json::json!({
                "reason": denied.reason(),
                // The client chose it, at any length the request line allows.
                "path": crate::telemetry::audit::clip(req.uri().path(), MAX_AUDITED_PATH),
                "client_ip": ip.map(|i| i.to_string()),
            });
            if let Denied::XffUnparseable(entry) = &denied {
                fields["xff_entry"] = entry.clone().into();
            }
            if let Some(id) = req.extensions().get::<super::edge::RequestId>() {
                fields["request_id"] = id.as_str().into();
            }
            access
                .audit
                .emit("access.denied", access.clock.now(), fields);
            forbidden()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn rules(trusted: &[&str], allow: &[&str], deny: &[&str]) -> AccessRules {
        let p = |v: &[&str]| v.iter().map(|s| parse_cidr(s).unwrap()).collect();
        AccessRules {
            trusted: p(trusted),
            allow: p(allow),
            deny: p(deny),
        }
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let r = rules(&["10.0.0.0/8"], &[], &[]);
        assert_eq!(
            r.client_ip(ip("192.0.2.1"), &xff("203.0.113.9")),
            Ok(ip("192.0.2.1"))
        );
    }

    #[test]
    fn forwarded_for_is_walked_right_to_left_past_trusted_hops() {
        let r = rules(&["10.0.0.0/8"], &[], &[]);
        let h = xff("198.51.100.7, 203.0.113.9, 10.1.1.1");
        assert_eq!(r.client_ip(ip("10.0.0.2"), &h), Ok(ip("203.0.113.9")));
        // A spoofed left-most entry does not win.
        let h = xff("1.1.1.1, 203.0.113.9");
        assert_eq!(r.client_ip(ip("10.0.0.2"), &h), Ok(ip("203.0.113.9")));
        // All hops trusted: the left-most one.
        assert_eq!(
            r.client_ip(ip("10.0.0.2"), &xff("10.9.9.9")),
            Ok(ip("10.9.9.9"))
        );
        // Mapped IPv6 peers count as their IPv4 address.
        assert_eq!(
            r.client_ip(ip("::ffff:10.0.0.2"), &xff("203.0.113.9:5555")),
            Ok(ip("203.0.113.9"))
        );
    }

    #[test]
    fn garbage_in_forwarded_for_is_reported() {
        let r = rules(&["10.0.0.0/8"], &[], &[]);
        assert_eq!(
            r.client_ip(ip("10.0.0.2"), &xff("nonsense, 10.1.1.1")),
            Err(("nonsense".into(), ip("10.0.0.2")))
        );
        // Bytes that are not text, written by the client on the left, do not hide the address
        // the trusted proxy appended on the right...
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\x80, 198.51.100.7").unwrap(),
        );
        assert_eq!(r.client_ip(ip("10.0.0.2"), &h), Ok(ip("198.51.100.7")));
        // ...and are reported when the walk reaches them.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"198.51.100.7, \x80").unwrap(),
        );
        assert_eq!(
            r.client_ip(ip("10.0.0.2"), &h),
            Err(("\u{fffd}".into(), ip("10.0.0.2")))
        );
    }

    #[test]
    fn deny_wins_and_allow_is_default_deny() {
        let r = rules(&[], &["10.0.0.0/8"], &["10.6.6.0/24"]);
        assert_eq!(r.check(ip("10.1.1.1"), "/v1/messages"), Ok(()));
        assert_eq!(
            r.check(ip("10.6.6.6"), "/v1/messages"),
            Err(Denied::Denylist)
        );
        assert_eq!(r.check(ip("10.6.6.6"), "/healthz"), Err(Denied::Denylist));
        assert_eq!(
            r.check(ip("192.0.2.1"), "/v1/messages"),
            Err(Denied::NotAllowlisted)
        );
        assert_eq!(r.check(ip("192.0.2.1"), "/healthz"), Ok(()));
        assert_eq!(r.check(ip("192.0.2.1"), "/readyz"), Ok(()));
    }
}
