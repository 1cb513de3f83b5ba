//! `credentials`, `exec`, `configure`, `request` and `status` against the gateway's routes.

use serde_json::json;

use crate::stub::{json, Reply, Stub};
use crate::Machine;

const CREDS: &str = r#"{"AccessKeyId":"ASIATESTKEY","SecretAccessKey":"secret-key-value","Token":"session-token-value","Expiration":"2030-01-01T10:00:00Z"}"#;

fn status_body() -> serde_json::Value {
    json!({"user": {"sub": "alice", "email": "alice@example.com"}, "projects": [
        {"name": "payments", "environment": "prod", "regions": ["eu-west-1", "eu-central-1"],
         "level": "write", "from": null, "until": "2030-02-01T00:00:00Z",
         "write_approval": "required", "max_session_seconds": 3600,
         "grants": [{"id": "grt_1", "status": "approved", "reason": "r", "duration_seconds": 3600,
                     "requested_at": "2030-01-01T09:00:00Z", "decided_by": "bob@example.com",
                     "until": "2030-01-01T10:00:00Z"}]}]})
}

/// A signed-in machine and a gateway serving the AWS routes.
fn gateway() -> (Stub, Machine) {
    let gw = Stub::start(|req, _| {
        if req.header("authorization") != Some("Bearer at") {
            return json(401, json!({"code": "unauthorized", "message": "no"}));
        }
        let q = req
            .path
            .split_once('?')
            .map(|(_, q)| q.to_owned())
            .unwrap_or_default();
        match req.route().as_str() {
            "GET /v1/aws/credentials" if q == "project=payments&level=read" => {
                Reply(200, CREDS.into())
            }
            "GET /v1/aws/credentials" if q == "project=payments&level=write" => json(
                403,
                json!({
                "code": "write_not_approved",
                "message": "write access to payments needs an approved request: claude-aws request --project payments"}),
            ),
            "GET /v1/aws/credentials" if q.starts_with("project=huge") => {
                Reply(200, "x".repeat(2 << 20))
            }
            "GET /v1/aws/credentials" if q.starts_with("project=broken") => {
                Reply(200, "[1,2]".into())
            }
            "GET /v1/aws/credentials" if q.starts_with("project=down") => json(
                503,
                json!({"code": "unavailable", "message": "STS is unavailable"}),
            ),
            "GET /v1/aws/credentials" => json(
                403,
                json!({"code": "not_member", "message": "you are not a member of project other"}),
            ),
            "GET /v1/aws/status" => json(200, status_body()),
            "POST /v1/aws/grants" => {
                let b: serde_json::Value = serde_json::from_str(&req.body).unwrap_or_default();
                if b["project"] != "payments" {
                    return json(
                        404,
                        json!({"code": "no_project", "message": "no project x"}),
                    );
                }
                json(
                    201,
                    json!({"id": "grt_7", "status": "pending", "project": "payments",
                    "duration_seconds": b["duration_seconds"],
                    "approval_url": "https://gw.example.com/aws/approvals/grt_7"}),
                )
            }
            _ => Reply(404, "{}".into()),
        }
    });
    let m = Machine::new();
    m.seed(&gw.url, "at", 3600, Some("rt"));
    (gw, m)
}

