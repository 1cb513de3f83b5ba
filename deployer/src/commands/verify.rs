//! `deployer verify`: checks a deployed gateway the way a developer's machine will reach it.
//! The name must resolve to private addresses only (Claude Code refuses any public one), and the
//! gateway must answer `/healthz`, `/readyz`, its discovery document and the start of a device
//! sign-in. Run it from a machine on the VPN or the corporate network.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::netcalc::is_private;
use crate::plan::Plan;
use crate::profile::CertMode;

/// Runs every check, printing each; fails (exit 1) if any fails.
pub async fn run(plan: &Plan) -> Result<()> {
    let p = &plan.profile;
    let mut failures = Vec::new();
    let addrs: Vec<std::net::IpAddr> =
        match tokio::net::lookup_host((p.hostname.as_str(), 443)).await {
            Ok(a) => a.map(|s| s.ip()).collect(),
            Err(e) => {
                return Err(Error::failed(format!(
                    "{} does not resolve from here ({e}): connect the VPN or fix DNS",
                    p.hostname
                )))
            }
        };
    let public: Vec<String> = addrs
        .iter()
        .filter(|a| !is_private(**a))
        .map(ToString::to_string)
        .collect();
    if public.is_empty() {
        println!(
            "  ok   {} resolves only to private addresses: {}",
            p.hostname,
            join(&addrs)
        );
    } else {
        failures.push(format!(
            "{} resolves to public address(es) {}: Claude Code will refuse to sign in",
            p.hostname,
            public.join(", ")
        ));
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .use_rustls_tls();
    if p.cert == CertMode::SelfSigned {
        if let Some(pem) = ca_pem(plan).await {
            let ca = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| Error::failed(format!("the private CA is unreadable: {e}")))?;
            builder = builder.add_root_certificate(ca);
        }
    }
    let client = builder
        .build()
        .map_err(|e| Error::failed(format!("cannot build an HTTPS client: {e}")))?;
    let base = p.gateway_url();
    for path in ["/healthz", "/readyz"] {
        match client.get(format!("{base}{path}")).send().await {
            Ok(r) if r.status().is_success() => println!("  ok   GET {path} {}", r.status()),
            Ok(r) => failures.push(format!("GET {path} answered {}", r.status())),
            Err(e) => failures.push(format!("GET {path} failed: {e}")),
        }
    }
    let discovery = "/.well-known/oauth-authorization-server";
    match client.get(format!("{base}{discovery}")).send().await {
        Ok(r) if r.status().is_success() => match json_at_most(r).await {
            Ok(doc)
                if doc
                    .get("issuer")
                    .and_then(|v| v.as_str())
                    .map(|s| s.trim_end_matches('/'))
                    == Some(base.as_str()) =>
            {
                println!("  ok   GET {discovery}: issuer {base}")
            }
            Ok(doc) => failures.push(format!(
                "the discovery document names issuer {:?}, not {base}",
                doc.get("issuer")
            )),
            Err(e) => failures.push(format!("the discovery document is not JSON: {e}")),
        },
        Ok(r) => failures.push(format!("GET {discovery} answered {}", r.status())),
        Err(e) => failures.push(format!("GET {discovery} failed: {e}")),
    }
    let device = client
        .post(format!("{base}/oauth/device_authorization"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("surface=cli")
        .send()
        .await;
    match device {
        Ok(r) if r.status().is_success() => match json_at_most(r).await {
            Ok(doc) if doc.get("user_code").is_some() => {
                println!("  ok   POST /oauth/device_authorization issued a user code")
            }
            _ => failures.push("POST /oauth/device_authorization returned no user_code".into()),
        },
        Ok(r) => failures.push(format!(
            "POST /oauth/device_authorization answered {}",
            r.status()
        )),
        Err(e) => failures.push(format!("POST /oauth/device_authorization failed: {e}")),
    }
    if failures.is_empty() {
        println!("verify: {base} is ready for /login");
        Ok(())
    } else {
        Err(Error::failed(format!(
            "verify found {} problem(s):\n  {}",
            failures.len(),
            failures.join("\n  ")
        )))
    }
}

fn join(addrs: &[std::net::IpAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The deployment's CA: the account's copy when this machine's credentials can read it (within
/// 15 seconds), else this machine's (verify also runs from laptops without AWS credentials).
async fn ca_pem(plan: &Plan) -> Option<String> {
    let p = &plan.profile;
    let read = async {
        let aws = crate::aws::Aws::connect(&p.region, &p.bedrock_region).await;
        crate::aws::statestore::read(&aws, &p.deployment).await
    };
    let account = match tokio::time::timeout(Duration::from_secs(15), read).await {
        Ok(Ok(Some(mut shared))) => shared.files.remove("pki/ca.pem"),
        _ => None,
    };
    account.or_else(|| plan.state.read("pki/ca.pem"))
}

/// The largest answer `verify` reads from the gateway: its documents are a few KB.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// An answer's body as JSON, read up to [`MAX_ANSWER_BYTES`]: a gateway (or whatever answers in
/// its place) cannot make the check hold gigabytes.
async fn json_at_most(mut r: reqwest::Response) -> std::result::Result<serde_json::Value, String> {
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("the answer is over {MAX_ANSWER_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}
