//! The common S3 operations by method, path shape (path-style: `/bucket/key`) and subresource
//! (`?tagging`, `?uploads`...), with the IAM action each needs where its name differs
//! (`ListObjectsV2` needs `s3:ListBucket`). A subresource not in the table leaves the call
//! unnamed.

use super::{params, Call, Operation};

/// Query parameters that qualify an operation rather than select one.
const PARAMETERS: &[&str] = &[
    "prefix",
    "delimiter",
    "encoding-type",
    "marker",
    "max-keys",
    "continuation-token",
    "fetch-owner",
    "start-after",
    "list-type",
    "key-marker",
    "version-id-marker",
    "upload-id-marker",
    "max-uploads",
    "max-parts",
    "part-number-marker",
    "versionId",
    "x-id",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
];

/// Where the path points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// `/`: the account.
    Service,
    /// `/bucket`.
    Bucket,
    /// `/bucket/key`.
    Object,
}

/// Names an S3 call.
pub(super) fn name(call: &Call<'_>) -> Operation {
    match table(call) {
        Some((name, iam)) => Operation::named("s3", name, iam),
        None => Operation::unnamed(),
    }
}

/// The operation and its IAM action name.
fn table(call: &Call<'_>) -> Option<(&'static str, &'static str)> {
    let path = call.path.strip_prefix('/')?;
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let level = match (bucket.is_empty(), key.is_empty()) {
        (true, true) => Level::Service,
        (true, false) => return None,
        (false, true) => Level::Bucket,
        (false, false) => Level::Object,
    };
    let query = params(call.query.unwrap_or_default())?;
    let mut subs: Vec<&str> = query
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !PARAMETERS.contains(k) && !k.to_ascii_lowercase().starts_with("x-amz-"))
        .collect();
    subs.sort_unstable();
    subs.dedup();
    let v2 = query.iter().any(|(k, v)| k == "list-type" && v == "2");
    let copy = call.headers.contains_key("x-amz-copy-source");
    // A version of an object needs the `...Version` action.
    let versioned = query.iter().any(|(k, _)| k == "versionId");
    let op = match (call.method, level, subs.as_slice()) {
        ("GET", Level::Service, []) => ("ListBuckets", "ListAllMyBuckets"),

        ("GET", Level::Bucket, []) if v2 => ("ListObjectsV2", "ListBucket"),
        ("GET", Level::Bucket, []) => ("ListObjects", "ListBucket"),
        ("GET", Level::Bucket, ["uploads"]) => {
            ("ListMultipartUploads", "ListBucketMultipartUploads")
        }
        ("GET", Level::Bucket, ["versions"]) => ("ListObjectVersions", "ListBucketVersions"),
        ("GET", Level::Bucket, ["policy"]) => ("GetBucketPolicy", "GetBucketPolicy"),
        ("GET", Level::Bucket, ["tagging"]) => ("GetBucketTagging", "GetBucketTagging"),
        ("GET", Level::Bucket, ["location"]) => ("GetBucketLocation", "GetBucketLocation"),
        ("GET", Level::Bucket, ["acl"]) => ("GetBucketAcl", "GetBucketAcl"),
        ("GET", Level::Bucket, ["versioning"]) => ("GetBucketVersioning", "GetBucketVersioning"),
        ("GET", Level::Bucket, ["encryption"]) => {
            ("GetBucketEncryption", "GetEncryptionConfiguration")
        }
        ("HEAD", Level::Bucket, []) => ("HeadBucket", "ListBucket"),
        ("PUT", Level::Bucket, []) => ("CreateBucket", "CreateBucket"),
        ("PUT", Level::Bucket, ["policy"]) => ("PutBucketPolicy", "PutBucketPolicy"),
        ("PUT", Level::Bucket, ["tagging"]) => ("PutBucketTagging", "PutBucketTagging"),
        ("PUT", Level::Bucket, ["versioning"]) => ("PutBucketVersioning", "PutBucketVersioning"),
        ("PUT", Level::Bucket, ["acl"]) => ("PutBucketAcl", "PutBucketAcl"),
        ("PUT", Level::Bucket, ["encryption"]) => {
            ("PutBucketEncryption", "PutEncryptionConfiguration")
        }
        ("DELETE", Level::Bucket, []) => ("DeleteBucket", "DeleteBucket"),
        ("DELETE", Level::Bucket, ["policy"]) => ("DeleteBucketPolicy", "DeleteBucketPolicy"),
        ("DELETE", Level::Bucket, ["tagging"]) => ("DeleteBucketTagging", "PutBucketTagging"),
        ("DELETE", Level::Bucket, ["encryption"]) => {
            ("DeleteBucketEncryption", "PutEncryptionConfiguration")
        }
        ("POST", Level::Bucket, ["delete"]) => ("DeleteObjects", "DeleteObject"),

        ("GET", Level::Object, []) if versioned => ("GetObject", "GetObjectVersion"),
        ("GET", Level::Object, []) => ("GetObject", "GetObject"),
        ("GET", Level::Object, ["tagging"]) => ("GetObjectTagging", "GetObjectTagging"),
        ("GET", Level::Object, ["acl"]) => ("GetObjectAcl", "GetObjectAcl"),
        ("GET", Level::Object, ["attributes"]) => ("GetObjectAttributes", "GetObjectAttributes"),
        ("GET", Level::Object, ["uploadId"]) => ("ListParts", "ListMultipartUploadParts"),
        ("HEAD", Level::Object, []) if versioned => ("HeadObject", "GetObjectVersion"),
        ("HEAD", Level::Object, []) => ("HeadObject", "GetObject"),
        ("PUT", Level::Object, []) if copy => ("CopyObject", "PutObject"),
        ("PUT", Level::Object, []) => ("PutObject", "PutObject"),
        ("PUT", Level::Object, ["partNumber", "uploadId"]) if copy => {
            ("UploadPartCopy", "PutObject")
        }
        ("PUT", Level::Object, ["partNumber", "uploadId"]) => ("UploadPart", "PutObject"),
        ("PUT", Level::Object, ["tagging"]) => ("PutObjectTagging", "PutObjectTagging"),
        ("PUT", Level::Object, ["acl"]) => ("PutObjectAcl", "PutObjectAcl"),
        ("DELETE", Level::Object, []) if versioned => ("DeleteObject", "DeleteObjectVersion"),
        ("DELETE", Level::Object, []) => ("DeleteObject", "DeleteObject"),
        ("DELETE", Level::Object, ["tagging"]) => ("DeleteObjectTagging", "DeleteObjectTagging"),
        ("DELETE", Level::Object, ["uploadId"]) => ("AbortMultipartUpload", "AbortMultipartUpload"),
        ("POST", Level::Object, ["uploads"]) => ("CreateMultipartUpload", "PutObject"),
        ("POST", Level::Object, ["uploadId"]) => ("CompleteMultipartUpload", "PutObject"),
        ("POST", Level::Object, ["restore"]) => ("RestoreObject", "RestoreObject"),
        ("POST", Level::Object, ["select", "select-type"]) => ("SelectObjectContent", "GetObject"),
        _ => return None,
    };
    Some(op)
}
