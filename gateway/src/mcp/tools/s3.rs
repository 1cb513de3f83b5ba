//! `s3_list` (`ListObjectsV2`), `s3_read` (`GetObject`, text only, masked, bounded) and `s3_put`
//! (`PutObject` of text: a write, so it goes through approval when the project's rules hold
//! writes). S3's REST protocol, path-style, as the proxy sends every S3 call.

use bytes::Bytes;
use http::{HeaderValue, Method};
use serde_json::{Map, Value};

use super::args::{self, bool_arg, int_arg, str_arg};
use super::request::AwsRequest;
use super::run::Run;
use super::xml::{elements, first};
use super::{described, target_props};
use crate::mcp::tool::{Hints, InputSchema, Tool, ToolResult};

/// `s3_list`.
pub const LIST: &str = "s3_list";
/// `s3_read`.
pub const READ: &str = "s3_read";
/// `s3_put`.
pub const PUT: &str = "s3_put";
/// The most characters `s3_put` writes.
pub const MAX_PUT_CHARS: usize = 256 * 1024;

fn bucket_prop(p: &mut Map<String, Value>) {
    p.insert("bucket".into(), args::string_max("The bucket's name.", 63));
}

fn key_prop(p: &mut Map<String, Value>, what: &str) {
    p.insert("key".into(), args::string_max(what, 1024));
}

/// `s3_list` as listed.
pub fn list_tool() -> Tool {
    let mut p = Map::new();
    bucket_prop(&mut p);
    p.insert(
        "prefix".into(),
        args::string_max("List only keys beginning with this (logs/2026/).", 1024),
    );
    p.insert(
        "recursive".into(),
        args::boolean(
            "List every key under the prefix; default false: one level, with sub-folders shown as prefixes.",
        ),
    );
    p.insert(
        "max_keys".into(),
        args::integer("The most keys returned (default 200).", 1, 1000),
    );
    p.insert(
        "continuation_token".into(),
        args::string_max("The token a previous listing gave, to read on.", 2048),
    );
    target_props(&mut p);
    Tool {
        name: LIST.into(),
        title: "List S3 objects".into(),
        description: described(
            "Lists objects in an S3 bucket (by prefix, one level or all), with their sizes and last-modified times.",
            &["s3:ListBucket"],
        ),
        input_schema: InputSchema::object(p, &["bucket"]),
        hints: Hints::READ,
    }
}

/// `s3_read` as listed.
pub fn read_tool() -> Tool {
    let mut p = Map::new();
    bucket_prop(&mut p);
    key_prop(&mut p, "The object's key.");
    target_props(&mut p);
    Tool {
        name: READ.into(),
        title: "Read an S3 object".into(),
        description: described(
            "Reads a text object from S3. Secrets and personal data in it are masked; binary objects and objects larger than the gateway can mask are refused.",
            &["s3:GetObject"],
        ),
        input_schema: InputSchema::object(p, &["bucket", "key"]),
        hints: Hints::READ,
    }
}

/// `s3_put` as listed.
pub fn put_tool() -> Tool {
    let mut p = Map::new();
    bucket_prop(&mut p);
    key_prop(
        &mut p,
        "The object's key; an object already there is replaced.",
    );
    p.insert(
        "content".into(),
        args::string_max("The text to write.", MAX_PUT_CHARS),
    );
    p.insert(
        "content_type".into(),
        args::string_max(
            "The object's content type (default text/plain; charset=utf-8).",
            128,
        ),
    );
    target_props(&mut p);
    Tool {
        name: PUT.into(),
        title: "Write an S3 object".into(),
        description: described(
            "Writes text to an S3 object, replacing any object at that key. A write: it may be held for a person's approval; then call again with the same arguments once it is approved.",
            &["s3:PutObject"],
        ),
        input_schema: InputSchema::object(p, &["bucket", "key", "content"]),
        hints: crate::mcp::tool::Hints {
            read_only: false,
            destructive: true,
            idempotent: true,
            open_world: true,
        },
    }
}

