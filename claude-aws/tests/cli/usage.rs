//! Before any gateway is involved: help, arguments, addresses, and the session's absence.

use crate::Machine;

#[test]
fn help_documents_the_exit_codes_and_every_command_has_examples() {
    let m = Machine::new();
    let r = m.run(&["--help"]);
    assert_eq!(r.code, Some(0));
    for line in [
        "3    not signed in",
        "4    refused by the gateway",
        "5    the gateway is unreachable",
        "CLAUDE_AWS_CONFIG_DIR",
    ] {
        assert!(r.stdout.contains(line), "{line}:\n{}", r.stdout);
    }
    for cmd in [
        "login",
        "credentials",
        "configure",
        "exec",
        "request",
        "status",
        "logout",
    ] {
        let r = m.run(&["help", cmd]);
        assert_eq!(r.code, Some(0), "{cmd}");
        assert!(r.stdout.contains("claude-aws"), "{cmd}: {}", r.stdout);
        assert!(
            r.stdout.contains("Example"),
            "{cmd} has no example: {}",
            r.stdout
        );
    }
}

#[test]
fn bad_arguments_exit_2() {
    let m = Machine::new();
    for args in [
        vec![],
        vec!["credentials"],
        vec!["credentials", "--project", "a&level=write"],
        vec!["exec", "--project", "p"],
        vec!["configure", "--project", "p", "--region", "eu west"],
        vec!["request", "--project", "p", "--for", "1h"],
    ] {
        let r = m.run(&args);
        assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}");
    }
    // A bad duration or reason is found before the session is even looked at.
    for (d, reason) in [("1d", "x"), ("1h", " ")] {
        let r = m.run(&["request", "--project", "p", "--for", d, "--reason", reason]);
        assert_eq!(r.code, Some(2), "{d} {reason:?}: {r:?}");
    }
}

#[test]
fn a_plain_http_gateway_is_refused_with_the_reason() {
    let m = Machine::new();
    let r = m.run(&[
        "login",
        "--no-browser",
        "--gateway",
        "http://gateway.example.com",
    ]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("must use https"), "{}", r.stderr);
    assert!(r.stderr.contains("clear text"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);

    let r = m
        .cmd(&["login", "--no-browser"])
        .env("CLAUDE_AWS_GATEWAY", "ftp://x")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));

    let r = m.run(&["login", "--no-browser"]);
    assert_eq!(r.code, Some(2), "no gateway at all: {r:?}");
    assert!(r.stderr.contains("--gateway"), "{}", r.stderr);
    let r: crate::Run = m
        .cmd(&["login", "--no-browser"])
        .env("CLAUDE_AWS_GATEWAY", "")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, Some(2), "an empty variable is no gateway: {r:?}");
    assert!(r.stderr.contains("--gateway"), "{}", r.stderr);
}

#[test]
fn without_a_session_every_command_says_to_log_in() {
    let m = Machine::new();
    for args in [
        vec!["credentials", "--project", "p"],
        vec!["status"],
        vec!["exec", "--project", "p", "--", "true"],
        vec![
            "--gateway",
            "https://gw.example.com",
            "credentials",
            "--project",
            "p",
        ],
    ] {
        let r = m.run(&args);
        assert_eq!(r.code, Some(3), "{args:?}: {r:?}");
        assert!(r.stderr.contains("claude-aws login"), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    let r = m.run(&["logout"]);
    assert_eq!(r.code, Some(0));
    assert!(r.stderr.contains("Not signed in"));
}

#[test]
fn a_session_for_another_gateway_is_not_used() {
    let m = Machine::new();
    m.seed("https://a.example.com", "at", 3600, Some("rt"));
    let r = m.run(&[
        "--gateway",
        "https://b.example.com",
        "credentials",
        "--project",
        "p",
    ]);
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(
        r.stderr
            .contains("signed in to https://a.example.com, not to https://b.example.com"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_unreachable_gateway_exits_5() {
    let m = Machine::new();
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = format!("http://127.0.0.1:{port}");
    m.seed(&gw, "at", 3600, Some("rt"));
    let r = m.run(&["credentials", "--project", "p"]);
    assert_eq!(r.code, Some(5), "{r:?}");
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
    let r = m.run(&["login", "--no-browser", "--gateway", &gw]);
    assert_eq!(r.code, Some(5), "{r:?}");
}
