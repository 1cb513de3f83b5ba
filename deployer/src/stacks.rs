//! The stacks a deployment is made of: their names, templates (built into the binary, so `plan`
//! works anywhere) and order.

use std::fmt;

use crate::profile::{Idp, Profile, Telemetry};

/// CloudFormation's limit for an inline template body; larger templates go through S3.
pub const INLINE_TEMPLATE_LIMIT: usize = 51_200;

/// One kind of stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StackKind {
    /// Cognito pool and client, or client only.
    Identity,
    /// The gateway.
    Gateway,
    /// ADOT collector.
    Collector,
    /// Dashboard, queries, alarms.
    Observability,
    /// Client VPN.
    Vpn,
}

/// Deployment order; destroy runs it backwards.
pub const ORDER: [StackKind; 5] = [
    StackKind::Identity,
    StackKind::Gateway,
    StackKind::Collector,
    StackKind::Observability,
    StackKind::Vpn,
];

impl StackKind {
    /// The short name used on the command line and in stack names.
    pub fn slug(self) -> &'static str {
        match self {
            StackKind::Identity => "identity",
            StackKind::Gateway => "gateway",
            StackKind::Collector => "collector",
            StackKind::Observability => "observability",
            StackKind::Vpn => "vpn",
        }
    }

    /// Parses a slug.
    pub fn from_slug(s: &str) -> Option<Self> {
        ORDER.into_iter().find(|k| k.slug() == s)
    }

    /// The stack name in deployment `deployment`.
    pub fn stack_name(self, deployment: &str) -> String {
        format!("{deployment}-{}", self.slug())
    }

    /// Whether the template creates IAM roles.
    pub fn needs_iam(self) -> bool {
        matches!(self, StackKind::Gateway | StackKind::Collector)
    }
}

impl fmt::Display for StackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.slug())
    }
}

/// A template: its file name in `cfn/` and its text.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// File name.
    pub file: &'static str,
    /// YAML text.
    pub body: &'static str,
}

const IDP_COGNITO: Template = Template {
    file: "idp-cognito.yaml",
    body: include_str!("../../cfn/idp-cognito.yaml"),
};
const IDP_CLIENT: Template = Template {
    file: "idp-cognito-client.yaml",
    body: include_str!("../../cfn/idp-cognito-client.yaml"),
};
const GATEWAY: Template = Template {
    file: "gateway.yaml",
    body: include_str!("../../cfn/gateway.yaml"),
};
const COLLECTOR: Template = Template {
    file: "collector.yaml",
    body: include_str!("../../cfn/collector.yaml"),
};
const OBSERVABILITY: Template = Template {
    file: "observability.yaml",
    body: include_str!("../../cfn/observability.yaml"),
};
const VPN: Template = Template {
    file: "client-vpn.yaml",
    body: include_str!("../../cfn/client-vpn.yaml"),
};

/// Every template the deployer carries.
pub const ALL_TEMPLATES: [Template; 6] = [
    IDP_COGNITO,
    IDP_CLIENT,
    GATEWAY,
    COLLECTOR,
    OBSERVABILITY,
    VPN,
];

/// The template of `kind` in this profile, or `None` when the profile has no such stack.
pub fn template(kind: StackKind, p: &Profile) -> Option<Template> {
    match kind {
        StackKind::Identity => match p.idp {
            Idp::NewCognito { .. } => Some(IDP_COGNITO),
            Idp::ExistingCognito { .. } => Some(IDP_CLIENT),
            Idp::Oidc(_) => None,
        },
        StackKind::Gateway => Some(GATEWAY),
        StackKind::Collector => {
            matches!(p.telemetry, Telemetry::Collector { .. }).then_some(COLLECTOR)
        }
        StackKind::Observability => Some(OBSERVABILITY),
        StackKind::Vpn => p.vpn.is_some().then_some(VPN),
    }
}

/// The stacks of this profile, in deployment order.
pub fn stacks_of(p: &Profile) -> Vec<StackKind> {
    ORDER
        .into_iter()
        .filter(|k| template(*k, p).is_some())
        .collect()
}

/// The tags every stack of `deployment` carries, which CloudFormation passes on to the resources
/// that take tags: for cost allocation by deployment and part, and to find a deployment's stacks.
pub fn tags(deployment: &str, kind: StackKind) -> Vec<(String, String)> {
    vec![
        (
            "claude-gateway:deployment".to_owned(),
            deployment.to_owned(),
        ),
        ("claude-gateway:stack".to_owned(), kind.slug().to_owned()),
    ]
}
