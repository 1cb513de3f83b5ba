//! ECS: how many gateway tasks run.

use super::{sdk_err, Aws};
use crate::error::Result;

/// Running and desired task counts and the task definition of a service.
#[derive(Debug, Clone)]
pub struct ServiceState {
    /// Tasks running.
    pub running: i32,
    /// Tasks wanted.
    pub desired: i32,
    /// Active deployments (more than one while rolling).
    pub deployments: usize,
    /// Current task definition ARN.
    pub task_definition: String,
}

/// Reads a service.
pub async fn service(aws: &Aws, cluster: &str, service: &str) -> Result<Option<ServiceState>> {
    let out = aws
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot describe ECS service {service}"), e))?;
    Ok(out.services().first().map(|s| ServiceState {
        running: s.running_count(),
        desired: s.desired_count(),
        deployments: s.deployments().len(),
        task_definition: s.task_definition().unwrap_or_default().to_owned(),
    }))
}
