//! `deployer local`: the whole product on one machine, for a first look before any AWS account
//! is touched. A throwaway PostgreSQL, the demo sign-in (or the operator's IdP), the gateway
//! in this process with the bundled Bedrock double (`--offline`) or Bedrock through the
//! operator's own AWS credentials, a sample policy and spend cap; Ctrl-C stops it all and
//! removes the stack's folder. A watchdog process does the same when this program ends any
//! other way.

mod banner;
mod config;
mod idp;
mod postgres;
mod watchdog;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use claude_gateway::config::{Env, ProcessEnv};
use tokio::sync::watch;

use crate::cli::LocalArgs;
use crate::error::{Error, Result};

use self::config::{LocalEnv, Parts, Upstream};
use self::idp::Idp;
use self::postgres::Postgres;
use self::watchdog::{Watchdog, IDP_PID_FILE};

/// How long the gateway gets to answer `/healthz` once started.
const GATEWAY_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the AWS credential check and the Admin API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// A free loopback port (released before use, so another program could take it first; the
/// part that binds it then fails with a clear error).
pub(crate) fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::failed(format!("cannot find a free loopback port: {e}")))
}

/// `n` random bytes as hex (secrets and passwords of the stack).
pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf)
        .map_err(|_| Error::failed("the system's random source failed"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs the local stack until SIGINT or SIGTERM.
pub async fn run(args: &LocalArgs) -> Result<()> {
    let own_idp = own_idp(args)?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let stop = watch_signals()?;
    let env = ProcessEnv;
    let pg_bin = postgres::find_bin(&env)?;
    // Bedrock first: without credentials there is no point starting the rest.
    let region = args
        .region
        .clone()
        .or_else(|| env.var("AWS_REGION"))
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    if !args.offline {
        let who = aws_identity(&region).await?;
        progress(&format!("Bedrock in {region} as {who}"));
    }
    check(&stop)?;
    let as_user = postgres::running_as_root().then(|| "postgres".to_owned());

    let dir = tempfile::Builder::new()
        .prefix("claude-gateway-local-")
        .tempdir()
        .map_err(|e| Error::failed(format!("cannot create a temporary folder: {e}")))?;
    // From here on the watchdog removes the folder; the TempDir must not race it.
    let dir = dir.keep();
    progress(&format!("stack folder: {}", dir.display()));
    if as_user.is_some() {
        // The server's user must reach its folder inside this one.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711));
    }
    let mut pg_stop = Postgres::command_for(pg_bin.as_deref(), as_user.as_deref(), "pg_ctl");
    pg_stop
        .args(["-D"])
        .arg(dir.join("pg/data"))
        .args(["-m", "immediate", "-w", "stop"]);
    let dog = match Watchdog::start(&dir, &pg_stop) {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let mut parts = Running::default();
    let result = serve(
        args, own_idp, &region, &dir, pg_bin, as_user, &stop, &mut parts,
    )
    .await;
    let down = parts.stop(&dir);
    let finished = dog.finish();
    if dir.exists() {
        return Err(Error::failed(format!(
            "{} could not be removed: remove it by hand",
            dir.display()
        )));
    }
    result.and(down).and(finished)?;
    progress("stopped: nothing is left running, and the stack folder is removed");
    Ok(())
}

/// The issuer, client id and secret of the operator's own IdP, when given (all three or none).
fn own_idp(args: &LocalArgs) -> Result<Option<(String, String, String)>> {
    if args.client_secret.is_some() {
        eprintln!(
            "warning: --client-secret puts the secret in this command's arguments, which other users of this machine can read while it runs; set LOCAL_OIDC_CLIENT_SECRET instead"
        );
    }
    let secret = args
        .client_secret
        .clone()
        .or_else(|| ProcessEnv.var("LOCAL_OIDC_CLIENT_SECRET"));
    match (&args.issuer, &args.client_id, secret) {
        (None, None, _) => Ok(None),
        (Some(issuer), Some(id), Some(secret)) => {
            let url = url::Url::parse(issuer)
                .map_err(|e| Error::usage(format!("--issuer {issuer:?} is not a URL: {e}")))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(Error::usage("--issuer must be an https:// URL"));
            }
            Ok(Some((issuer.trim_end_matches('/').to_owned(), id.clone(), secret)))
        }
        _ => Err(Error::usage(
            "a real IdP needs --issuer, --client-id and --client-secret (or LOCAL_OIDC_CLIENT_SECRET) together; without them the demo sign-in runs",
        )),
    }
}

/// A progress line on stderr.
fn progress(msg: &str) {
    eprintln!("deployer local: {msg}");
}

/// A watch that counts SIGINT and SIGTERM. The first asks for an orderly stop; a second one
/// exits at once (the watchdog then cleans up).
fn watch_signals() -> Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = watch::channel(false);
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Error::failed(format!("cannot watch for Ctrl-C: {e}")))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::failed(format!("cannot watch for SIGTERM: {e}")))?;
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            seen += 1;
            if seen == 1 {
                progress("stopping (Ctrl-C again to exit at once; the leftovers are then cleaned up in the background)");
                let _ = tx.send(true);
            } else {
                progress("exiting now");
                std::process::exit(130);
            }
        }
    });
    Ok(rx)
}

