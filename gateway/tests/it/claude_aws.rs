//! The developer's CLI, `claude-aws`, against the real gateway and the real test IdP: the device
//! sign-in as a developer does it (the line it prints, the browser step played by the IdP
//! harness), the session it keeps, its refresh through the gateway, and the end of a sign-in.
//! And its `--via-gateway` mode as the real `aws` CLI and boto3 read it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::idp::{IdpOptions, TestUser};
use crate::support::stack::signin_only;
use crate::support::{claude_aws_bin, jwt_claims, runtime};

fn cli(config_dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(claude_aws_bin());
    c.args(args)
        .env_clear()
        .env("HOME", config_dir)
        .env("CLAUDE_AWS_CONFIG_DIR", config_dir)
        .stdin(Stdio::null());
    c
}

fn session(config_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(config_dir.join("session.json")).unwrap()).unwrap()
}

#[test]
fn claude_aws_signs_in_with_the_device_grant_and_refreshes_through_the_gateway() {
    let rt = runtime();
    let (idp, gw, base) = signin_only(
        &[TestUser::new("alice").groups(&["eng"])],
        IdpOptions::default(),
        "",
    );
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("claude-aws");

    let mut login = cli(&dir, &["login", "--no-browser", "--gateway", &base])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(login.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("Open ") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "login ended early"
        );
    }
    let (url, code) = line
        .trim_end()
        .strip_prefix("Open ")
        .and_then(|l| l.split_once(" and confirm the code "))
        .unwrap_or_else(|| panic!("not the documented line: {line:?}"));
    assert_eq!(url, format!("{base}/device?user_code={code}"));

    let approval = rt.block_on(idp.approve_device(&base, code, "alice"));
    assert_eq!(approval.status, 200, "{}", approval.body);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = login.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = login.kill();
            panic!("login did not finish after the approval");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(rest.contains(&format!("Signed in to {base}.")), "{rest}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("session.json")), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    let first = session(&dir);
    assert_eq!(first["gateway"], base.as_str());
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_claims(&access)["sub"], "alice");
    let started = gw.audit("device.authorize");
    assert!(
        started.iter().any(|e| e["surface"] == "claude_aws"),
        "{started:?}"
    );

    // The cached access token has run out: the next call refreshes at the gateway (the IdP
    // rotates its refresh token) and stores the new pair, still 0600.
    let mut expired = first.clone();
    expired["access_expires_at"] = 0.into();
    std::fs::write(dir.join("session.json"), expired.to_string()).unwrap();
    let r = cli(&dir, &["credentials", "--project", "payments"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.stdout.is_empty(), "no credentials from this gateway");
    // No AWS access is configured on this gateway: a refusal (4), after a successful refresh.
    assert_eq!(r.status.code(), Some(4), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let refreshed = gw.audit("session.refresh");
    assert_eq!(refreshed.len(), 1, "{}", gw.stdout());
    assert_eq!(refreshed[0]["result"], "success");
    let second = session(&dir);
    let new_access = second["access_token"].as_str().unwrap();
    let new_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(new_access, access);
    assert_ne!(new_refresh, refresh, "the rotated refresh token is kept");
    assert_eq!(jwt_claims(new_access)["sub"], "alice");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(dir.join("session.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o600);
    }
    gw.assert_absent(&[&access, &refresh, new_access, new_refresh]);
    for text in [&rest, &err.to_string()] {
        assert!(!text.contains(&refresh) && !text.contains(&access));
    }

    // The IdP no longer knows alice: the next refresh ends the sign-in, exit 3.
    idp.disable_user("alice");
    let mut expired = second.clone();
    expired["access_expires_at"] = 0.into();
    std::fs::write(dir.join("session.json"), expired.to_string()).unwrap();
    let r = cli(&dir, &["status"]).output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(3), "{err}");
    assert!(err.contains("claude-aws login"), "{err}");

    let r = cli(&dir, &["logout"]).output().unwrap();
    assert_eq!(r.status.code(), Some(0));
    assert!(!dir.join("session.json").exists());
}

/// `claude-aws` (or another program) on a laptop whose home is `home`: its own AWS config file,
/// the CLI's session folder, the PATH, and no AWS credential.
fn on_laptop(home: &Path, program: &Path) -> Command {
    use claude_gateway::config::{Env, ProcessEnv};
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", ProcessEnv.var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CLAUDE_AWS_CONFIG_DIR", home.join("claude-aws"))
        .env("AWS_CONFIG_FILE", home.join(".aws/config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The URL boto3 would send `list_objects_v2(Bucket=reports)` to (stopped before sending), the
/// credentials it holds and the endpoint of its Logs client, one per line.
const BOTO3_PROBE: &str = "import boto3, sys\n\
s = boto3.Session(profile_name=sys.argv[1]) if len(sys.argv) > 1 else boto3.Session()\n\
c = s.get_credentials().get_frozen_credentials()\n\
print(c.access_key, len(c.secret_key), bool(c.token))\n\
print(s.client('logs', region_name='eu-west-1').meta.endpoint_url)\n\
s3 = s.client('s3', region_name='eu-west-1')\n\
def stop(request, **kw):\n    print(request.url)\n    raise SystemExit(0)\n\
s3.meta.events.register('before-send.s3', stop)\n\
s3.list_objects_v2(Bucket='reports')\n";

/// `--via-gateway` end to end on the developer's side: `configure` writes a profile that the real
/// `aws` CLI reads (the gateway's `/aws/` endpoint, path-style S3, the project's region) without
/// touching the rest of the file; boto3 runs its `credential_process` and takes the gateway-only
/// credential; `credentials` prints it; `exec` points the command's SDK at the gateway and
/// removes a per-service endpoint that would go around it. Going back to STS removes the
/// gateway endpoint again.
#[test]
fn claude_aws_via_gateway_writes_a_profile_the_aws_cli_reads_and_hands_out_gateway_keys() {
    use crate::aws_credentials::{aws_access_with_proxy, token};
    use crate::support::gateway::{config, Gateway};
    use crate::support::moto::ENV;
    use crate::support::pg::shared;

    let url = shared().new_db();
    let extra = aws_access_with_proxy("http://127.0.0.1:9", "{}");
    let gw = Gateway::start(|port| config(port, &url, &extra), &ENV);
    let base = format!("http://127.0.0.1:{}", gw.port);
    let endpoint = format!("{base}/aws/");

    // Ana is signed in (the session as `login` leaves it) and has a config of her own.
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    std::fs::create_dir_all(home.join("claude-aws")).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let session = serde_json::json!({"gateway": base, "access_token": token("ana", &["payments"], None),
        "access_expires_at": now + 3600, "refresh_token": null});
    std::fs::write(home.join("claude-aws/session.json"), session.to_string()).unwrap();
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let mine = "# mine\n[default]\nregion = us-east-1\n\n[profile claude-payments]\noutput = json\nendpoint_url = https://old.example.com\n\n[profile work]\nregion = us-west-2\n";
    std::fs::write(home.join(".aws/config"), mine).unwrap();
    let claude_aws = |args: &[&str]| {
        on_laptop(home, &claude_aws_bin())
            .args(args)
            .output()
            .unwrap()
    };
    let aws_get = |key: &str, profile: &str| {
        let r = on_laptop(home, Path::new("aws"))
            .args(["configure", "get", key, "--profile", profile])
            .output()
            .unwrap();
        text(&r.stdout).trim().to_owned()
    };

    let r = claude_aws(&["configure", "--project", "payments", "--via-gateway"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let written = std::fs::read_to_string(home.join(".aws/config")).unwrap();
    assert!(
        written.starts_with("# mine\n[default]\nregion = us-east-1\n\n[profile claude-payments]\n"),
        "{written}"
    );
    assert!(
        written.ends_with("\n[profile work]\nregion = us-west-2\n"),
        "{written}"
    );
    assert!(
        written.contains(" credentials --project payments --via-gateway\n"),
        "{written}"
    );
    assert!(!written.contains("old.example.com"), "{written}");
    assert_eq!(aws_get("endpoint_url", "claude-payments"), endpoint);
    assert_eq!(aws_get("s3.addressing_style", "claude-payments"), "path");
    assert_eq!(aws_get("region", "claude-payments"), "eu-west-1");
    assert_eq!(aws_get("output", "claude-payments"), "json");
    assert_eq!(aws_get("region", "work"), "us-west-2");
    // Again: nothing changes.
    let r = claude_aws(&["configure", "--project", "payments", "--via-gateway"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(
        std::fs::read_to_string(home.join(".aws/config")).unwrap(),
        written
    );

    // boto3 runs the profile's credential_process: a gateway-only credential, every client
    // pointed at the gateway, S3 in path style.
    let r = on_laptop(home, Path::new("python3"))
        .args(["-c", BOTO3_PROBE, "claude-payments"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
    let out = text(&r.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let (key, rest) = lines[0].split_once(' ').unwrap();
    assert!(key.starts_with("AGW") && key.len() == 20, "{out}");
    assert_eq!(rest, "40 True", "{out}");
    assert_eq!(lines[1], endpoint);
    assert!(
        lines[2].starts_with(&format!("{endpoint}reports?")),
        "{out}"
    );

    // `credentials --via-gateway` prints the credential_process JSON.
    let r = claude_aws(&["credentials", "--project", "payments", "--via-gateway"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let printed: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(printed["Version"], 1);
    assert!(printed["AccessKeyId"].as_str().unwrap().starts_with("AGW"));
    assert_eq!(printed["SecretAccessKey"].as_str().unwrap().len(), 40);

    // `exec --via-gateway`: the SDK's endpoint is the gateway's, whatever the shell had set.
    let r = on_laptop(home, &claude_aws_bin())
        .args([
            "exec",
            "--project",
            "payments",
            "--via-gateway",
            "--",
            "python3",
            "-c",
        ])
        .arg(BOTO3_PROBE)
        .env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
        .env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
        .env("AWS_PROFILE", "work")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
    let out = text(&r.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("AGW") && lines[0].ends_with(" 40 True"),
        "{out}"
    );
    assert_eq!(lines[1], endpoint);
    assert!(
        lines[2].starts_with(&format!("{endpoint}reports?")),
        "{out}"
    );

    // Back to STS credentials in the same profile: the gateway's endpoint goes with it.
    let r = claude_aws(&["configure", "--project", "payments"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(aws_get("endpoint_url", "claude-payments"), "");
    let back = std::fs::read_to_string(home.join(".aws/config")).unwrap();
    assert!(back.contains(" credentials --project payments\n"), "{back}");

    let issued = gw.audit("aws.credentials");
    assert_eq!(issued.len(), 3, "{issued:?}");
    assert!(issued
        .iter()
        .all(|e| e["via"] == "gateway" && e["user"] == "ana"));
    gw.assert_absent(&[printed["SecretAccessKey"].as_str().unwrap()]);
}
