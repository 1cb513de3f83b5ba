//! ECR: the repository the built image goes to, and whether a tag is already there.

use aws_sdk_ecr::types::{ImageIdentifier, ImageScanningConfiguration, ImageTagMutability};

use super::{err_text, sdk_err, Aws};
use crate::error::{Error, Result};
use crate::pki::base64_decode;

/// The repository URI, creating the repository (immutable tags, scan on push) if needed.
pub async fn ensure_repository(aws: &Aws, name: &str) -> Result<String> {
    match aws
        .ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => {
            if let Some(uri) = out.repositories().first().and_then(|r| r.repository_uri()) {
                return Ok(uri.to_owned());
            }
        }
        Err(e) if err_text(&e).contains("RepositoryNotFound") => {}
        Err(e) => return Err(sdk_err(&format!("cannot read ECR repository {name}"), e)),
    }
    println!("  image: creating ECR repository {name} (immutable tags, scan on push)");
    let out = aws
        .ecr
        .create_repository()
        .repository_name(name)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_err(&format!("cannot create ECR repository {name}"), e))?;
    out.repository()
        .and_then(|r| r.repository_uri())
        .map(str::to_owned)
        .ok_or_else(|| Error::failed("ECR returned no repository URI"))
}

/// The digest of `tag` in `repository`, if the tag exists.
pub async fn tag_digest(aws: &Aws, repository: &str, tag: &str) -> Result<Option<String>> {
    match aws
        .ecr
        .describe_images()
        .repository_name(repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
    {
        Ok(out) => Ok(out
            .image_details()
            .first()
            .and_then(|d| d.image_digest())
            .map(str::to_owned)),
        Err(e) if err_text(&e).contains("ImageNotFound") => Ok(None),
        Err(e) => Err(sdk_err(&format!("cannot look up {repository}:{tag}"), e)),
    }
}

/// The password `docker login` needs for ECR (user `AWS`).
pub async fn login_password(aws: &Aws) -> Result<String> {
    let out = aws
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| sdk_err("cannot get an ECR login token", e))?;
    let token = out
        .authorization_data()
        .first()
        .and_then(|d| d.authorization_token())
        .ok_or_else(|| Error::failed("ECR returned no login token"))?;
    let decoded =
        base64_decode(token).ok_or_else(|| Error::failed("ECR login token is not base64"))?;
    let text =
        String::from_utf8(decoded).map_err(|_| Error::failed("ECR login token is not text"))?;
    Ok(text
        .split_once(':')
        .map(|(_, p)| p.to_owned())
        .unwrap_or(text))
}
