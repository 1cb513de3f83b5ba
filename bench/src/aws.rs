//! The AWS proxy's latency: the same JSON-protocol call signed with SigV4 and sent straight to
//! the stand-in, or sent to the gateway's `/aws/` signed with a gateway-only credential (which
//! the gateway checks, decides on, re-signs with the just-in-time credential, sends on, masks
//! and records).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::fake_aws::{DESCRIBE_TARGET, SECRET_PASSWORD, SECRET_TARGET};
use crate::stats::Summary;

/// The region of the benchmark's project.
const REGION: &str = "eu-west-1";
/// The benchmark's project.
pub const PROJECT: &str = "bench";
/// The group its member is in.
const GROUP: &str = "bench-devs";

/// The `aws_access` section of the gateway under test: STS and every service at the stand-in,
/// limits far above the benchmark's calls, and no read held for a person.
pub fn config(fake: &str) -> String {
    format!(
        "aws_access:
  sts_endpoint_url: {fake}
  proxy:
    upstream_url: {fake}
    limits: {{window_seconds: 86400, read: 1000000, list: 1000000, write: 1000000}}
    risk: {{writes: false, prod: false, actions: [], wildcard_names: false}}
  projects:
    - name: {PROJECT}
      role_arn: arn:aws:iam::123456789012:role/agent-bench
      regions: [{REGION}]
      tag: {{key: project, value: {PROJECT}}}
      environment: nonprod
      read: ['logs:Describe*', 'secretsmanager:GetSecretValue']
  members:
    - {{project: {PROJECT}, groups: [{GROUP}], level: read}}
"
    )
}

/// The two calls measured.
#[derive(Clone, Copy)]
pub enum Call {
    /// `logs:DescribeLogGroups`: a 1.7 KB answer with nothing to mask.
    Describe,
    /// `secretsmanager:GetSecretValue`: a 0.8 KB answer whose secret is masked.
    Secret,
}

impl Call {
    /// How the call is named in the table.
    pub fn label(self) -> &'static str {
        match self {
            Call::Describe => "logs DescribeLogGroups (1.7 KB, nothing to mask)",
            Call::Secret => "secretsmanager GetSecretValue (0.8 KB, secret masked)",
        }
    }

    fn service(self) -> &'static str {
        match self {
            Call::Describe => "logs",
            Call::Secret => "secretsmanager",
        }
    }

    fn target(self) -> &'static str {
        match self {
            Call::Describe => DESCRIBE_TARGET,
            Call::Secret => SECRET_TARGET,
        }
    }

    fn body(self) -> &'static str {
        match self {
            Call::Describe => r#"{"limit":50}"#,
            Call::Secret => r#"{"SecretId":"payments/db"}"#,
        }
    }
}

/// Where calls go and the credential they are signed with.
pub struct Caller {
    client: reqwest::Client,
    url: String,
    key: aws_credential_types::Credentials,
}

impl Caller {
    /// Straight to the stand-in, signed with a made-up key.
    pub fn direct(fake: &str) -> Caller {
        Caller {
            client: client(),
            url: format!("{fake}/"),
            key: aws_credential_types::Credentials::new(
                "AKIDBENCHDIRECT00001",
                "bench-direct-secret-key-0123456789abcdef",
                None,
                None,
                "bench",
            ),
        }
    }

    /// Through the gateway at `gw`, with a gateway-only credential asked for as a member of the
    /// project.
    pub async fn gateway(gw: &str) -> Result<Caller, String> {
        let client = client();
        let bearer = crate::load::token_in("bench-aws", &[GROUP]);
        let res = client
            .get(format!(
                "{gw}/v1/aws/credentials?project={PROJECT}&level=read&via=gateway"
            ))
            .bearer_auth(bearer)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let v: serde_json::Value = res.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("gateway-only credential: status {status}: {v}"));
        }
        let field = |name: &str| {
            v[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("gateway-only credential without {name}"))
        };
        Ok(Caller {
            client,
            url: format!("{gw}/aws/"),
            key: aws_credential_types::Credentials::new(
                field("AccessKeyId")?,
                field("SecretAccessKey")?,
                Some(field("Token")?),
                None,
                "bench",
            ),
        })
    }

    /// `call`, signed now (signing is not timed: both paths pay it alike).
    fn request(&self, call: Call) -> Result<reqwest::Request, String> {
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", call.target()),
        ];
        let identity = self.key.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name(call.service())
            .time(SystemTime::from(time::OffsetDateTime::now_utc()))
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(call.body().as_bytes()),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let mut b = self.client.post(&self.url);
        for (k, v) in headers.iter().copied().chain(instructions.headers()) {
            b = b.header(k, v);
        }
        b.body(call.body()).build().map_err(|e| e.to_string())
    }

    /// One call, timed from sending to the last byte of the answer; the answer must be a
    /// success, and a secret must not come back.
    async fn once(&self, call: Call) -> Result<Duration, String> {
        let req = self.request(call)?;
        let started = Instant::now();
        let res = self.client.execute(req).await.map_err(|e| e.to_string())?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        let took = started.elapsed();
        if !status.is_success() {
            return Err(format!(
                "{}: status {status}: {}",
                call.label(),
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(took)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .build()
        .unwrap_or_default()
}

/// Checks that `caller` gets `call` answered, and says whether the answer held the secret.
pub async fn answer_holds_secret(caller: &Caller, call: Call) -> Result<bool, String> {
    let req = caller.request(call)?;
    let res = caller
        .client
        .execute(req)
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{}: status {status}: {body}", call.label()));
    }
    Ok(body.contains(SECRET_PASSWORD))
}

/// `calls` calls spread over `concurrency` workers, each sending its share back to back.
pub async fn run(
    caller: &Arc<Caller>,
    call: Call,
    concurrency: usize,
    calls: usize,
) -> Result<Summary, String> {
    let per_worker = calls.div_ceil(concurrency.max(1)).max(1);
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let caller = caller.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                out.push(caller.once(call).await?);
            }
            Ok::<_, String>(out)
        }));
    }
    let mut all = Vec::with_capacity(per_worker * concurrency);
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(Summary::of(&all))
}
