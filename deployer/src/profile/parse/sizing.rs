//! How many gateway tasks run and how large each is: limits read from the gateway template, and
//! the CPU and memory pairs Fargate offers, which no template parameter can express.

use crate::constraints;
use crate::profile::reader::Reader;

const TEMPLATE: &str = "gateway.yaml";

/// Task counts and sizes: (min tasks, max tasks, CPU units, memory MiB).
pub fn tasks(r: &mut Reader) -> (u32, u32, u32, u32) {
    let min_tasks = r.template_number("MIN_TASKS", TEMPLATE, "MinTasks");
    let max_tasks = r.template_number("MAX_TASKS", TEMPLATE, "MaxTasks");
    if max_tasks < min_tasks && !r.has_issue("MIN_TASKS") && !r.has_issue("MAX_TASKS") {
        r.err(
            "MAX_TASKS",
            format!("{max_tasks} is below MIN_TASKS ({min_tasks})"),
        );
    }
    let cpu = r.template_number("TASK_CPU", TEMPLATE, "TaskCpu");
    let memory = r.template_number("TASK_MEMORY", TEMPLATE, "TaskMemory");
    if !r.has_issue("TASK_CPU") && !r.has_issue("TASK_MEMORY") && !fargate_pair(cpu, memory) {
        let fits: Vec<String> = constraints::of(TEMPLATE, "TaskMemory")
            .map(|c| c.allowed_values.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.parse().is_ok_and(|m| fargate_pair(cpu, m)))
            .collect();
        r.err(
            "TASK_MEMORY",
            format!(
                "{memory} MiB is not a Fargate size for TASK_CPU={cpu}; with {cpu} CPU units use one of {}",
                fits.join(", ")
            ),
        );
    }
    (min_tasks, max_tasks, cpu, memory)
}

/// Whether Fargate runs a Linux task of `cpu` units with `memory` MiB.
pub fn fargate_pair(cpu: u32, memory: u32) -> bool {
    let stepped =
        |lo: u32, hi: u32, step: u32| (lo..=hi).contains(&memory) && memory.is_multiple_of(step);
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => stepped(1024, 4096, 1024),
        1024 => stepped(2048, 8192, 1024),
        2048 => stepped(4096, 16384, 1024),
        4096 => stepped(8192, 30720, 1024),
        8192 => stepped(16384, 61440, 4096),
        16384 => stepped(32768, 122_880, 8192),
        _ => false,
    }
}
