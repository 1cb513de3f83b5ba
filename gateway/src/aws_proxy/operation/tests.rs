use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::*;
use crate::aws_proxy::vectors::VECTORS;

/// The expected naming: operation, IAM action, class (`None`: unnamed, a write).
type Expected = Option<(&'static str, &'static str, Class)>;

/// An RPC case: service, target, headers, body, expected naming.
type RpcCase<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a str,
    Expected,
);

fn check(
    label: &str,
    service: &str,
    method: &str,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
    expected: Expected,
) {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let got = name(&Call {
        service,
        method,
        path,
        query,
        headers,
        body,
    });
    let want = match expected {
        Some((op, action, class)) => Operation {
            name: Some(op.into()),
            action: Some(action.into()),
            class,
        },
        None => Operation {
            name: None,
            action: None,
            class: Class::Write,
        },
    };
    assert_eq!(got, want, "{label}");
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

/// The service of a signed vector, from its credential scope.
fn scope_service(headers: &HeaderMap, target: &str) -> String {
    let credential = headers
        .get("authorization")
        .map(|a| a.to_str().unwrap().to_owned())
        .unwrap_or_else(|| {
            let q = target.split_once('?').unwrap().1;
            let c = q
                .split('&')
                .find(|p| p.starts_with("X-Amz-Credential="))
                .unwrap();
            c.replace("%2F", "/")
        });
    credential.split('/').nth(3).unwrap().to_owned()
}

#[test]
fn signed_requests_of_every_protocol_are_named() {
    use Class::*;
    let expected: &[(&str, Expected)] = &[
        (
            "sts_query_post",
            Some(("GetCallerIdentity", "sts:GetCallerIdentity", Read)),
        ),
        (
            "dynamodb_json_post",
            Some(("ListTables", "dynamodb:ListTables", List)),
        ),
        (
            "logs_json_post",
            Some(("FilterLogEvents", "logs:FilterLogEvents", Read)),
        ),
        (
            "s3_get_unicode_key",
            Some(("GetObject", "s3:GetObjectVersion", Read)),
        ),
        ("s3_put_body", Some(("PutObject", "s3:PutObject", Write))),
        (
            "s3_presigned_get",
            Some(("GetObject", "s3:GetObject", Read)),
        ),
        (
            "s3_delete_objects",
            Some(("DeleteObjects", "s3:DeleteObject", Write)),
        ),
        (
            "s3_copy_object",
            Some(("CopyObject", "s3:PutObject", Write)),
        ),
        (
            "s3_streaming_put",
            Some(("PutObject", "s3:PutObject", Write)),
        ),
        (
            "lambda_invoke",
            Some(("Invoke", "lambda:InvokeFunction", Write)),
        ),
        (
            "lambda_list_functions",
            Some(("ListFunctions", "lambda:ListFunctions", List)),
        ),
        (
            "sts_presigned_get",
            Some(("GetCallerIdentity", "sts:GetCallerIdentity", Read)),
        ),
        (
            "monitoring_query_post",
            Some(("ListMetrics", "cloudwatch:ListMetrics", List)),
        ),
        (
            "s3_put_unsigned_payload",
            Some(("PutObject", "s3:PutObject", Write)),
        ),
    ];
    assert_eq!(expected.len(), VECTORS.len());
    for v in VECTORS {
        let (_, want) = expected.iter().find(|(n, _)| *n == v.name).unwrap();
        let map = v.header_map();
        let service = scope_service(&map, v.target);
        // The path the service sees: the gateway's `/aws` prefix removed.
        let target = v.target.strip_prefix("/aws").unwrap_or(v.target);
        check(
            v.name,
            &service,
            v.method,
            target,
            &map,
            v.body.as_bytes(),
            *want,
        );
    }
}

#[test]
fn rest_tables_name_s3_and_lambda() {
    use Class::*;
    let none = HeaderMap::new();
    let cases: &[(&str, &str, &str, Expected)] = &[
        (
            "s3",
            "GET",
            "/",
            Some(("ListBuckets", "s3:ListAllMyBuckets", List)),
        ),
        (
            "s3",
            "GET",
            "/b?list-type=2&prefix=a%2F",
            Some(("ListObjectsV2", "s3:ListBucket", List)),
        ),
        (
            "s3",
            "GET",
            "/b?x-id=ListObjectsV2&list-type=2",
            Some(("ListObjectsV2", "s3:ListBucket", List)),
        ),
        (
            "s3",
            "GET",
            "/b/",
            Some(("ListObjects", "s3:ListBucket", List)),
        ),
        (
            "s3",
            "HEAD",
            "/b",
            Some(("HeadBucket", "s3:ListBucket", Read)),
        ),
        (
            "s3",
            "HEAD",
            "/b/k",
            Some(("HeadObject", "s3:GetObject", Read)),
        ),
        (
            "s3",
            "GET",
            "/b/dir/k%20x.txt",
            Some(("GetObject", "s3:GetObject", Read)),
        ),
        (
            "s3",
            "DELETE",
            "/b/k",
            Some(("DeleteObject", "s3:DeleteObject", Write)),
        ),
        (
            "s3",
            "DELETE",
            "/b/k?versionId=3",
            Some(("DeleteObject", "s3:DeleteObjectVersion", Write)),
        ),
        (
            "s3",
            "PUT",
            "/b",
            Some(("CreateBucket", "s3:CreateBucket", Write)),
        ),
        (
            "s3",
            "DELETE",
            "/b",
            Some(("DeleteBucket", "s3:DeleteBucket", Write)),
        ),
        (
            "s3",
            "GET",
            "/b?policy",
            Some(("GetBucketPolicy", "s3:GetBucketPolicy", Read)),
        ),
        (
            "s3",
            "PUT",
            "/b?policy",
            Some(("PutBucketPolicy", "s3:PutBucketPolicy", Write)),
        ),
        (
            "s3",
            "GET",
            "/b?tagging",
            Some(("GetBucketTagging", "s3:GetBucketTagging", Read)),
        ),
        (
            "s3",
            "PUT",
            "/b?tagging",
            Some(("PutBucketTagging", "s3:PutBucketTagging", Write)),
        ),
        (
            "s3",
            "GET",
            "/b?uploads",
            Some((
                "ListMultipartUploads",
                "s3:ListBucketMultipartUploads",
                List,
            )),
        ),
        (
            "s3",
            "GET",
            "/b?versions&prefix=a",
            Some(("ListObjectVersions", "s3:ListBucketVersions", List)),
        ),
        (
            "s3",
            "POST",
            "/b/k?uploads",
            Some(("CreateMultipartUpload", "s3:PutObject", Write)),
        ),
        (
            "s3",
            "PUT",
            "/b/k?partNumber=1&uploadId=x",
            Some(("UploadPart", "s3:PutObject", Write)),
        ),
        (
            "s3",
            "POST",
            "/b/k?uploadId=x",
            Some(("CompleteMultipartUpload", "s3:PutObject", Write)),
        ),
        (
            "s3",
            "DELETE",
            "/b/k?uploadId=x",
            Some(("AbortMultipartUpload", "s3:AbortMultipartUpload", Write)),
        ),
        (
            "s3",
            "GET",
            "/b/k?uploadId=x&max-parts=10",
            Some(("ListParts", "s3:ListMultipartUploadParts", List)),
        ),
        (
            "s3",
            "GET",
            "/b/k?tagging",
            Some(("GetObjectTagging", "s3:GetObjectTagging", Read)),
        ),
        (
            "s3",
            "PUT",
            "/b/k?tagging",
            Some(("PutObjectTagging", "s3:PutObjectTagging", Write)),
        ),
        (
            "s3",
            "DELETE",
            "/b/k?tagging",
            Some(("DeleteObjectTagging", "s3:DeleteObjectTagging", Write)),
        ),
        (
            "s3",
            "POST",
            "/b/k?select&select-type=2",
            Some(("SelectObjectContent", "s3:GetObject", Read)),
        ),
        ("s3", "GET", "/b?lifecycle", None),
        ("s3", "GET", "/b?policy&tagging", None),
        ("s3", "PATCH", "/b/k", None),
        ("s3", "GET", "//k", None),
        ("s3", "GET", "b/k", None),
        ("s3", "PUT", "/b/k?partNumber=1", None),
        (
            "lambda",
            "GET",
            "/2015-03-31/functions/my-fn",
            Some(("GetFunction", "lambda:GetFunction", Read)),
        ),
        (
            "lambda",
            "POST",
            "/2015-03-31/functions",
            Some(("CreateFunction", "lambda:CreateFunction", Write)),
        ),
        (
            "lambda",
            "PUT",
            "/2015-03-31/functions/my-fn/code",
            Some(("UpdateFunctionCode", "lambda:UpdateFunctionCode", Write)),
        ),
        (
            "lambda",
            "DELETE",
            "/2015-03-31/functions/my-fn",
            Some(("DeleteFunction", "lambda:DeleteFunction", Write)),
        ),
        (
            "lambda",
            "GET",
            "/2015-03-31/functions/my-fn/configuration",
            Some((
                "GetFunctionConfiguration",
                "lambda:GetFunctionConfiguration",
                Read,
            )),
        ),
        (
            "lambda",
            "POST",
            "/2014-11-13/functions/my-fn/invoke-async/",
            Some(("InvokeAsync", "lambda:InvokeFunction", Write)),
        ),
        (
            "lambda",
            "GET",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af",
            Some(("ListTags", "lambda:ListTags", List)),
        ),
        ("lambda", "GET", "/2015-03-31/functions/my-fn/unknown", None),
        ("lambda", "GET", "/2015-03-31/functions//code", None),
        (
            "lambda",
            "POST",
            "/2015-03-31/functions/my-fn/invocations/x/y/z",
            None,
        ),
        ("execute-api", "GET", "/prod/items", None),
    ];
    for (service, method, target, want) in cases {
        check(
            &format!("{method} {target}"),
            service,
            method,
            target,
            &none,
            b"",
            *want,
        );
    }
    let copy = headers(&[("x-amz-copy-source", "/src/k")]);
    check(
        "upload part copy",
        "s3",
        "PUT",
        "/b/k?partNumber=2&uploadId=u",
        &copy,
        b"",
        Some(("UploadPartCopy", "s3:PutObject", Class::Write)),
    );
}

#[test]
fn json_and_query_protocols_are_named() {
    use Class::*;
    let form = (
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    );
    let json = ("content-type", "application/x-amz-json-1.1");
    let cases: &[RpcCase<'_>] = &[
        (
            "secretsmanager",
            "/",
            &[json, ("x-amz-target", "secretsmanager.GetSecretValue")],
            "{}",
            Some(("GetSecretValue", "secretsmanager:GetSecretValue", Read)),
        ),
        (
            "ssm",
            "/",
            &[json, ("x-amz-target", "AmazonSSM.GetParameter")],
            "{}",
            Some(("GetParameter", "ssm:GetParameter", Read)),
        ),
        (
            "dynamodb",
            "/",
            &[("x-amz-target", "DynamoDB_20120810.BatchGetItem")],
            "{}",
            Some(("BatchGetItem", "dynamodb:BatchGetItem", Read)),
        ),
        (
            "dynamodb",
            "/",
            &[("x-amz-target", "DynamoDB_20120810.Query")],
            "{}",
            Some(("Query", "dynamodb:Query", Read)),
        ),
        (
            "dynamodb",
            "/",
            &[("x-amz-target", "DynamoDB_20120810.Scan")],
            "{}",
            Some(("Scan", "dynamodb:Scan", Read)),
        ),
        (
            "dynamodb",
            "/",
            &[("x-amz-target", "DynamoDB_20120810.BatchWriteItem")],
            "{}",
            Some(("BatchWriteItem", "dynamodb:BatchWriteItem", Write)),
        ),
        (
            "cloudtrail",
            "/",
            &[(
                "x-amz-target",
                "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
            )],
            "{}",
            Some(("LookupEvents", "cloudtrail:LookupEvents", Read)),
        ),
        (
            "logs",
            "/",
            &[("x-amz-target", "Logs_20140328.PutRetentionPolicy")],
            "{}",
            Some(("PutRetentionPolicy", "logs:PutRetentionPolicy", Write)),
        ),
        (
            "iam",
            "/",
            &[form],
            "Action=CreateUser&Version=2010-05-08&UserName=x",
            Some(("CreateUser", "iam:CreateUser", Write)),
        ),
        (
            "ec2",
            "/?Action=DescribeInstances&Version=2016-11-15",
            &[],
            "",
            Some(("DescribeInstances", "ec2:DescribeInstances", Read)),
        ),
        (
            "email",
            "/",
            &[form],
            "Action=SendEmail&Source=a%40b.c",
            Some(("SendEmail", "ses:SendEmail", Write)),
        ),
        (
            "sts",
            "/",
            &[form],
            "Version=2011-06-15&Action=AssumeRole",
            Some(("AssumeRole", "sts:AssumeRole", Write)),
        ),
        // A header claiming one thing, the body asking another: unnamed.
        (
            "sts",
            "/",
            &[form, ("x-amz-target", "X.GetCallerIdentity")],
            "Action=AssumeRole",
            None,
        ),
        (
            "sts",
            "/?Action=GetCallerIdentity",
            &[form],
            "Action=AssumeRole",
            None,
        ),
        (
            "sts",
            "/",
            &[form],
            "Action=GetCallerIdentity&Action=AssumeRole",
            None,
        ),
        (
            "dynamodb",
            "/",
            &[
                ("x-amz-target", "DynamoDB_20120810.ListTables"),
                ("x-amz-target", "DynamoDB_20120810.DeleteTable"),
            ],
            "{}",
            None,
        ),
        (
            "logs",
            "/",
            &[("x-amz-target", "Logs_20140328.filterLogEvents")],
            "{}",
            None,
        ),
        (
            "logs",
            "/",
            &[("x-amz-target", "FilterLogEvents")],
            "{}",
            None,
        ),
        ("dynamodb", "/", &[json], "{}", None),
        // A REST API acts on its method and path: a header or parameter naming a read there
        // does not make the call one.
        (
            "route53",
            "/2013-04-01/hostedzone/Z1/rrset",
            &[("x-amz-target", "x.GetHostedZone")],
            "<ChangeResourceRecordSetsRequest/>",
            None,
        ),
        (
            "eks",
            "/clusters/c/node-groups?Action=DescribeCluster",
            &[],
            "{}",
            None,
        ),
        // A form body is read only when the request says it is a form.
        ("sts", "/", &[json], "Action=GetCallerIdentity", None),
        ("sts", "/", &[form], "Action=Get%20CallerIdentity", None),
    ];
    for (service, target, hs, body, want) in cases {
        check(
            &format!("{service} {hs:?} {body}"),
            service,
            "POST",
            target,
            &headers(hs),
            body.as_bytes(),
            *want,
        );
    }
    // The JSON protocol is POSTed; a GET carrying its header is not named by it.
    check(
        "json target on a GET",
        "dynamodb",
        "GET",
        "/",
        &headers(&[("x-amz-target", "DynamoDB_20120810.ListTables")]),
        b"",
        None,
    );
    // Past the parameter limit, an Action could hide where it is not looked at.
    let long = format!("{}Action=GetCallerIdentity", "a=1&".repeat(MAX_PARAMS));
    check(
        "too many parameters",
        "sts",
        "POST",
        "/",
        &headers(&[form]),
        long.as_bytes(),
        None,
    );
}

#[test]
fn classes_follow_the_verb() {
    for (name, class) in [
        ("List", Class::List),
        ("ListBuckets", Class::List),
        ("Listen", Class::Write),
        ("Getaway", Class::Write),
        ("GetObject", Class::Read),
        ("HeadObject", Class::Read),
        ("DescribeStacks", Class::Read),
        ("BatchGetItem", Class::Read),
        ("Query", Class::Read),
        ("Scan", Class::Read),
        ("SelectObjectContent", Class::Read),
        ("LookupEvents", Class::Read),
        ("FilterLogEvents", Class::Read),
        ("SearchResources", Class::Read),
        ("BatchWriteItem", Class::Write),
        ("PutObject", Class::Write),
        ("Invoke", Class::Write),
        ("", Class::Write),
    ] {
        assert_eq!(class_of(name), class, "{name}");
    }
    assert_eq!(iam_prefix("monitoring"), "cloudwatch");
    assert_eq!(iam_prefix("tagging"), "tag");
    assert_eq!(iam_prefix("execute-api"), "execute-api");
    assert_eq!(iam_prefix("logs"), "logs");
}

proptest! {
    #[test]
    fn naming_never_panics_and_unnamed_is_a_write(
        service in prop_oneof![Just("s3".to_owned()), Just("lambda".to_owned()), Just("sts".to_owned()), "[a-z-]{1,12}"],
        method in prop_oneof![Just("GET".to_owned()), Just("PUT".to_owned()), Just("POST".to_owned()), Just("DELETE".to_owned()), Just("HEAD".to_owned()), "[A-Z]{1,8}"],
        path in "/?[ -~]{0,80}",
        query in proptest::option::of("[ -~]{0,80}"),
        target in proptest::option::of("[ -~]{0,60}"),
        form in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut map = HeaderMap::new();
        if let Some(t) = target.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
            map.insert("x-amz-target", t);
        }
        if form {
            map.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
        }
        let op = name(&Call {
            service: &service,
            method: &method,
            path: &path,
            query: query.as_deref(),
            headers: &map,
            body: &body,
        });
        prop_assert_eq!(op.name.is_some(), op.action.is_some());
        if op.name.is_none() {
            prop_assert_eq!(op.class, Class::Write);
        } else {
            prop_assert_eq!(op.class, class_of(op.name.as_deref().unwrap()));
        }
    }
}