/// Whether `bucket` can be a bucket's name, legacy names included (letters, digits, `.`, `-`
/// and `_`), and is not a `.` or `..` path segment. Nothing else is put in the path.
fn valid_bucket(bucket: &str) -> bool {
    !bucket.is_empty()
        && bucket != "."
        && bucket != ".."
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The `bucket` and `key` arguments checked: the bucket a valid name, and no `.` or `..`
/// segment in the key. HTTP clients resolve those segments, so `a/../other-bucket/k` would
/// reach another bucket's object than the one decided, recorded and audited.
pub fn check_object(a: &Map<String, Value>) -> Result<(), String> {
    let bucket = str_arg(a, "bucket").unwrap_or_default();
    if !valid_bucket(bucket) {
        return Err(
            "argument `bucket` must be an S3 bucket name (letters, digits, dots, hyphens)".into(),
        );
    }
    if let Some(key) = str_arg(a, "key") {
        if key.split('/').any(|s| s == "." || s == "..") {
            return Err(
                "argument `key` must not have a `.` or `..` segment: such keys cannot be addressed through the gateway".into(),
            );
        }
    }
    Ok(())
}

/// The `ListObjectsV2` request of `a`.
pub fn list_request(a: &Map<String, Value>) -> AwsRequest {
    let mut q = vec![("list-type".to_owned(), "2".to_owned())];
    if let Some(t) = str_arg(a, "continuation_token") {
        q.push(("continuation-token".into(), t.to_owned()));
    }
    if !bool_arg(a, "recursive").unwrap_or(false) {
        q.push(("delimiter".into(), "/".into()));
    }
    q.push((
        "max-keys".into(),
        int_arg(a, "max_keys").unwrap_or(200).to_string(),
    ));
    if let Some(p) = str_arg(a, "prefix") {
        q.push(("prefix".into(), p.to_owned()));
    }
    AwsRequest::s3(
        Method::GET,
        str_arg(a, "bucket").unwrap_or_default(),
        None,
        &q,
    )
}

/// The `GetObject` request of `a`.
pub fn read_request(a: &Map<String, Value>) -> AwsRequest {
    AwsRequest::s3(
        Method::GET,
        str_arg(a, "bucket").unwrap_or_default(),
        str_arg(a, "key"),
        &[],
    )
}

/// The `PutObject` request of `a`.
pub fn put_request(a: &Map<String, Value>) -> Result<AwsRequest, String> {
    let mut r = AwsRequest::s3(
        Method::PUT,
        str_arg(a, "bucket").unwrap_or_default(),
        str_arg(a, "key"),
        &[],
    );
    let content_type = str_arg(a, "content_type").unwrap_or("text/plain; charset=utf-8");
    r.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .map_err(|_| "argument `content_type` is not a valid content type".to_owned())?,
    );
    r.body = Bytes::from(str_arg(a, "content").unwrap_or_default().to_owned());
    Ok(r)
}

/// A (masked) `ListObjectsV2` answer as text.
pub fn render_list(bucket: &str, body: &str) -> String {
    let prefixes: Vec<String> = elements(body, "CommonPrefixes")
        .into_iter()
        .filter_map(|p| first(p, "Prefix"))
        .collect();
    let objects: Vec<String> = elements(body, "Contents")
        .into_iter()
        .map(|c| {
            format!(
                "{}  {} bytes  {}",
                first(c, "Key").unwrap_or_default(),
                first(c, "Size").unwrap_or_default(),
                first(c, "LastModified").unwrap_or_default()
            )
        })
        .collect();
    if prefixes.is_empty() && objects.is_empty() {
        return format!("No objects in s3://{bucket} under that prefix.");
    }
    let mut out = format!(
        "s3://{bucket}: {} objects, {} prefixes\n",
        objects.len(),
        prefixes.len()
    );
    for p in &prefixes {
        out.push_str(&format!("{p}  (prefix)\n"));
    }
    for o in &objects {
        out.push_str(o);
        out.push('\n');
    }
    if first(body, "IsTruncated").as_deref() == Some("true") {
        if let Some(t) = first(body, "NextContinuationToken") {
            out.push_str(&format!(
                "More keys follow: call again with continuation_token {t:?}.\n"
            ));
        }
    }
    out.trim_end().to_owned()
}

/// Runs `s3_list`.
pub async fn list(run: &mut Run<'_, '_>, a: &Map<String, Value>) -> ToolResult {
    if let Err(e) = check_object(a) {
        return run.fail(format!("{e}."));
    }
    let bucket = str_arg(a, "bucket").unwrap_or_default().to_owned();
    let target = match run.target(a).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    run.names(format!(
        "s3://{bucket}/{}",
        str_arg(a, "prefix").unwrap_or_default()
    ));
    match run.send(&target, list_request(a)).await {
        Ok(body) => ToolResult::text(render_list(&bucket, &body)),
        Err(r) => r,
    }
}

/// Runs `s3_read`.
pub async fn read(run: &mut Run<'_, '_>, a: &Map<String, Value>) -> ToolResult {
    if let Err(e) = check_object(a) {
        return run.fail(format!("{e}."));
    }
    let bucket = str_arg(a, "bucket").unwrap_or_default();
    let key = str_arg(a, "key").unwrap_or_default();
    let at = format!("s3://{bucket}/{key}");
    let target = match run.target(a).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    run.names(at.clone());
    match run.send(&target, read_request(a)).await {
        Ok(text) => ToolResult::text(format!("{at} ({} bytes):\n{text}", text.len())),
        Err(r) => r,
    }
}

