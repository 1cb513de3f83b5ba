//! What a live command works with: the plan, the AWS clients, the account, the state, and the
//! outputs of the stacks deployed so far. Also the steps that produce a stack's inputs: the image,
//! the certificates and the rendered config.

use crate::aws::{self, cfn, Aws};
use crate::error::{Error, Result};
use crate::image;
use crate::params::{self, Inputs, Outputs};
use crate::pki::{Ca, Issued};
use crate::plan::Plan;
use crate::profile::{CertMode, Image};
use crate::render::{IdentityFacts, Rendered};
use crate::stacks::StackKind;
use crate::state::{Shared, State};

/// A live session against one account and Region.
pub struct Context<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// Clients.
    pub aws: Aws,
    /// Account id.
    pub account: String,
    /// Remembered state.
    pub state: State,
    /// The account's copy of the state as last read or written (`None`: the account has none).
    pub(super) shared: Option<Shared>,
    /// Outputs of existing stacks.
    pub outputs: Outputs,
    image_uri: Option<String>,
    rendered: Option<Rendered>,
}

impl<'a> Context<'a> {
    /// Connects and checks the credentials.
    pub async fn connect(plan: &'a Plan) -> Result<Self> {
        let p = &plan.profile;
        let aws = Aws::connect(&p.region, &p.bedrock_region).await;
        let who = aws::sts::identity(&aws).await?;
        println!("account {} as {} in {}", who.account, who.arn, p.region);
        let shared = aws::statestore::read(&aws, &p.deployment).await?;
        if let Some(account) = &shared {
            super::shared_state::adopt(plan, account)?;
        }
        let state = plan.state.load()?;
        Ok(Self {
            plan,
            aws,
            account: who.account,
            state,
            shared,
            outputs: Outputs::new(),
            image_uri: None,
            rendered: None,
        })
    }

    /// Reads the outputs of every existing stack of the plan.
    pub async fn read_outputs(&mut self) -> Result<()> {
        for kind in &self.plan.stacks {
            let name = self.plan.stack_name(*kind);
            if let Some(s) = cfn::describe(&self.aws, &name).await? {
                if s.status != "REVIEW_IN_PROGRESS" && !s.status.starts_with("DELETE") {
                    self.outputs.insert(*kind, s.outputs);
                }
            }
        }
        Ok(())
    }

    /// The identity facts: the profile's own, or the identity stack's outputs.
    pub fn identity(&self) -> Result<IdentityFacts> {
        match IdentityFacts::from_profile(&self.plan.profile) {
            Some(f) => Ok(f),
            None => {
                let out = self.outputs.get(&StackKind::Identity).ok_or_else(|| {
                    Error::failed("the identity stack is not deployed yet: deploy it first (deployer deploy identity)")
                })?;
                IdentityFacts::from_outputs(out).map_err(Error::failed)
            }
        }
    }

    /// Renders (once) the gateway config for the identity facts now known.
    pub fn rendered(&mut self) -> Result<Rendered> {
        if let Some(r) = &self.rendered {
            return Ok(r.clone());
        }
        let r = self.plan.render(&self.identity()?)?;
        println!(
            "  config: gateway.yaml {} (sha256 {})",
            r.budget_line(),
            &r.sha256[..12]
        );
        self.rendered = Some(r.clone());
        Ok(r)
    }

    /// The image URI, building and pushing it when the registry does not have its tag.
    pub async fn image(&mut self) -> Result<String> {
        if let Some(u) = &self.image_uri {
            return Ok(u.clone());
        }
        let p = &self.plan.profile;
        let uri = match &p.image {
            Image::Uri(u) => u.clone(),
            Image::Build { repository } => {
                let cwd = std::env::current_dir()
                    .map_err(|e| Error::failed(format!("no current directory: {e}")))?;
                let root = image::find_source_dir(&cwd).ok_or_else(|| {
                    Error::usage("GATEWAY_IMAGE is empty, so the image is built from source, but no repository checkout (Dockerfile, gateway/) is above the current directory; run from the checkout or set GATEWAY_IMAGE")
                })?;
                let platform = image::platform(&p.cpu_architecture);
                let bases = image::pinned_base_images(&root).await?;
                for b in &bases {
                    println!("  image: base {} = {}", b.arg, b.reference);
                }
                let tag = image::content_tag(&root, platform, &bases)?;
                let repo_uri = aws::ecr::ensure_repository(&self.aws, repository).await?;
                let uri = format!("{repo_uri}:{tag}");
                match aws::ecr::tag_digest(&self.aws, repository, &tag).await? {
                    Some(digest) => println!(
                        "  image: {uri} is already in ECR ({digest}); nothing to build or push"
                    ),
                    None => {
                        println!("  image: building {uri} for {platform}");
                        let password = aws::ecr::login_password(&self.aws).await?;
                        image::build_and_push(&root, &uri, platform, &bases, &password).await?;
                    }
                }
                uri
            }
        };
        self.image_uri = Some(uri.clone());
        Ok(uri)
    }

