//! `deployer renew`: re-issues the certificates the deployment made that end soon, from the same
//! CA, and puts them where they are used: server certificates re-imported into ACM under the ARNs
//! the stacks already use (so no stack changes), client certificates into new `.ovpn` files. A CA
//! near its end is re-signed with the same name and key.

use time::OffsetDateTime;

use super::context::Context;
use crate::aws;
use crate::error::{Error, Result};
use crate::pki::expiry::{self, Expiry};
use crate::pki::Issued;
use crate::plan::Plan;
use crate::profile::CertMode;
use crate::state::StateDir;

/// A certificate the deployment made: where it is kept, what it is, and the name it is for.
pub(super) struct Made {
    /// Path of its PEM inside the state directory (without the extension for leaves).
    pub file: String,
    /// How `status` names it.
    pub label: String,
    /// The name it is issued to.
    pub name: String,
    /// Whether it is a server certificate (whose lifetime clients limit).
    pub server: bool,
}

/// The certificates the deployment makes for this profile (whether or not made yet).
pub(super) fn made(plan: &Plan) -> Vec<Made> {
    let p = &plan.profile;
    let mut out = Vec::new();
    if p.cert == CertMode::SelfSigned || p.vpn.is_some() {
        out.push(Made {
            file: "pki/ca.pem".into(),
            label: "CA".into(),
            name: format!("{} private CA", p.deployment),
            server: false,
        });
    }
    if p.cert == CertMode::SelfSigned {
        out.push(Made {
            file: "pki/gateway.pem".into(),
            label: format!("gateway certificate {}", p.hostname),
            name: p.hostname.clone(),
            server: true,
        });
    }
    if let Some(vpn) = &p.vpn {
        out.push(Made {
            file: "pki/vpn-server.pem".into(),
            label: format!("VPN server certificate vpn.{}", p.hostname),
            name: format!("vpn.{}", p.hostname),
            server: true,
        });
        for c in &vpn.clients {
            out.push(Made {
                file: format!("vpn/{c}.crt"),
                label: format!("VPN client certificate {c}"),
                name: format!("{c}.{}", p.hostname),
                server: false,
            });
        }
    }
    out
}

/// The expiry of each certificate of [`made`] present in the state directory.
pub(super) fn expiries(
    plan: &Plan,
    now: OffsetDateTime,
) -> std::result::Result<Vec<Expiry>, String> {
    let present: Vec<(String, String, bool)> = made(plan)
        .into_iter()
        .filter_map(|m| Some((m.label, plan.state.read(&m.file)?, m.server)))
        .collect();
    expiry::check(&present, now)
}

/// The command that renews this deployment's certificates.
pub(super) fn command(plan: &Plan) -> String {
    let default = StateDir::new(None, &plan.profile.deployment);
    let mut cmd = format!("deployer renew --profile {}", plan.profile.source);
    if plan.state.root() != default.root() {
        cmd.push_str(&format!(" --state-dir {}", plan.state.root().display()));
    }
    cmd
}

/// Renews what ends within `within_days` days.
pub async fn run(plan: &Plan, within_days: i64) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    let p = &plan.profile;
    let st = &plan.state;
    let list = made(plan);
    if list.is_empty() {
        println!(
            "{}: the deployer makes no certificates for this profile; nothing to renew",
            p.source
        );
        return Ok(());
    }
    // Connected first: the account's copy of the state replaces this machine's.
    let mut cx = Context::connect(plan).await?;
    match (st.read("pki/ca.pem"), st.read("pki/ca.key")) {
        (None, _) => {
            println!(
                "no certificates of this deployment in the account or in {}; nothing to renew",
                st.root().display()
            );
            return Ok(());
        }
        (Some(_), None) => {
            return Err(Error::failed(format!(
                "{} is missing: without the CA's key nothing can be renewed",
                st.path("pki/ca.key").display()
            )))
        }
        (Some(_), Some(_)) => {}
    }
    cx.read_outputs().await?;
    // Ends within the window, cannot be read, or (a server certificate from an earlier release)
    // lasts longer than clients accept.
    let due = |file: &str, server: bool| {
        st.read(file)
            .and_then(|pem| expiry::validity(&pem))
            .is_none_or(|(from, to)| {
                expiry::days_left(to, now) < within_days
                    || (server && expiry::server_too_long(from, to).is_some())
            })
    };

    let mut ca = cx.ca()?;
    let ca_renewed = expiry::days_left(ca.not_after, now) < within_days;
    if ca_renewed {
        ca = ca.renewed(&p.deployment, now)?;
        st.write("pki/ca.pem", &ca.pem.cert_pem)?;
        println!(
            "  pki: renewed the CA until {} (same name and key); every machine that trusts it needs the new {}",
            expiry::date(ca.not_after),
            st.path("pki/ca.pem").display()
        );
    }

    let mut renewed = 0;
    let servers = [
        (
            "gateway",
            p.cert == CertMode::SelfSigned,
            cx.state.gateway_certificate_arn.clone(),
        ),
        (
            "vpn-server",
            p.vpn.is_some(),
            cx.state.vpn_certificate_arn.clone(),
        ),
    ];
    for (file, used, arn) in servers {
        let path = format!("pki/{file}.pem");
        if !used || !(ca_renewed || due(&path, true)) {
            continue;
        }
        let Some(m) = list.iter().find(|m| m.file == path) else {
            continue;
        };
        let Some(arn) = arn else {
            println!(
                "  pki: {} was never imported; the next deploy makes it",
                m.label
            );
            continue;
        };
        let cert: Issued = ca.server(&m.name, now)?;
        st.write(&path, &cert.cert_pem)?;
        st.write(&format!("pki/{file}.key"), &cert.key_pem)?;
        aws::acm::import(
            &cx.aws,
            Some(&arn),
            &cert,
            &ca.pem.cert_pem,
            &format!("{}-{file}", p.deployment),
        )
        .await?;
        renewed += 1;
        let until = expiry::validity(&cert.cert_pem)
            .map(|(_, to)| expiry::date(to))
            .unwrap_or_default();
        println!(
            "  pki: renewed the {} until {until}, re-imported as {arn}",
            m.label
        );
        if file == "gateway" {
            if let Some(fp) = crate::pki::fingerprint(&cert.cert_pem) {
                println!("  pki: the gateway's new certificate fingerprint (SHA-256): {fp}");
            }
        }
    }

    let mut clients = 0;
    for m in list.iter().filter(|m| m.file.starts_with("vpn/")) {
        if st.read(&m.file).is_some() && (ca_renewed || due(&m.file, false)) {
            let issued = ca.client(&m.name, now)?;
            st.write(&m.file, &issued.cert_pem)?;
            st.write(&m.file.replace(".crt", ".key"), &issued.key_pem)?;
            clients += 1;
            println!("  pki: renewed the {}", m.label);
        }
    }
    if clients > 0 || (ca_renewed && p.vpn.is_some()) {
        for path in cx.write_vpn_profiles()? {
            println!("  vpn: wrote {} (hand it to its developer)", path.display());
        }
    }
    cx.save().await?;
    println!(
        "renewed {} certificate(s) ending within {within_days} days",
        renewed + clients + usize::from(ca_renewed)
    );
    Ok(())
}