#[test]
fn credentials_print_exactly_the_credential_process_shape_and_nothing_else() {
    let (gw, m) = gateway();
    let r = m.run(&["credentials", "--project", "payments"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        "{\"Version\":1,\"AccessKeyId\":\"ASIATESTKEY\",\"SecretAccessKey\":\"secret-key-value\",\"SessionToken\":\"session-token-value\",\"Expiration\":\"2030-01-01T10:00:00Z\"}\n"
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let session = std::fs::read_to_string(m.session_file()).unwrap();
    assert!(!session.contains("secret-key-value") && !session.contains("ASIATESTKEY"));
    assert_eq!(gw.to("GET /v1/aws/credentials").len(), 1);
}

#[test]
fn refusals_are_one_line_with_the_gateways_reason_and_their_exit_code() {
    let (_gw, m) = gateway();
    for (args, code, words) in [
        (
            vec!["credentials", "--project", "payments", "--write"],
            4,
            "needs an approved request: claude-aws request --project payments (write_not_approved)",
        ),
        (
            vec!["credentials", "--project", "other"],
            4,
            "not a member of project other",
        ),
        (
            vec!["credentials", "--project", "down"],
            5,
            "STS is unavailable",
        ),
        (
            vec!["credentials", "--project", "huge"],
            1,
            "larger than 1 MiB",
        ),
        (
            vec!["credentials", "--project", "broken"],
            1,
            "not a JSON object",
        ),
        (
            vec!["exec", "--project", "other", "--", "true"],
            4,
            "not a member",
        ),
    ] {
        let r = m.run(&args);
        assert_eq!(r.code, Some(code), "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("claude-aws: "), "{}", r.stderr);
        assert!(r.stderr.contains(words), "{args:?}: {}", r.stderr);
    }
}

#[cfg(unix)]
#[test]
fn exec_runs_the_command_with_only_these_credentials_and_passes_its_exit_on() {
    let (_gw, m) = gateway();
    let script = "echo \"$AWS_ACCESS_KEY_ID $AWS_SESSION_TOKEN $AWS_CREDENTIAL_EXPIRATION\"; \
                  echo \"profile=${AWS_PROFILE-unset} uri=${AWS_CONTAINER_CREDENTIALS_FULL_URI-unset}\"; exit 7";
    let r: crate::Run = m
        .cmd(&["exec", "--project", "payments", "--", "sh", "-c", script])
        .env("AWS_PROFILE", "admin")
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.2/creds",
        )
        .env("AWS_ACCESS_KEY_ID", "AKIALONGLIVED")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, Some(7), "{r:?}");
    assert_eq!(
        r.stdout,
        "ASIATESTKEY session-token-value 2030-01-01T10:00:00Z\nprofile=unset uri=unset\n"
    );

    let r = m.run(&[
        "exec",
        "--project",
        "payments",
        "--",
        "sh",
        "-c",
        "kill -TERM $$",
    ]);
    assert_eq!(
        r.code,
        Some(128 + 15),
        "a signal is passed on as 128+n: {r:?}"
    );

    let r = m.run(&[
        "exec",
        "--project",
        "payments",
        "--",
        "no-such-program-here",
    ]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn configure_adds_a_profile_keeping_the_file_and_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let (_gw, m) = gateway();
    let cfg = m.aws_config();
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    let before = "# mine\n[default]\nregion = us-east-1\n";
    std::fs::write(&cfg, before).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();

    let r = m.run(&["configure", "--project", "payments"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_claude-aws")).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(
        text,
        format!(
            "{before}\n[profile claude-payments]\ncredential_process = {} credentials --project payments\nregion = eu-west-1\n",
            exe.display()
        )
    );
    assert_eq!(crate::mode(&cfg), 0o640, "the file keeps its mode");
    assert!(r.stderr.contains("claude-payments"), "{}", r.stderr);

    // Again, for write with a chosen name and region, through AWS_CONFIG_FILE elsewhere.
    let other = m.home.path().join("other-config");
    let r: crate::Run = m
        .cmd(&[
            "configure",
            "--project",
            "payments",
            "--write",
            "--profile",
            "pay-admin",
            "--region",
            "us-west-2",
        ])
        .env("AWS_CONFIG_FILE", &other)
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, Some(0), "{r:?}");
    let text2 = std::fs::read_to_string(&other).unwrap();
    assert!(text2.starts_with("[profile pay-admin]\n"), "{text2}");
    assert!(
        text2.contains("credentials --project payments --write\n"),
        "{text2}"
    );
    assert!(text2.contains("region = us-west-2\n"), "{text2}");
    assert_eq!(crate::mode(&other), 0o600, "a new file is private");
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        text,
        "the default file is untouched"
    );

    // Idempotent: the same command changes nothing.
    let r = m.run(&["configure", "--project", "payments"]);
    assert_eq!(r.code, Some(0));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), text);
}