    /// The deployment's CA from the state.
    pub(super) fn ca(&self) -> Result<Ca> {
        let dep = &self.plan.profile.deployment;
        let st = &self.plan.state;
        match (st.read("pki/ca.pem"), st.read("pki/ca.key")) {
            (Some(c), Some(k)) => Ca::load(dep, &c, &k),
            _ => Err(Error::failed(format!(
                "the deployment has no private CA yet ({} is missing)",
                st.path("pki/ca.key").display()
            ))),
        }
    }

    /// Makes (once) a server certificate for `dns_name` and imports it into ACM; the ARN is kept
    /// in the state so later runs, on any machine, reuse it. `vpn` picks the VPN server's ARN,
    /// else the gateway's.
    async fn imported(&mut self, file: &str, dns_name: &str, vpn: bool) -> Result<String> {
        // The CA first: when another operator saved the state first, theirs (and their ARNs) win.
        let ca = self.ensure_ca().await?;
        let existing = if vpn {
            self.state.vpn_certificate_arn.clone()
        } else {
            self.state.gateway_certificate_arn.clone()
        };
        if let Some(arn) = &existing {
            if aws::acm::exists(&self.aws, arn).await
                && self.plan.state.read(&format!("pki/{file}.pem")).is_some()
            {
                return Ok(arn.clone());
            }
        }
        let cert: Issued = ca.server(dns_name, time::OffsetDateTime::now_utc())?;
        self.plan
            .state
            .write(&format!("pki/{file}.pem"), &cert.cert_pem)?;
        self.plan
            .state
            .write(&format!("pki/{file}.key"), &cert.key_pem)?;
        let arn = aws::acm::import(
            &self.aws,
            None,
            &cert,
            &ca.pem.cert_pem,
            &format!("{}-{file}", self.plan.profile.deployment),
        )
        .await?;
        println!("  pki: imported {dns_name} into ACM as {arn}");
        Ok(arn)
    }

    async fn certificates(&mut self, kind: StackKind) -> Result<(Option<String>, Option<String>)> {
        let p = &self.plan.profile;
        if kind == StackKind::Gateway && p.cert == CertMode::SelfSigned {
            let host = p.hostname.clone();
            let arn = self.imported("gateway", &host, false).await?;
            self.state.gateway_certificate_arn = Some(arn);
        }
        if kind == StackKind::Vpn && p.vpn.is_some() {
            let host = format!("vpn.{}", p.hostname);
            let arn = self.imported("vpn-server", &host, true).await?;
            self.state.vpn_certificate_arn = Some(arn);
        }
        self.save().await?;
        Ok((
            self.state.gateway_certificate_arn.clone(),
            self.state.vpn_certificate_arn.clone(),
        ))
    }

    /// The parameters of `kind`, producing what they need first.
    pub async fn parameters(&mut self, kind: StackKind) -> Result<Vec<(String, String)>> {
        let (image_uri, rendered) = if kind == StackKind::Gateway {
            (self.image().await?, self.rendered()?)
        } else {
            (
                String::new(),
                self.rendered.clone().unwrap_or_else(empty_rendered),
            )
        };
        let (gw, vpn) = self.certificates(kind).await?;
        let inputs = Inputs {
            outputs: &self.outputs,
            planning: false,
            image_uri,
            config: &rendered,
            gateway_certificate_arn: gw,
            vpn_certificate_arn: vpn,
        };
        params::parameters(kind, &self.plan.profile, &inputs)
    }

