//! The developer's CLI, `claude-aws`, against the real gateway and the real test IdP: the device
//! sign-in as a developer does it (the line it prints, the browser step played by the IdP
//! harness), the session it keeps, its refresh through the gateway, and the end of a sign-in.

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