#[test]
fn configure_without_a_reachable_gateway_writes_no_region() {
    let m = Machine::new();
    let r = m.run(&["configure", "--project", "payments"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let text = std::fs::read_to_string(m.aws_config()).unwrap();
    assert!(
        text.starts_with("[profile claude-payments]\ncredential_process = "),
        "{text}"
    );
    assert!(!text.contains("region"), "{text}");
    assert!(r.stderr.contains("No region set"), "{}", r.stderr);
}

#[test]
fn request_prints_the_id_status_and_approval_url() {
    let (gw, m) = gateway();
    let r = m.run(&[
        "request",
        "--project",
        "payments",
        "--for",
        "90m",
        "--reason",
        "rotate the key",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        "id: grt_7\nstatus: pending\napproval_url: https://gw.example.com/aws/approvals/grt_7\n"
    );
    let sent: serde_json::Value =
        serde_json::from_str(&gw.to("POST /v1/aws/grants")[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"project": "payments", "duration_seconds": 5400, "reason": "rotate the key"})
    );
    let r = m.run(&[
        "request",
        "--project",
        "nope",
        "--for",
        "1h",
        "--reason",
        "x",
    ]);
    assert_eq!(r.code, Some(4), "{r:?}");
}

#[test]
fn request_wait_follows_the_request_until_it_is_decided() {
    for (decision, code) in [("approved", 0), ("denied", 4)] {
        let gw = Stub::start(move |req, before| match req.route().as_str() {
            "POST /v1/aws/grants" => json(
                201,
                json!({"id": "grt_9", "status": "pending",
                "approval_url": "https://gw.example.com/aws/approvals/grt_9"}),
            ),
            "GET /v1/aws/grants/grt_9" => {
                let looks = before
                    .iter()
                    .filter(|r| r.route() == "GET /v1/aws/grants/grt_9")
                    .count();
                let status = if looks == 0 { "pending" } else { decision };
                json(
                    200,
                    json!({"id": "grt_9", "status": status, "until": "2030-01-01T11:00:00Z"}),
                )
            }
            _ => Reply(404, "{}".into()),
        });
        let m = Machine::new();
        m.seed(&gw.url, "at", 3600, Some("rt"));
        let r = m.run(&[
            "request",
            "--project",
            "payments",
            "--for",
            "15m",
            "--reason",
            "fix",
            "--wait",
        ]);
        assert_eq!(r.code, Some(code), "{decision}: {r:?}");
        assert!(
            r.stdout.contains(&format!("status: {decision}\n")),
            "{}",
            r.stdout
        );
        let looks = gw.to("GET /v1/aws/grants/grt_9");
        assert_eq!(looks.len(), 2);
        assert!(looks[1].at - looks[0].at >= std::time::Duration::from_secs(3));
    }
}

#[test]
fn status_shows_a_table_or_the_json() {
    let (_gw, m) = gateway();
    let r = m.run(&["status"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout.contains("Signed in as alice@example.com"),
        "{}",
        r.stdout
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[1].starts_with("PROJECT "), "{}", r.stdout);
    assert!(lines[2].starts_with("payments "), "{}", r.stdout);
    assert!(lines[2].contains("until 2030-02-01T00:00:00Z"));
    assert!(lines[2].contains("approved until 2030-01-01T10:00:00Z"));
    let r = m.run(&["status", "--json"]);
    assert_eq!(r.code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v, status_body());
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_waiting_and_leaves_the_request_pending() {
    use std::io::BufRead;
    let gw = Stub::start(|req, _| match req.route().as_str() {
        "POST /v1/aws/grants" => json(201, json!({"id": "grt_5", "status": "pending"})),
        "GET /v1/aws/grants/grt_5" => json(200, json!({"id": "grt_5", "status": "pending"})),
        _ => Reply(404, "{}".into()),
    });
    let m = Machine::new();
    m.seed(&gw.url, "at", 3600, Some("rt"));
    let mut child = m
        .cmd(&[
            "request",
            "--project",
            "payments",
            "--for",
            "1h",
            "--reason",
            "fix",
            "--wait",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("Waiting for the decision") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no waiting line");
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("the request grt_5 stays pending"), "{rest}");
}
