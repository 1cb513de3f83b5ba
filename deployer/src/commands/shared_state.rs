//! The deployment's state between this machine and the account: the account's copy (a Secrets
//! Manager secret found by the deployment's name) is read when a command connects and laid over
//! the state directory; every save sends the directory's state back. A CA is made only when the
//! account has none, and the first save creates the account's copy once: an operator who loses
//! that race uses the winner's.

use super::context::Context;
use crate::aws::{self, cfn};
use crate::error::{Error, Result};
use crate::pki::Ca;
use crate::plan::Plan;
use crate::profile::CertMode;
use crate::stacks::StackKind;
use crate::state::Shared;
use claude_gateway::config::Env;

/// The variable that lets the deployer make a new CA for a deployment whose stacks use one it
/// cannot find.
pub const NEW_CA_VAR: &str = "DEPLOYER_NEW_CA";

impl Context<'_> {
    /// Refuses to make a CA when the deployed stacks already use a certificate another CA signed
    /// (a deployment whose state is still only on another machine): a new CA would break every
    /// developer's trust and every `.ovpn`. `DEPLOYER_NEW_CA=1` makes one anyway.
    async fn no_ca_elsewhere(&self) -> Result<()> {
        if claude_gateway::config::ProcessEnv
            .var(NEW_CA_VAR)
            .is_some_and(|v| v == "1")
        {
            return Ok(());
        }
        let mut used = Vec::new();
        if self.plan.profile.cert == CertMode::SelfSigned {
            used.push((StackKind::Gateway, "CertificateArn"));
        }
        used.push((StackKind::Vpn, "ServerCertificateArn"));
        for (kind, param) in used {
            let name = self.plan.stack_name(kind);
            let Some(s) = cfn::describe(&self.aws, &name).await? else {
                continue;
            };
            if let Some(arn) = s.parameters.get(param).filter(|v| !v.is_empty()) {
                return Err(Error::failed(format!(
                    "{name} uses certificate {arn}, signed by a CA this machine does not have and the account does not keep (secret {}): run deploy-all once from the machine or --state-dir that has it, which moves it into the account. If it is lost, {NEW_CA_VAR}=1 makes a new CA (every developer must trust it again and get a new .ovpn)",
                    aws::statestore::name(&self.plan.profile.deployment)
                )));
            }
        }
        Ok(())
    }

    /// Whether the account holds the deployment's state.
    pub fn state_in_account(&self) -> bool {
        self.shared.is_some()
    }

    /// Saves the state in the directory and, when it changed, in the account: the first save
    /// creates the account's copy, and when another operator created it first, theirs is laid
    /// over this machine's (theirs wins where both have a file or value; the operator is told).
    /// Returns `false` then.
    pub async fn save(&mut self) -> Result<bool> {
        let st = &self.plan.state;
        st.save(&self.state)?;
        let mine = st.snapshot()?;
        let dep = &self.plan.profile.deployment;
        let secret = aws::statestore::name(dep);
        match &self.shared {
            Some(known) if *known == mine => return Ok(true),
            Some(_) => aws::statestore::write(&self.aws, dep, &mine).await?,
            None if mine.is_empty() => return Ok(true),
            None => {
                if !aws::statestore::create(&self.aws, dep, &mine).await? {
                    let theirs = aws::statestore::read(&self.aws, dep)
                        .await?
                        .ok_or_else(|| {
                            Error::failed(format!("secret {secret} exists but cannot be read"))
                        })?;
                    println!("  state: another operator saved this deployment's state first (secret {secret}); using theirs");
                    adopt(self.plan, &theirs)?;
                    self.state = st.load()?;
                    self.shared = Some(theirs);
                    return Ok(false);
                }
                println!("  state: kept in the account as Secrets Manager secret {secret} (this machine's copy: {})", st.root().display());
            }
        }
        self.shared = Some(mine);
        Ok(true)
    }

    /// The deployment's CA, made (from now) and saved in the account when there is none yet.
    /// When another operator saved one first, theirs is used.
    pub(super) async fn ensure_ca(&mut self) -> Result<Ca> {
        if let Ok(ca) = self.ca() {
            return Ok(ca);
        }
        self.no_ca_elsewhere().await?;
        let dep = &self.plan.profile.deployment;
        let st = &self.plan.state;
        let ca = Ca::create(dep, time::OffsetDateTime::now_utc())?;
        st.write("pki/ca.pem", &ca.pem.cert_pem)?;
        st.write("pki/ca.key", &ca.pem.key_pem)?;
        if self.save().await? {
            println!("  pki: created a private CA");
            Ok(ca)
        } else {
            self.ca()
        }
    }
}

/// Makes the state directory hold the account's copy (over what only this machine has, which the
/// next save sends to the account), telling the operator what of theirs it replaced: the
/// account's copy is the deployment's; a directory is one machine's.
pub(super) fn adopt(plan: &Plan, account: &Shared) -> Result<()> {
    let st = &plan.state;
    let local = st.snapshot()?;
    let merged = local.under(account);
    let differs = local.differences(&merged);
    if differs.is_empty() {
        return Ok(());
    }
    if !local.is_empty() {
        println!(
            "state: {} differs from the account's copy (secret {}) in {}; using the account's",
            st.root().display(),
            aws::statestore::name(&plan.profile.deployment),
            differs.join(", ")
        );
    }
    st.apply(&merged)
}