/// Runs `s3_put`.
pub async fn put(run: &mut Run<'_, '_>, a: &Map<String, Value>) -> ToolResult {
    if let Err(e) = check_object(a) {
        return run.fail(format!("{e}."));
    }
    let bucket = str_arg(a, "bucket").unwrap_or_default();
    let key = str_arg(a, "key").unwrap_or_default();
    let at = format!("s3://{bucket}/{key}");
    let req = match put_request(a) {
        Ok(r) => r,
        Err(e) => return run.fail(format!("{e}.")),
    };
    let size = req.body.len();
    let target = match run.target(a).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    run.names(at.clone());
    match run.send(&target, req).await {
        Ok(_) => ToolResult::text(format!("Wrote {size} bytes to {at}.")),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_listing_is_one_level_unless_recursive() {
        let r = list_request(&a(json!({"bucket": "b", "prefix": "logs/"})));
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/b"));
        assert_eq!(
            r.query.as_deref(),
            Some("list-type=2&delimiter=%2F&max-keys=200&prefix=logs%2F")
        );
        let r = list_request(&a(
            json!({"bucket": "b", "recursive": true, "max_keys": 5, "continuation_token": "t=1"}),
        ));
        assert_eq!(
            r.query.as_deref(),
            Some("list-type=2&continuation-token=t%3D1&max-keys=5")
        );
    }

    #[test]
    fn a_read_and_a_put_name_the_object_path_style() {
        let r = read_request(&a(json!({"bucket": "b", "key": "dir/a b.txt"})));
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/b/dir/a%20b.txt")
        );
        assert!(r.body.is_empty());
        let r = put_request(&a(json!({"bucket": "b", "key": "k", "content": "hello"}))).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("PUT", "/b/k"));
        assert_eq!(r.body, Bytes::from("hello"));
        assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
        let bad = put_request(&a(
            json!({"bucket": "b", "key": "k", "content": "x", "content_type": "a\nb"}),
        ))
        .unwrap_err();
        assert!(bad.contains("`content_type`"), "{bad}");
    }

    #[test]
    fn a_key_cannot_climb_out_of_its_bucket_and_a_bucket_is_a_bucket_name() {
        for key in [
            "../other-bucket/secret",
            "a/../../b/k",
            "./k",
            "a/.",
            "a/..",
        ] {
            let e = check_object(&a(json!({"bucket": "b-1", "key": key}))).unwrap_err();
            assert!(e.starts_with("argument `key`"), "{key}: {e}");
        }
        for key in ["a/..b/k", "...", "a/.hidden", "%2e%2e/k", "dir/"] {
            assert_eq!(
                check_object(&a(json!({"bucket": "b-1", "key": key}))),
                Ok(()),
                "{key}"
            );
        }
        for bucket in ["..", ".", "a/b", "a%2fb", "a?b", "a b", "b\u{e9}"] {
            let e = check_object(&a(json!({"bucket": bucket}))).unwrap_err();
            assert!(e.starts_with("argument `bucket`"), "{bucket}: {e}");
        }
        for bucket in ["b-1", "logs.example.com", "123", "Legacy_Bucket"] {
            assert_eq!(
                check_object(&a(json!({"bucket": bucket}))),
                Ok(()),
                "{bucket}"
            );
        }
    }

    #[test]
    fn a_listing_renders_prefixes_objects_and_the_next_token() {
        let body = "<ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated>\
            <Contents><Key>a&amp;b.txt</Key><LastModified>2026-12-06T10:00:00.000Z</LastModified><Size>12</Size></Contents>\
            <CommonPrefixes><Prefix>logs/</Prefix></CommonPrefixes>\
            <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>";
        assert_eq!(
            render_list("b", body),
            "s3://b: 1 objects, 1 prefixes\nlogs/  (prefix)\na&b.txt  12 bytes  2026-12-06T10:00:00.000Z\nMore keys follow: call again with continuation_token \"tok\"."
        );
        assert_eq!(
            render_list(
                "b",
                "<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>"
            ),
            "No objects in s3://b under that prefix."
        );
    }

    #[test]
    fn reads_read_and_the_put_is_a_destructive_write() {
        assert!(list_tool().hints.read_only && read_tool().hints.read_only);
        let p = put_tool();
        assert!(!p.hints.read_only && p.hints.destructive);
        assert!(p.description.contains("s3:PutObject"));
        assert_eq!(
            p.input_schema.as_value()["required"],
            json!(["bucket", "key", "content"])
        );
    }
}
