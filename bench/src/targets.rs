//! The performance targets the benchmark judges its own figures against, printed last as one
//! table: what was aimed at, what this run measured, and whether it was met.

/// One target and this run's figure for it.
pub struct Check {
    /// What is aimed at, with its bound.
    pub target: String,
    /// This run's figure.
    pub measured: String,
    pub met: bool,
}

impl Check {
    /// A target met when `measured <= bound`.
    pub fn at_most(target: impl Into<String>, measured: f64, bound: f64, unit: &str) -> Check {
        Check {
            target: target.into(),
            measured: format!("{measured:.3}{unit}"),
            met: measured <= bound,
        }
    }

    /// A target met when `measured >= bound`.
    pub fn at_least(target: impl Into<String>, measured: f64, bound: f64, unit: &str) -> Check {
        Check {
            target: target.into(),
            measured: format!("{measured:.3}{unit}"),
            met: measured >= bound,
        }
    }
}

/// Prints the table.
pub fn print(checks: &[Check]) {
    let met = checks.iter().filter(|c| c.met).count();
    println!(
        "\n### Targets ({met} of {} met in this run)\n",
        checks.len()
    );
    println!("| target | measured | |\n|---|---|---|");
    for c in checks {
        println!(
            "| {} | {} | {} |",
            c.target,
            c.measured,
            if c.met { "met" } else { "not met" }
        );
    }
}
