//! The VPC (new or existing) and the bundled Client VPN, with their address checks.

use crate::netcalc::{cfn_cidr, overlaps};
use crate::profile::model::*;
use crate::profile::reader::Reader;

/// Reads the VPC keys: a new VPC, or all three `EXISTING_*` keys.
pub fn network(r: &mut Reader) -> Option<Network> {
    let cidr = r.cidr("VPC_CIDR")?;
    if !(16..=24).contains(&cidr.prefix_len()) {
        r.err("VPC_CIDR", format!("{cidr} must be a /16 to /24 block"));
    }
    let existing = [
        "EXISTING_VPC_ID",
        "EXISTING_PRIVATE_SUBNET_IDS",
        "EXISTING_PRIVATE_SUBNET_CIDRS",
    ];
    let set: Vec<&str> = existing.iter().copied().filter(|k| r.is_set(k)).collect();
    if set.is_empty() {
        let bits = r.template_number("SUBNET_CIDR_BITS", "gateway.yaml", "SubnetCidrBits");
        let nat = r.template_number("NAT_GATEWAYS", "gateway.yaml", "NatGatewayCount");
        if !r.has_issue("SUBNET_CIDR_BITS") && cfn_cidr(cidr, 6, bits as u8).len() < 6 {
            r.err(
                "SUBNET_CIDR_BITS",
                format!("six subnets (public, private and load balancer, two each) of {bits} host bits do not fit in VPC_CIDR {cidr}"),
            );
        }
        return Some(Network::New {
            cidr,
            subnet_bits: bits as u8,
            nat_gateways: nat as u8,
        });
    }
    for k in existing {
        if !set.contains(&k) {
            r.err(k, format!("required with {}: an existing VPC needs its id, two private subnet ids and their CIDRs", set.join(", ")));
        }
    }
    for k in ["SUBNET_CIDR_BITS", "NAT_GATEWAYS"] {
        if r.is_set(k) {
            r.err(k, "applies only to a new VPC, not with EXISTING_VPC_ID");
        }
    }
    let vpc_id = r.raw("EXISTING_VPC_ID");
    if !vpc_id.starts_with("vpc-") {
        r.err("EXISTING_VPC_ID", format!("{vpc_id:?} is not a VPC id"));
    }
    let subnet_ids = r.list("EXISTING_PRIVATE_SUBNET_IDS");
    if subnet_ids.len() != 2 || subnet_ids.iter().any(|s| !s.starts_with("subnet-")) {
        r.err(
            "EXISTING_PRIVATE_SUBNET_IDS",
            "must be exactly two subnet ids (subnet-...), in two Availability Zones",
        );
    }
    let subnet_cidrs = r.cidrs("EXISTING_PRIVATE_SUBNET_CIDRS");
    if subnet_cidrs.len() != 2 {
        r.err(
            "EXISTING_PRIVATE_SUBNET_CIDRS",
            "must be exactly two CIDRs, one per subnet",
        );
    }
    for s in &subnet_cidrs {
        if !cidr.contains(s) {
            r.err(
                "EXISTING_PRIVATE_SUBNET_CIDRS",
                format!("{s} is not inside VPC_CIDR {cidr}"),
            );
        }
    }
    Some(Network::Existing {
        vpc_id,
        cidr,
        subnet_ids,
        subnet_cidrs,
    })
}

/// Reads the VPN keys when `VPN=true`, checking the pool against the VPC and client networks.
pub fn vpn(
    r: &mut Reader,
    network: Option<&Network>,
    client_cidrs: &[ipnet::Ipv4Net],
) -> Option<Vpn> {
    if !r.bool("VPN") {
        return None;
    }
    let client_cidr = r.cidr("VPN_CLIENT_CIDR")?;
    if !(12..=22).contains(&client_cidr.prefix_len()) {
        r.err(
            "VPN_CLIENT_CIDR",
            format!("{client_cidr} must be between /12 and /22 (an AWS Client VPN rule)"),
        );
    }
    if let Some(Network::Existing { .. }) = network {
        r.err(
            "VPN",
            "the bundled Client VPN attaches to EXISTING_PRIVATE_SUBNET_IDS, the load balancer's \
             subnets in an existing VPC, which the gateway trusts to set X-Forwarded-For: VPN users \
             could choose their own client address. Use a new VPC (the load balancer gets subnets \
             of its own there), or connect your own VPN to other subnets",
        );
    }
    if let Some(n) = network {
        if overlaps(client_cidr, n.cidr()) {
            r.err(
                "VPN_CLIENT_CIDR",
                format!("{client_cidr} overlaps VPC_CIDR {}", n.cidr()),
            );
        }
    }
    for c in client_cidrs {
        if overlaps(client_cidr, *c) {
            r.err("VPN_CLIENT_CIDR", format!("{client_cidr} overlaps CLIENT_CIDRS entry {c}: VPN clients would be unreachable from there"));
        }
    }
    let clients = r.list("VPN_CLIENTS");
    if clients.is_empty() {
        r.err("VPN_CLIENTS", "name at least one client");
    }
    for c in &clients {
        if !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            r.err(
                "VPN_CLIENTS",
                format!("{c:?} may hold only letters, digits and - _ . @"),
            );
        }
    }
    let transport = r.choice("VPN_TRANSPORT", &["udp", "tcp"]);
    let dns_server = r.opt("VPN_DNS_SERVER");
    if let Some(d) = &dns_server {
        if d.parse::<std::net::Ipv4Addr>().is_err() {
            r.err("VPN_DNS_SERVER", format!("{d:?} is not an IPv4 address"));
        }
    }
    Some(Vpn {
        client_cidr,
        clients,
        transport,
        dns_server,
    })
}
