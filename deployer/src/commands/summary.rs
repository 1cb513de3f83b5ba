//! The summary after `deploy-all`: where the gateway is and what to do next.

use std::path::PathBuf;

use super::context::Context;
use crate::profile::CertMode;
use crate::stacks::StackKind;

/// The managed-settings document every developer machine needs.
pub fn managed_settings(gateway_url: &str) -> String {
    serde_json::json!({
        "forceLoginMethod": "gateway",
        "forceLoginGatewayUrl": gateway_url,
    })
    .to_string()
}

/// Prints the summary and writes managed-settings.json into the state directory.
pub fn print(cx: &Context<'_>, ovpn: &[PathBuf]) {
    let p = &cx.plan.profile;
    let out = |k: StackKind, key: &str| cx.outputs.get(&k).and_then(|o| o.get(key)).cloned();
    let url = out(StackKind::Gateway, "GatewayUrl").unwrap_or_else(|| p.gateway_url());
    let settings = managed_settings(&url);
    let settings_path = cx.plan.state.write("managed-settings.json", &settings).ok();
    println!(
        "\n=== {} is deployed in {} ({})",
        p.deployment, p.region, cx.account
    );
    println!("gateway      {url}");
    if let Some(d) = out(StackKind::Observability, "DashboardUrl") {
        println!("dashboard    {d}");
    }
    if let Some(i) = out(StackKind::Identity, "HostedUiUrl") {
        println!("sign-in UI   {i}");
    }
    if let Some(c) = out(StackKind::Collector, "CollectorEndpoint") {
        println!("collector    {c}");
    }
    for path in ovpn {
        println!("VPN profile  {}", path.display());
    }
    if p.cert == CertMode::SelfSigned {
        let ca = cx.plan.state.path("pki/ca.pem");
        let fp = cx
            .plan
            .state
            .read("pki/gateway.pem")
            .and_then(|pem| crate::pki::fingerprint(&pem));
        println!(
            "private CA   {} (developers trust it: NODE_EXTRA_CA_CERTS or the OS store)",
            ca.display()
        );
        if let Some(fp) = fp {
            println!(
                "certificate  SHA-256 {fp} (Claude Code shows the first 16: {})",
                &fp[..16]
            );
        }
    }
    println!(
        "\nmanaged settings for every developer machine{}:",
        settings_path
            .map(|p| format!(" (also in {})", p.display()))
            .unwrap_or_default()
    );
    println!("  {settings}");
    println!("\nnext steps:");
    let mut n = 1;
    let mut step = |s: String| {
        println!("  {n}. {s}");
        n += 1;
    };
    if let Some(i) = out(StackKind::Identity, "UserPoolId") {
        step(format!("invite developers: aws cognito-idp admin-create-user --user-pool-id {i} --username <email> --user-attributes Name=email,Value=<email> Name=email_verified,Value=true"));
    }
    if !ovpn.is_empty() {
        step("hand each developer their .ovpn (it holds a private key: use a secure channel) and have them connect".into());
    }
    step("push the managed settings above with your device management tool".into());
    step(format!(
        "check from a connected laptop: deployer verify --profile {}",
        p.source
    ));
    step("developers run `claude`, then /login".into());
}