/// Resolves once a stop was asked for.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// An error when a stop was asked for (checked between the start-up steps).
fn check(stop: &watch::Receiver<bool>) -> Result<()> {
    if *stop.borrow() {
        return Err(Error::failed("stopped during start-up"));
    }
    Ok(())
}

/// The parts started so far, stopped in reverse order.
#[derive(Default)]
struct Running {
    idp: Option<Idp>,
    pg: Option<Postgres>,
    double: Option<testkit::FakeBedrock>,
}

impl Running {
    fn stop(&mut self, dir: &Path) -> Result<()> {
        drop(self.double.take());
        if let Some(mut idp) = self.idp.take() {
            idp.stop();
        }
        let mut result = Ok(());
        if let Some(pg) = self.pg.take() {
            result = pg.stop().map_err(|e| {
                Error::failed(format!(
                    "PostgreSQL did not stop: {e} (the watchdog stops it at once)"
                ))
            });
        }
        if let Err(e) = std::fs::remove_dir_all(dir) {
            if e.kind() != std::io::ErrorKind::NotFound && result.is_ok() {
                result = Err(Error::failed(format!(
                    "cannot remove {}: {e}",
                    dir.display()
                )));
            }
        }
        result
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    args: &LocalArgs,
    own_idp: Option<(String, String, String)>,
    region: &str,
    dir: &Path,
    pg_bin: Option<PathBuf>,
    as_user: Option<String>,
    stop: &watch::Receiver<bool>,
    parts: &mut Running,
) -> Result<()> {
    let env = ProcessEnv;
    let port = match args.port {
        Some(p) => {
            std::net::TcpListener::bind(("127.0.0.1", p)).map_err(|e| {
                Error::usage(format!("--port {p}: 127.0.0.1:{p} cannot be used ({e})"))
            })?;
            p
        }
        None => free_port()?,
    };
    let gateway = format!("http://127.0.0.1:{port}");

    let pg_dir = dir.join("pg");
    let pg = tokio::task::spawn_blocking(move || Postgres::start(pg_bin, &pg_dir, as_user))
        .await
        .map_err(|e| Error::failed(format!("the PostgreSQL start-up failed: {e}")))??;
    let pg_port = pg.port;
    let pg_url = pg.url();
    parts.pg = Some(pg);
    progress(&format!("PostgreSQL listening on 127.0.0.1:{pg_port}"));
    check(stop)?;

    let (issuer, client_id, client_secret, demo) = match own_idp {
        Some((issuer, id, secret)) => (issuer, id, secret, false),
        None => {
            let idp = Idp::start(
                &env,
                &idp::idp_dir(),
                dir,
                &format!("{gateway}/oauth/callback"),
            )?;
            if let Some(pid) = idp.pid() {
                let _ = std::fs::write(dir.join(IDP_PID_FILE), pid.to_string());
            }
            let found = (
                idp.issuer.clone(),
                idp.client_id.clone(),
                idp.client_secret.clone(),
            );
            progress(&format!("demo IdP listening on {}", idp.issuer));
            parts.idp = Some(idp);
            (found.0, found.1, found.2, true)
        }
    };
    check(stop)?;

    let upstream = if args.offline {
        let opts = testkit::Options::default();
        let double = testkit::FakeBedrock::start(opts.clone())
            .await
            .map_err(|e| Error::failed(format!("cannot start the Bedrock double: {e}")))?;
        let up = Upstream::Double {
            url: double.url(),
            key_id: opts.access_key_id,
            secret: opts.secret_access_key,
        };
        parts.double = Some(double);
        up
    } else {
        Upstream::Bedrock {
            region: region.to_owned(),
        }
    };
    let admin_key = random_hex(32)?;
    let cfg = Parts {
        port,
        upstream,
        vars: config::vars(
            &pg_url,
            &issuer,
            &client_id,
            &client_secret,
            &random_hex(32)?,
            &admin_key,
        ),
    };
    let yaml = config::render(&cfg);
    let yaml_path = dir.join("gateway.yaml");
    std::fs::write(&yaml_path, &yaml)
        .map_err(|e| Error::failed(format!("cannot write {}: {e}", yaml_path.display())))?;
    let claude_dir = dir.join("claude");
    write_client_settings(&claude_dir, &gateway)?;

    let local_env = LocalEnv::new(&cfg);
    let loaded = claude_gateway::config::load(&yaml, &local_env)
        .map_err(|e| Error::failed(format!("the generated gateway config is invalid:\n{e}")))?;
    claude_gateway::telemetry::logging::init(&local_env);
    let source = yaml_path.display().to_string();
    let gw = claude_gateway::boot::run_until(loaded, &source, &local_env, stopped(stop.clone()));
    tokio::pin!(gw);

    let up = async {
        wait_healthy(&gateway).await?;
        sample_cap(&gateway, &admin_key).await
    };
    tokio::select! {
        r = &mut gw => {
            return Err(match r {
                Ok(()) => Error::failed("the gateway stopped during start-up"),
                Err(e) => Error::failed(format!("the gateway did not start: {e}")),
            });
        }
        r = up => r?,
    }
    let upstream_words = if args.offline {
        "the bundled Bedrock double (--offline): every answer is \"Hello from the Bedrock double.\""
            .to_owned()
    } else {
        format!("Amazon Bedrock in {region}, with your AWS credentials")
    };
    let text = banner::render(&banner::Banner {
        gateway: &gateway,
        claude_dir: &claude_dir.display().to_string(),
        dir: &dir.display().to_string(),
        demo_issuer: demo.then_some(issuer.as_str()),
        upstream: &upstream_words,
        admin_key: &admin_key,
        postgres: &format!("PostgreSQL on 127.0.0.1:{pg_port}"),
    });
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = writeln!(
            out,
            "The gateway's audit events follow, one JSON line each."
        );
        let _ = out.flush();
    }
    gw.await
        .map_err(|e| Error::failed(format!("the gateway stopped with an error: {e}")))
}

