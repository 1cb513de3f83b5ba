//! What to do when a stack is stuck in a state the deployer cannot move it out of by itself
//! (`UPDATE_ROLLBACK_FAILED`, `DELETE_FAILED`), and when following a stack took longer than the
//! deployer waits: what the state means and the exact commands that move it on.

use std::time::Duration;

/// Guidance for a stack left in `status`, with the resources CloudFormation reports as failed;
/// `None` for states that need none.
pub fn guidance(name: &str, region: &str, status: &str, failed: &[String]) -> Option<String> {
    let listed = if failed.is_empty() {
        "<LogicalId> ...".to_owned()
    } else {
        failed.join(" ")
    };
    let which = if failed.is_empty() {
        String::new()
    } else {
        format!(" ({})", failed.join(", "))
    };
    match status {
        "UPDATE_ROLLBACK_FAILED" => Some(format!(
            "{name} is UPDATE_ROLLBACK_FAILED: an update failed and CloudFormation could not roll \
             it back either, usually because a resource{which} was changed or deleted outside the \
             stack or a dependency it needs is gone. The stack accepts no update until the rollback \
             finishes. Fix the cause the events above name, then continue the rollback:\n\
             \x20   aws cloudformation continue-update-rollback --region {region} --stack-name {name}\n\
             If a resource cannot be brought back, let the rollback skip it (CloudFormation then \
             treats it as rolled back; check it matches the template afterwards):\n\
             \x20   aws cloudformation continue-update-rollback --region {region} --stack-name {name} --resources-to-skip {listed}\n\
             Wait for UPDATE_ROLLBACK_COMPLETE (deployer status), then deploy again."
        )),
        "DELETE_FAILED" => Some(format!(
            "{name} is DELETE_FAILED: some resources{which} could not be deleted (often network \
             interfaces still attached from another stack, a bucket that is not empty, or \
             deletion protection on the database). Remove the cause the events above name and \
             delete again (deployer destroy), or delete the stack and keep those resources:\n\
             \x20   aws cloudformation delete-stack --region {region} --stack-name {name} --retain-resources {listed}\n\
             Retained resources stay in the account, and keep costing, until you delete them \
             yourself."
        )),
        _ => None,
    }
}

/// The error when CloudFormation is still working on `name` (in `status`) after `waited`: the
/// deployer stops waiting, CloudFormation carries on.
pub fn still_working(name: &str, region: &str, status: &str, waited: Duration) -> String {
    let minutes = waited.as_secs() / 60;
    let next = match status {
        "UPDATE_IN_PROGRESS" | "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS" => format!(
            "to stop the update and roll it back: aws cloudformation cancel-update-stack --region {region} --stack-name {name}"
        ),
        "CREATE_IN_PROGRESS" => format!(
            "to give up on the creation: aws cloudformation delete-stack --region {region} --stack-name {name}"
        ),
        _ => "let it finish".to_owned(),
    };
    format!(
        "stopped following {name} after {minutes} minute(s): CloudFormation is still working on it \
         ({status}) and carries on without the deployer. Watch it with `deployer status` or \
         `aws cloudformation describe-stack-events --region {region} --stack-name {name}`; {next}. \
         Run the deployer again once it has finished. {var} sets how long the deployer follows a \
         stack (default {default} minutes).",
        var = super::FOLLOW_TIMEOUT_VAR,
        default = super::FOLLOW_TIMEOUT_DEFAULT_MINUTES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_rollback_gets_the_commands_that_continue_it() {
        let g = guidance(
            "acme-gateway",
            "eu-west-1",
            "UPDATE_ROLLBACK_FAILED",
            &["Service".into(), "TaskDefinition".into()],
        )
        .unwrap();
        assert!(g.contains(
            "\n    aws cloudformation continue-update-rollback --region eu-west-1 --stack-name acme-gateway\n"
        ), "{g}");
        assert!(g.contains(
            "aws cloudformation continue-update-rollback --region eu-west-1 --stack-name acme-gateway --resources-to-skip Service TaskDefinition\n"
        ), "{g}");
        assert!(g.contains("(Service, TaskDefinition)"), "{g}");
    }

    #[test]
    fn a_failed_delete_gets_the_command_that_retains_what_failed() {
        let g = guidance(
            "acme-vpn",
            "us-east-1",
            "DELETE_FAILED",
            &["Endpoint".into()],
        )
        .unwrap();
        assert!(g.contains(
            "aws cloudformation delete-stack --region us-east-1 --stack-name acme-vpn --retain-resources Endpoint\n"
        ), "{g}");
        let g = guidance("acme-vpn", "us-east-1", "DELETE_FAILED", &[]).unwrap();
        assert!(g.contains("--retain-resources <LogicalId> ..."), "{g}");
        assert!(guidance("acme-vpn", "us-east-1", "UPDATE_ROLLBACK_COMPLETE", &[]).is_none());
    }

    #[test]
    fn giving_up_says_what_still_runs_and_how_to_stop_it() {
        let e = still_working(
            "acme-gateway",
            "us-east-1",
            "UPDATE_IN_PROGRESS",
            Duration::from_secs(7200),
        );
        assert!(e.contains("after 120 minute(s)"), "{e}");
        assert!(e.contains(
            "aws cloudformation cancel-update-stack --region us-east-1 --stack-name acme-gateway"
        ), "{e}");
        assert!(e.contains("DEPLOYER_FOLLOW_TIMEOUT_MINUTES"), "{e}");
    }
}