    /// Inline body, or an S3 URL for templates over the inline limit.
    pub async fn template_source(&self, kind: StackKind) -> Result<cfn::TemplateSource> {
        let t = self.plan.template(kind)?;
        if t.body.len() <= self.aws.inline_limit {
            return Ok(cfn::TemplateSource::Body(t.body.to_owned()));
        }
        let bucket = aws::s3::bucket_name(
            &self.plan.profile.deployment,
            &self.account,
            &self.aws.region,
        );
        aws::s3::ensure_bucket(&self.aws, &bucket).await?;
        let sha = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.body.as_bytes());
        let key = format!(
            "templates/{}-{}",
            &claude_gateway::config::hex(sha.as_ref())[..16],
            t.file
        );
        println!(
            "  {kind}: {} is {} bytes, over the inline limit; uploading to s3://{bucket}/{key}",
            t.file,
            t.body.len()
        );
        Ok(cfn::TemplateSource::Url(
            aws::s3::put_template(&self.aws, &bucket, &key, t.body).await?,
        ))
    }

    /// Deploys one stack and records its outputs.
    pub async fn deploy(&mut self, kind: StackKind) -> Result<cfn::Deployed> {
        self.deploy_with(kind, &[]).await
    }

    /// Deploys one stack with `extra` parameters besides the profile's (each replacing one of the
    /// same name), and records its outputs.
    pub async fn deploy_with(
        &mut self,
        kind: StackKind,
        extra: &[(&str, &str)],
    ) -> Result<cfn::Deployed> {
        let name = self.plan.stack_name(kind);
        let mut params = self.parameters(kind).await?;
        for (k, v) in extra {
            params.retain(|(p, _)| p != k);
            params.push(((*k).to_owned(), (*v).to_owned()));
        }
        let source = self.template_source(kind).await?;
        let result = cfn::deploy(
            &self.aws,
            kind.slug(),
            &name,
            &source,
            &params,
            &crate::stacks::tags(&self.plan.profile.deployment, kind),
            kind.needs_iam(),
        )
        .await?;
        let info = cfn::describe(&self.aws, &name)
            .await?
            .ok_or_else(|| Error::failed(format!("{name} vanished after deployment")))?;
        self.outputs.insert(kind, info.outputs.clone());
        self.state.outputs.insert(name, info.outputs);
        if kind == StackKind::Gateway {
            self.state.image_uri = self.image_uri.clone();
            self.state.config_sha256 = self.rendered.as_ref().map(|r| r.sha256.clone());
        }
        self.save().await?;
        Ok(result)
    }

    /// Writes one `.ovpn` per VPN client from the VPN stack's outputs; returns their paths.
    pub fn write_vpn_profiles(&self) -> Result<Vec<std::path::PathBuf>> {
        let (Some(vpn), Some(out)) = (&self.plan.profile.vpn, self.outputs.get(&StackKind::Vpn))
        else {
            return Ok(Vec::new());
        };
        let endpoint = out
            .get("ClientVpnEndpointId")
            .ok_or_else(|| Error::failed("the vpn stack has no output ClientVpnEndpointId"))?;
        let ca = self.ca()?;
        let st = &self.plan.state;
        let mut paths = Vec::new();
        for client in &vpn.clients {
            let (cert, key) = match (
                st.read(&format!("vpn/{client}.crt")),
                st.read(&format!("vpn/{client}.key")),
            ) {
                (Some(c), Some(k)) => (c, k),
                _ => {
                    let issued = ca.client(
                        &format!("{client}.{}", self.plan.profile.hostname),
                        time::OffsetDateTime::now_utc(),
                    )?;
                    st.write(&format!("vpn/{client}.crt"), &issued.cert_pem)?;
                    st.write(&format!("vpn/{client}.key"), &issued.key_pem)?;
                    (issued.cert_pem, issued.key_pem)
                }
            };
            let text = crate::ovpn::render(&crate::ovpn::OvpnInputs {
                endpoint_id: endpoint,
                region: &self.plan.profile.region,
                transport: &vpn.transport,
                ca_pem: &ca.pem.cert_pem,
                cert_pem: &cert,
                key_pem: &key,
            });
            paths.push(st.write(&format!("vpn/{client}.ovpn"), &text)?);
        }
        Ok(paths)
    }
}

fn empty_rendered() -> Rendered {
    Rendered {
        text: String::new(),
        sha256: String::new(),
        parts: Default::default(),
    }
}
