//! ACM: importing the certificates the deployer made.

use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::Tag;

use super::{sdk_err, Aws};
use crate::error::Result;
use crate::pki::Issued;

/// Imports `cert` (signed by `chain_pem`) into ACM, re-importing over `existing` when given so the
/// ARN stays the same. Returns the ARN.
pub async fn import(
    aws: &Aws,
    existing: Option<&str>,
    cert: &Issued,
    chain_pem: &str,
    name: &str,
) -> Result<String> {
    let mut req = aws
        .acm
        .import_certificate()
        .certificate(Blob::new(cert.cert_pem.as_bytes()))
        .private_key(Blob::new(cert.key_pem.as_bytes()))
        .certificate_chain(Blob::new(chain_pem.as_bytes()));
    match existing {
        Some(arn) => req = req.certificate_arn(arn),
        None => {
            req = req.tags(
                Tag::builder()
                    .key("Name")
                    .value(name)
                    .build()
                    .map_err(|e| sdk_err("ACM tag", e))?,
            )
        }
    }
    let out = req
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot import the certificate {name} into ACM"), e))?;
    Ok(out.certificate_arn().unwrap_or_default().to_owned())
}

/// Whether a certificate ARN still exists.
pub async fn exists(aws: &Aws, arn: &str) -> bool {
    aws.acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .is_ok()
}

/// Deletes an imported certificate (after the stacks that used it are gone).
pub async fn delete(aws: &Aws, arn: &str) -> Result<()> {
    aws.acm
        .delete_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| sdk_err(&format!("cannot delete certificate {arn}"), e))
}
