//! Which model turn asked for an AWS call. The gateway relays the model's answers as well as the
//! agent's AWS calls: when an answer's `tool_use` runs the AWS CLI or an SDK, the call it makes
//! arrives moments later, from the same user. This module keeps a short memory of each user's
//! recent turns that carried such tool inputs ([`capture`] reads them out of the answers), and
//! [`matcher`] names the turn a call most likely came from, so a recording carries that turn's
//! request id and prompt fingerprint. Calls of the gateway's own MCP tools
//! (`mcp__<server>__<tool>`) are remembered by tool and arguments, and a tool call names its
//! turn with [`Turns::find_tool`].
//!
//! The memory is this replica's alone, bounded in users, turns, inputs and bytes, and forgets a
//! turn once it is older than `aws_access.proxy.recording.turn_window_seconds`.

pub mod capture;
pub mod matcher;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

pub use capture::ToolUses;
pub use matcher::Called;

/// The most turns kept per user (the newest).
pub const MAX_TURNS_PER_USER: usize = 16;
/// The most users with turns kept; past it the user heard from longest ago is forgotten.
pub const MAX_USERS: usize = 4_096;
/// The most bytes of tool inputs, request ids and fingerprints kept in all; past it the users
/// heard from longest ago are forgotten.
pub const MAX_BYTES: usize = 16 << 20;

/// One assistant turn whose tool calls may have reached AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// When the turn's answer ended.
    pub at: OffsetDateTime,
    /// The gateway's request id of the model request.
    pub request_id: String,
    /// Its prompt fingerprint, when the gateway computes them.
    pub prompt_fingerprint: Option<String>,
    /// Its tool inputs that look like AWS calls: a shell tool's command, else the input's JSON,
    /// each cut to [`capture::MAX_INPUT_BYTES`]; and its calls of MCP tools, as
    /// [`capture::mcp_input`] writes them; at most [`capture::MAX_INPUTS`] in all.
    pub inputs: Vec<String>,
}

impl Turn {
    fn bytes(&self) -> usize {
        self.request_id.len()
            + self.prompt_fingerprint.as_ref().map_or(0, String::len)
            + self.inputs.iter().map(String::len).sum::<usize>()
    }
}

/// The recent turns of each user.
pub struct Turns {
    window: Duration,
    inner: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    users: HashMap<String, VecDeque<Turn>>,
    bytes: usize,
}

impl Memory {
    /// Drops `user`'s turns older than `since`.
    fn expire(&mut self, user: &str, since: OffsetDateTime) {
        let Some(turns) = self.users.get_mut(user) else {
            return;
        };
        while turns.front().is_some_and(|t| t.at < since) {
            if let Some(t) = turns.pop_front() {
                self.bytes = self.bytes.saturating_sub(t.bytes());
            }
        }
        if turns.is_empty() {
            self.users.remove(user);
        }
    }

    /// Forgets the user heard from longest ago other than `keep`; false when there is none.
    fn forget_stalest(&mut self, keep: &str) -> bool {
        let stalest = self
            .users
            .iter()
            .filter(|(u, _)| u.as_str() != keep)
            .min_by_key(|(_, t)| t.back().map(|t| t.at))
            .map(|(u, _)| u.clone());
        let Some(user) = stalest else {
            return false;
        };
        if let Some(turns) = self.users.remove(&user) {
            self.bytes = self
                .bytes
                .saturating_sub(turns.iter().map(Turn::bytes).sum());
        }
        true
    }
}

/// Counts only: the inputs are commands and code, which may hold secrets.
impl std::fmt::Debug for Turns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        write!(f, "Turns({} users, {} bytes)", m.users.len(), m.bytes)
    }
}

impl Turns {
    /// A memory that keeps turns for `window_seconds`.
    pub fn new(window_seconds: u32) -> Self {
        Self {
            window: Duration::seconds(i64::from(window_seconds)),
            inner: Mutex::new(Memory::default()),
        }
    }

