//! S3: a bucket the deployer manages for templates larger than CloudFormation's inline limit.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
};

use super::{err_text, sdk_err, Aws};
use crate::error::Result;

/// The bucket's name for a deployment in an account and Region.
pub fn bucket_name(deployment: &str, account: &str, region: &str) -> String {
    format!("{deployment}-cfn-{account}-{region}")
}

/// Creates the bucket (private, all public access blocked) unless it exists.
pub async fn ensure_bucket(aws: &Aws, bucket: &str) -> Result<()> {
    if aws.s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    let mut req = aws.s3.create_bucket().bucket(bucket);
    if aws.region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(aws.region.as_str()))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if err_text(&e).contains("BucketAlreadyOwnedByYou") => {}
        Err(e) => {
            return Err(sdk_err(
                &format!("cannot create template bucket {bucket}"),
                e,
            ))
        }
    }
    aws.s3
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot block public access on {bucket}"), e))?;
    Ok(())
}

/// Uploads a template and returns the URL CloudFormation reads it from.
pub async fn put_template(aws: &Aws, bucket: &str, key: &str, body: &str) -> Result<String> {
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot upload {key} to {bucket}"), e))?;
    Ok(match &aws.endpoint {
        Some(ep) => format!("{}/{bucket}/{key}", ep.trim_end_matches('/')),
        None => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", aws.region),
    })
}
