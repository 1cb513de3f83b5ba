//! The real client (2.1.328) under a group policy from our gateway: it fetches the policy at
//! start, its model picker offers the policy's list, it leaves the denied tool out of its
//! requests, and a request for a model outside the list gets the gateway's 400 message.

use std::time::Duration;

use serde_json::Value;

use crate::support::claude::Claude;
use crate::support::idp::TestUser;
use crate::support::runtime;
use crate::support::stack::{sign_in, stack};

const MANAGED: &str = "managed:
  enforce_tool_denials: true
  policies:
    - match: {groups: [contractors]}
      cli:
        availableModels: [claude-haiku-4-5]
        permissions: {deny: [WebFetch]}
    - match: {}
      cli:
        availableModels: [claude-sonnet-4-5, claude-haiku-4-5]
";

/// Names of the tools a recorded upstream request offered.
fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_real_client_takes_its_group_policy() {
    let rt = runtime();
    let users = [TestUser::new("carol").groups(&["contractors"])];
    let s = stack(&rt, &users, "", MANAGED);
    let mut claude = Claude::new(&s.base);
    let creds = sign_in(&rt, &s, &mut claude, "carol");

    // The client fetched the contractors' policy when it started.
    let served = s.gw.audit("managed.serve");
    assert!(!served.is_empty(), "{}", s.gw.stdout());
    assert!(
        served
            .iter()
            .all(|e| e["policy_index"] == 0 && e["sub"] == "carol"),
        "{served:?}"
    );
    assert_eq!(served[0]["result"], "served");

    // The client's model picker offers the policy's list and nothing else.
    claude.command("/model");
    let picker = claude.wait_screen("the model picker", Duration::from_secs(30), |s| {
        s.contains("Select model") && s.contains("(claude-")
    });
    let offered: Vec<&str> = picker
        .split("(claude-")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .collect();
    assert_eq!(offered, ["haiku-4-5"], "{picker}");
    claude.keys(&["Escape"]);

    // The gateway offers only the policy's models.
    let jwt = creds["enterpriseGateway"]["jwt"].as_str().unwrap();
    let models: Value = rt.block_on(async {
        crate::support::client()
            .get(format!("{}/v1/models", s.base))
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["claude-haiku-4-5"], "{models}");

    // A model outside the list: the client says the policy restricts it, falls back to its
    // default model, which the policy does not allow either, and shows the gateway's 400.
    let out = claude.print_with(
        &["--model", "claude-sonnet-4-5", "Say hi"],
        Duration::from_secs(90),
    );
    assert!(
        out.stderr
            .contains("\"claude-sonnet-4-5\" is restricted by your organization's settings"),
        "{out:?}"
    );
    assert_ne!(out.status, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("400")
            && out
                .stdout
                .contains("is not in your role's availableModels allowlist"),
        "{out:?}"
    );
    let blocked = s.gw.audit("policy.blocked");
    assert!(!blocked.is_empty(), "{}", s.gw.stdout());
    assert!(
        blocked
            .iter()
            .all(|e| e["reason"] == "model_not_allowed" && e["sub"] == "carol"),
        "{blocked:?}"
    );
    assert!(
        s.bedrock.requests().is_empty(),
        "nothing outside the allowlist reached Bedrock"
    );

    // The allowed model works, and the client left the denied tool out of what it offered: the
    // gateway, which would strip it too, never had to.
    let out = claude.print_with(
        &["--model", "claude-haiku-4-5", "Say hi"],
        Duration::from_secs(90),
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("Hello from the Bedrock double."),
        "{out:?}"
    );
    let sent = s.bedrock.requests();
    assert!(!sent.is_empty());
    for r in &sent {
        assert!(r.model_id.contains("claude-haiku-4-5"), "{}", r.model_id);
        let tools = tool_names(&r.body);
        assert!(tools.iter().any(|t| t == "Read"), "{tools:?}");
        assert!(!tools.iter().any(|t| t == "WebFetch"), "{tools:?}");
    }
    assert!(
        s.gw.audit("policy.tool_denied").is_empty(),
        "the client offered the denied tool: {:?}",
        s.gw.audit("policy.tool_denied")
    );
}