    /// Remembers `turn` of `user` (nothing when it carried no AWS-looking tool input).
    pub fn remember(&self, user: &str, turn: Turn) {
        if turn.inputs.is_empty() {
            return;
        }
        let since = turn.at - self.window;
        let size = turn.bytes();
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.expire(user, since);
        if !m.users.contains_key(user) {
            while m.users.len() >= MAX_USERS && m.forget_stalest(user) {}
        }
        let turns = m.users.entry(user.to_owned()).or_default();
        let mut freed = 0;
        while turns.len() >= MAX_TURNS_PER_USER {
            freed += turns.pop_front().map_or(0, |t| t.bytes());
        }
        turns.push_back(turn);
        m.bytes = m.bytes.saturating_sub(freed) + size;
        while m.bytes > MAX_BYTES && m.forget_stalest(user) {}
        if m.bytes > MAX_BYTES {
            // One user alone is over the budget: keep only their newest turn.
            if let Some(turns) = m.users.get_mut(user) {
                let keep = turns.len().saturating_sub(1);
                let dropped: usize = turns.drain(..keep).map(|t| t.bytes()).sum();
                m.bytes = m.bytes.saturating_sub(dropped);
            }
        }
    }

    /// The turn of `user` that most likely made `call` at `now`: the newest within the window
    /// whose tool input names it. Returns its request id and prompt fingerprint.
    pub fn find(
        &self,
        user: &str,
        call: &Called<'_>,
        now: OffsetDateTime,
    ) -> Option<(String, Option<String>)> {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let turns = m.users.get(user)?;
        matcher::best(turns.iter().rev(), call, now, self.window)
            .map(|t| (t.request_id.clone(), t.prompt_fingerprint.clone()))
    }

    /// The turn of `user` that asked for MCP tool `tool` with `arguments` (equal as JSON
    /// values) at `now`: the newest within the window. Returns its request id and prompt
    /// fingerprint.
    pub fn find_tool(
        &self,
        user: &str,
        tool: &str,
        arguments: &serde_json::Value,
        now: OffsetDateTime,
    ) -> Option<(String, Option<String>)> {
        let wanted = capture::mcp_input(tool, arguments);
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let turns = m.users.get(user)?;
        turns
            .iter()
            .rev()
            .filter(|t| t.at <= now && now - t.at <= self.window)
            .find(|t| t.inputs.contains(&wanted))
            .map(|t| (t.request_id.clone(), t.prompt_fingerprint.clone()))
    }

