//! The plan: arguments and profile turned into everything a deployment needs to know before any
//! AWS call — the stacks, their names and templates, and the state directory.

use crate::cli::Common;
use crate::error::{Error, Result};
use crate::profile::{self, Profile};
use crate::render::{self, IdentityFacts, Rendered};
use crate::stacks::{self, StackKind, Template};
use crate::state::StateDir;

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The profile.
    pub profile: Profile,
    /// The stacks, in deployment order.
    pub stacks: Vec<StackKind>,
    /// Local state.
    pub state: StateDir,
}

impl Plan {
    /// Loads and validates the profile named on the command line.
    pub fn load(common: &Common) -> Result<Self> {
        let profile = profile::load(&common.profile)?;
        Ok(Self::from_profile(profile, common.state_dir.as_deref()))
    }

    /// A plan for an already validated profile.
    pub fn from_profile(profile: Profile, state_dir: Option<&std::path::Path>) -> Self {
        let stacks = stacks::stacks_of(&profile);
        let state = StateDir::new(state_dir, &profile.deployment);
        Self {
            profile,
            stacks,
            state,
        }
    }

    /// The stack name of `kind`.
    pub fn stack_name(&self, kind: StackKind) -> String {
        kind.stack_name(&self.profile.deployment)
    }

    /// The template of `kind`.
    pub fn template(&self, kind: StackKind) -> Result<Template> {
        stacks::template(kind, &self.profile).ok_or_else(|| {
            Error::usage(format!(
                "the profile {} has no {kind} stack",
                self.profile.source
            ))
        })
    }

    /// Renders the gateway config with the identity provider's facts; an invalid result is a
    /// configuration error (exit code 2).
    pub fn render(&self, facts: &IdentityFacts) -> Result<Rendered> {
        render::render(&self.profile, facts).map_err(Error::usage)
    }

    /// Identity facts for an offline plan: the profile's own, or realistic stand-ins.
    pub fn planned_identity(&self) -> IdentityFacts {
        IdentityFacts::from_profile(&self.profile)
            .unwrap_or_else(|| IdentityFacts::cognito_placeholder(&self.profile.region))
    }
}
