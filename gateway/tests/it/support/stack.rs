//! A whole sign-in stack for real-client tests: the Bedrock double, the test IdP, and our
//! gateway in front of them, plus the sign-in a developer does on day one.

use std::time::Duration;

use serde_json::Value;
use testkit::{FakeBedrock, Options as BedrockOptions};

use super::claude::Claude;
use super::gateway::{
    bedrock_upstream, config_oidc, double_upstream, oidc_for, Gateway, JWT_SECRET,
};
use super::idp::{Idp, IdpOptions, TestUser};
use super::pg::{free_port, shared};

/// Everything one real-client scenario needs: the double, the IdP, our gateway on a fixed port
/// with its `public_url` (the IdP must know the callback before the gateway starts).
pub struct Stack {
    pub bedrock: FakeBedrock,
    pub idp: Idp,
    pub gw: Gateway,
    pub base: String,
}

/// Starts the stack; `session` is the body of the `session` mapping after the secret (e.g.
/// `, ttl_hours: 0.05`), `extra` more top-level YAML.
pub fn stack(
    rt: &tokio::runtime::Runtime,
    users: &[TestUser],
    session: &str,
    extra: &str,
) -> Stack {
    let bedrock = rt
        .block_on(FakeBedrock::start(BedrockOptions::default()))
        .unwrap();
    let o = BedrockOptions::default();
    let upstream = double_upstream(&bedrock, &o);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(users, &format!("{base}/oauth/callback"));
    let url = shared().new_db();
    let plain = format!("session: {{jwt_secret: {JWT_SECRET}}}");
    let yaml = config_oidc(
        port,
        &url,
        &upstream,
        &oidc_for(&idp, "client_secret_basic"),
        extra,
    );
    let listen = format!("listen: {{host: 127.0.0.1, port: {port}}}");
    assert!(yaml.contains(&plain) && yaml.contains(&listen));
    let yaml = yaml
        .replace(
            &plain,
            &format!("session: {{jwt_secret: {JWT_SECRET}{session}}}"),
        )
        .replace(
            &listen,
            &format!("listen: {{host: 127.0.0.1, port: {port}, public_url: '{base}'}}"),
        );
    let gw = Gateway::spawn(&yaml, port, &[]);
    gw.wait_healthy(Duration::from_secs(30));
    Stack {
        bedrock,
        idp,
        gw,
        base,
    }
}

/// Signs `claude` in as `login` and walks it to its prompt; returns the stored credentials.
pub fn sign_in(rt: &tokio::runtime::Runtime, s: &Stack, claude: &mut Claude, login: &str) -> Value {
    let device = claude.login();
    assert_eq!(device.verification_uri, format!("{}/device", s.base));
    assert_eq!(
        device.verification_uri_complete,
        format!("{}/device?user_code={}", s.base, device.user_code)
    );
    let approval = rt.block_on(s.idp.approve_device(&s.base, &device.user_code, login));
    assert_eq!(
        approval.status,
        200,
        "{}\n{}\n--- IdP ---\n{}",
        approval.body,
        s.gw.stdout(),
        s.idp.logs()
    );
    assert!(
        approval.body.contains("signed in"),
        "the callback page: {}",
        approval.body
    );
    let creds = claude.wait_signed_in(Duration::from_secs(60));
    claude.wait_ready(Duration::from_secs(60));
    creds
}

/// For tests that only sign in: the IdP (with `opts`) and our gateway in front of it, on a port
/// the IdP knows the callback of, with an upstream nobody listens on. `gates` extends the `oidc`
/// mapping (e.g. `, allowed_groups: [admins]`). Returns them with the gateway's base URL.
pub fn signin_only(users: &[TestUser], opts: IdpOptions, gates: &str) -> (Idp, Gateway, String) {
    signin_with(users, opts, gates, "")
}

/// Like [`signin_only`], with `extra` top-level YAML.
pub fn signin_with(
    users: &[TestUser],
    opts: IdpOptions,
    gates: &str,
    extra: &str,
) -> (Idp, Gateway, String) {
    signin_env(users, opts, gates, extra, &[])
}

/// Like [`signin_with`], with `env` set in the gateway's environment.
pub fn signin_env(
    users: &[TestUser],
    opts: IdpOptions,
    gates: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> (Idp, Gateway, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let method = opts.token_endpoint_auth_method.clone();
    let idp = Idp::start_with(users, &[&format!("{base}/oauth/callback")], opts);
    let upstream = bedrock_upstream(
        "bedrock",
        "http://127.0.0.1:9",
        "AKIATESTTESTTEST",
        "test-aws-secret",
    );
    let oidc = format!("{}{gates}", oidc_for(&idp, &method));
    let yaml = config_oidc(port, &shared().new_db(), &upstream, &oidc, extra);
    let gw = Gateway::spawn(&yaml, port, env);
    gw.wait_healthy(Duration::from_secs(30));
    (idp, gw, base)
}