    /// Users and bytes held (for tests of the bounds).
    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize) {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let turns = m.users.values().map(VecDeque::len).sum();
        (m.users.len(), turns, m.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn turn(at: OffsetDateTime, id: &str, command: &str) -> Turn {
        Turn {
            at,
            request_id: id.into(),
            prompt_fingerprint: Some(format!("fp-{id}")),
            inputs: vec![command.into()],
        }
    }

    const LS: Called<'static> = Called {
        service: "s3",
        operation: Some("ListObjectsV2"),
        bucket: Some("payments-reports"),
    };

    #[test]
    fn a_users_call_finds_their_turn_and_no_one_elses() {
        let turns = Turns::new(120);
        turns.remember(
            "ana",
            turn(t0(), "req_a", "aws s3 ls s3://payments-reports/"),
        );
        turns.remember(
            "bob",
            turn(t0(), "req_b", "aws s3 ls s3://payments-reports/"),
        );
        let now = t0() + Duration::seconds(3);
        assert_eq!(
            turns.find("ana", &LS, now),
            Some(("req_a".into(), Some("fp-req_a".into())))
        );
        assert_eq!(
            turns.find("bob", &LS, now).map(|t| t.0),
            Some("req_b".into())
        );
        assert_eq!(turns.find("eve", &LS, now), None);
        // Past the window, forgotten.
        assert_eq!(turns.find("ana", &LS, t0() + Duration::seconds(121)), None);
    }

    #[test]
    fn a_tool_call_finds_the_turn_that_asked_for_it_with_equal_arguments() {
        let turns = Turns::new(120);
        let args = serde_json::json!({"log_group": "/app", "limit": 10});
        let mut t = turn(t0(), "req_a", "x");
        t.inputs = vec![capture::mcp_input("logs_tail", &args)];
        turns.remember("ana", t);
        turns.remember(
            "ana",
            turn(t0() + Duration::seconds(1), "req_b", "aws s3 ls"),
        );
        let now = t0() + Duration::seconds(2);
        let same = serde_json::json!({"limit": 10, "log_group": "/app"});
        assert_eq!(
            turns.find_tool("ana", "logs_tail", &same, now),
            Some(("req_a".into(), Some("fp-req_a".into())))
        );
        let other = serde_json::json!({"log_group": "/app", "limit": 11});
        assert_eq!(turns.find_tool("ana", "logs_tail", &other, now), None);
        assert_eq!(turns.find_tool("ana", "logs_search", &args, now), None);
        assert_eq!(turns.find_tool("bob", "logs_tail", &args, now), None);
        assert_eq!(
            turns.find_tool("ana", "logs_tail", &args, t0() + Duration::seconds(121)),
            None
        );
        // The proxy's matching never takes an MCP call for a command.
        let call = Called {
            service: "logs",
            operation: Some("GetLogEvents"),
            bucket: None,
        };
        assert_eq!(turns.find("ana", &call, now), None);
    }

    #[test]
    fn a_turn_without_aws_inputs_is_not_kept() {
        let turns = Turns::new(120);
        let mut t = turn(t0(), "req_a", "x");
        t.inputs.clear();
        turns.remember("ana", t);
        assert_eq!(turns.held(), (0, 0, 0));
    }

    /// Checks the bounds, and that the bytes counted are the bytes held.
    fn bounded(turns: &Turns) {
        let m = turns.inner.lock().unwrap_or_else(|e| e.into_inner());
        let counted: usize = m.users.values().flatten().map(Turn::bytes).sum();
        assert_eq!(counted, m.bytes);
        assert!(m.users.len() <= MAX_USERS, "{} users", m.users.len());
        assert!(m.bytes <= MAX_BYTES, "{} bytes", m.bytes);
        assert!(m
            .users
            .values()
            .all(|t| !t.is_empty() && t.len() <= MAX_TURNS_PER_USER));
    }

    #[test]
    fn the_memory_stays_bounded_in_bytes() {
        let turns = Turns::new(3600);
        let big = format!("aws s3 ls {}", "x".repeat(capture::MAX_INPUT_BYTES - 10));
        let mut at = t0();
        // More users than the bytes allow, each with more turns than kept, each turn as large
        // as allowed.
        for u in 0..200 {
            for n in 0..(MAX_TURNS_PER_USER + 2) {
                at += Duration::milliseconds(1);
                turns.remember(
                    &format!("user-{u}"),
                    Turn {
                        at,
                        request_id: format!("req-{u}-{n}"),
                        prompt_fingerprint: None,
                        inputs: vec![big.clone(); capture::MAX_INPUTS],
                    },
                );
            }
            bounded(&turns);
        }
        let (users, _, bytes) = turns.held();
        assert!(bytes > MAX_BYTES / 2, "the budget is used: {bytes}");
        assert!(users < 200, "the stalest users were forgotten");
        // The newest user's turns are kept, the newest of them last.
        let newest = Called { bucket: None, ..LS };
        assert_eq!(
            turns.find("user-199", &newest, at).map(|t| t.0),
            Some(format!("req-199-{}", MAX_TURNS_PER_USER + 1))
        );
        assert_eq!(turns.find("user-0", &newest, at), None);
    }

    #[test]
    fn the_memory_stays_bounded_in_users() {
        let turns = Turns::new(3600);
        let mut at = t0();
        for u in 0..(MAX_USERS + 20) {
            at += Duration::milliseconds(1);
            turns.remember(
                &format!("user-{u}"),
                turn(at, &format!("req-{u}"), "aws s3 ls"),
            );
        }
        bounded(&turns);
        assert_eq!(turns.held().0, MAX_USERS);
        let call = Called { bucket: None, ..LS };
        assert_eq!(
            turns.find("user-0", &call, at),
            None,
            "the stalest is forgotten"
        );
        let last = format!("user-{}", MAX_USERS + 19);
        assert!(turns.find(&last, &call, at).is_some());
    }

    #[test]
    fn the_memory_never_shows_its_inputs() {
        let turns = Turns::new(120);
        turns.remember(
            "ana",
            turn(t0(), "req_a", "aws s3 cp s3://b/k - --sse-c-key s3cr3tKey"),
        );
        let shown = format!("{turns:?}");
        assert_eq!(shown, format!("Turns(1 users, {} bytes)", turns.held().2));
        assert!(!shown.contains("s3cr3t"));
    }

    #[test]
    fn old_turns_are_dropped_as_new_ones_come() {
        let turns = Turns::new(10);
        turns.remember("ana", turn(t0(), "old", "aws s3 ls"));
        turns.remember(
            "ana",
            turn(t0() + Duration::seconds(11), "new", "aws s3 ls"),
        );
        assert_eq!(turns.held().1, 1);
    }
}
