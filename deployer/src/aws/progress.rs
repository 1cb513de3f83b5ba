//! Live progress while CloudFormation works: each resource event as it happens, with the time
//! since the operation started, and the first failure when it goes wrong.

use std::collections::HashSet;
use std::time::Instant;

use aws_sdk_cloudformation::types::StackEvent;

/// Formats a duration as `1m05s`.
pub fn elapsed(start: Instant) -> String {
    let s = start.elapsed().as_secs();
    format!("{:>2}m{:02}s", s / 60, s % 60)
}

/// Remembers which events were printed.
#[derive(Debug, Default)]
pub struct Tail {
    seen: HashSet<String>,
    /// The first resource failure seen (logical id, type, reason).
    pub first_failure: Option<(String, String, String)>,
}

impl Tail {
    /// Marks events as already seen (those before the operation started).
    pub fn skip(&mut self, events: &[StackEvent]) {
        for e in events {
            if let Some(id) = e.event_id() {
                self.seen.insert(id.to_owned());
            }
        }
    }

    /// Prints the new events (given newest first, as CloudFormation returns them) oldest first.
    pub fn show(&mut self, label: &str, start: Instant, events: &[StackEvent]) {
        let fresh: Vec<&StackEvent> = events
            .iter()
            .filter(|e| e.event_id().is_some_and(|id| !self.seen.contains(id)))
            .collect();
        for e in fresh.into_iter().rev() {
            if let Some(id) = e.event_id() {
                self.seen.insert(id.to_owned());
            }
            let status = e.resource_status().map(|s| s.as_str()).unwrap_or("?");
            let logical = e.logical_resource_id().unwrap_or("?");
            let kind = e.resource_type().unwrap_or("?");
            let reason = e.resource_status_reason().unwrap_or("");
            if status.ends_with("_FAILED") && self.first_failure.is_none() && !is_cascade(reason) {
                self.first_failure = Some((logical.to_owned(), kind.to_owned(), reason.to_owned()));
            }
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!("  {reason}")
            };
            println!(
                "  [{}] {label:<13} {status:<28} {kind:<40} {logical}{reason}",
                elapsed(start)
            );
        }
    }
}

/// Failures that only follow another one.
fn is_cascade(reason: &str) -> bool {
    reason.contains("Resource creation cancelled")
        || reason.contains("Resource update cancelled")
        || reason.contains("were not created")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::types::ResourceStatus;

    fn ev(id: &str, logical: &str, status: ResourceStatus, reason: &str) -> StackEvent {
        StackEvent::builder()
            .event_id(id)
            .logical_resource_id(logical)
            .resource_type("AWS::X::Y")
            .resource_status(status)
            .resource_status_reason(reason)
            .build()
    }

    #[test]
    fn first_real_failure_is_kept() {
        let mut tail = Tail::default();
        let start = Instant::now();
        tail.skip(&[ev(
            "0",
            "Old",
            ResourceStatus::CreateFailed,
            "before this run",
        )]);
        // Newest first, as CloudFormation returns them.
        let events = vec![
            ev(
                "3",
                "Other",
                ResourceStatus::CreateFailed,
                "Resource creation cancelled",
            ),
            ev(
                "2",
                "Certificate",
                ResourceStatus::CreateFailed,
                "DNS validation timed out",
            ),
            ev("1", "Vpc", ResourceStatus::CreateComplete, ""),
            ev("0", "Old", ResourceStatus::CreateFailed, "before this run"),
        ];
        tail.show("gateway", start, &events);
        assert_eq!(
            tail.first_failure,
            Some((
                "Certificate".into(),
                "AWS::X::Y".into(),
                "DNS validation timed out".into()
            ))
        );
    }
}