/// Who the operator's AWS credentials are, from STS; a clear error without them.
async fn aws_identity(region: &str) -> Result<String> {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&conf);
    let hint = "deployer local calls Bedrock with your own AWS credentials: sign in (aws sso login, aws configure, or AWS_PROFILE) with bedrock:InvokeModel* in a Region with Anthropic models (--region), or try it without AWS: deployer local --offline";
    match tokio::time::timeout(CALL_TIMEOUT, sts.get_caller_identity().send()).await {
        Ok(Ok(out)) => Ok(out.arn().unwrap_or("an unnamed identity").to_owned()),
        Ok(Err(e)) => {
            // The full chain of causes is long: its head says what went wrong.
            let full = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
            let head: String = full
                .split(" (")
                .next()
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            Err(Error::failed(format!(
                "no usable AWS credentials ({head}): {hint}"
            )))
        }
        Err(_) => Err(Error::failed(format!(
            "AWS did not answer within {} s: {hint}",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// The Claude Code settings that send `/login` to the gateway, in their own config folder (the
/// operator's `~/.claude` is left alone).
fn write_client_settings(claude_dir: &Path, gateway: &str) -> Result<()> {
    std::fs::create_dir_all(claude_dir)
        .map_err(|e| Error::failed(format!("cannot create {}: {e}", claude_dir.display())))?;
    let settings = serde_json::json!({
        "forceLoginMethod": "gateway",
        "forceLoginGatewayUrl": gateway,
    });
    let path = claude_dir.join("settings.json");
    std::fs::write(&path, settings.to_string())
        .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))
}

fn http() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Error::failed(format!("cannot build an HTTP client: {e}")))
}

/// Polls `/healthz` until it answers 200, for at most [`GATEWAY_START_TIMEOUT`].
async fn wait_healthy(gateway: &str) -> Result<()> {
    let client = http()?;
    let deadline = Instant::now() + GATEWAY_START_TIMEOUT;
    let url = format!("{gateway}/healthz");
    loop {
        if let Ok(r) = client.get(&url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(Error::failed(format!(
                "the gateway did not answer {url} within {} s",
                GATEWAY_START_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sample spend cap, through the Admin API: $10 a day for each member of `developers`.
async fn sample_cap(gateway: &str, admin_key: &str) -> Result<()> {
    let r = http()?
        .post(format!("{gateway}/v1/organizations/spend_limits"))
        .header("x-api-key", admin_key)
        .json(&serde_json::json!({
            "scope": {"type": "rbac_group", "rbac_group_id": "developers"},
            "amount": "1000",
            "period": "daily",
        }))
        .send()
        .await
        .map_err(|e| Error::failed(format!("the sample spend cap could not be set: {e}")))?;
    if !r.status().is_success() {
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        return Err(Error::failed(format!(
            "the sample spend cap was refused ({status}): {}",
            body.chars().take(300).collect::<String>()
        )));
    }
    Ok(())
}
