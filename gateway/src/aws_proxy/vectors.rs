//! Requests signed by a real signer, for the tests of [`super::sigv4`] and [`super::operation`].
//!
//! Produced once with botocore 1.43.11 (`botocore.auth.SigV4Auth`, `S3SigV4Auth`,
//! `SigV4QueryAuth`, `S3SigV4QueryAuth`) with its clock fixed at [`SIGNED_AT`] and the keys
//! below, then pasted here as sent: method, target, headers, body. The streaming vector is
//! `S3SigV4Auth` with its payload hash set to `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (botocore does
//! not stream-sign); the unsigned one is `S3SigV4Auth` on a streaming input over HTTPS with a
//! `Content-MD5`, where botocore signs `UNSIGNED-PAYLOAD` itself.
//!
//! [`CHUNKED`] holds what the same botocore sends for `put_object(..., ChecksumAlgorithm="CRC32")`
//! to an HTTPS endpoint: an `aws-chunked` body of unsigned chunks with the CRC32 in a trailer
//! (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`, framed by its `AwsChunkedWrapper`), taken at its
//! `before-send` event; for the one of several chunks, the wrapper's chunk size was set to 64.

use http::{HeaderMap, HeaderName, HeaderValue};
use time::macros::datetime;
use time::OffsetDateTime;

/// The time every vector was signed at.
pub const SIGNED_AT: OffsetDateTime = datetime!(2026-12-06 12:00:00 UTC);

/// The long-term key of most vectors.
pub const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
/// Its secret.
pub const KEY_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The session key of the vectors with a security token.
pub const SESSION_KEY_ID: &str = "ASIAQNZGKIQY56JQ7WML";
/// Its secret.
pub const SESSION_SECRET: &str = "Y5KQXlN6lu3oE8Jx5y/PsBThXqyCQmFMP7y8s9E2";

/// The secret of a key id, as the gateway would look it up.
pub fn secret_of(key_id: &str) -> Option<String> {
    match key_id {
        KEY_ID => Some(KEY_SECRET.into()),
        SESSION_KEY_ID => Some(SESSION_SECRET.into()),
        _ => None,
    }
}

/// One signed request.
#[derive(Debug, Clone, Copy)]
pub struct Vector {
    pub name: &'static str,
    pub method: &'static str,
    /// Path and query, as sent.
    pub target: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: &'static str,
}

impl Vector {
    /// The path.
    pub fn path(&self) -> &'static str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    /// The query, if any.
    pub fn query(&self) -> Option<&'static str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The headers as a map.
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in self.headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }
}

/// The signed requests.
pub const VECTORS: &[Vector] = &[
    Vector {
        name: "sts_query_post",
        method: "POST",
        target: "/aws/",
        headers: &[
            ("host", "gw.example.com"),
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Security-Token", "IQoJb3JpZ2luX2VjEHRlc3QtdG9rZW4tZm9yLXNpZ3Y0LXZlY3RvcnM="),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=ASIAQNZGKIQY56JQ7WML/20261206/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=3f8b90de21bd03b7ef9098e244adca5e61764c3ef51b0688a05210b8ccebcda5"),
            ("Content-Length", "43"),
        ],
        body: "Action=GetCallerIdentity&Version=2011-06-15",
    },
    Vector {
        name: "dynamodb_json_post",
        method: "POST",
        target: "/aws/",
        headers: &[
            ("host", "gw.example.com"),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", "DynamoDB_20120810.ListTables"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/eu-west-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=a1384701d978341a77b005ba03b135c8ef7c3820b966646f942a2c691f3fc123"),
            ("Content-Length", "12"),
        ],
        body: "{\"Limit\":10}",
    },
    Vector {
        name: "logs_json_post",
        method: "POST",
        target: "/aws/",
        headers: &[
            ("host", "gw.example.com"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "Logs_20140328.FilterLogEvents"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-west-2/logs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=5991278d68a3f98fec9163f36996348787a48976b71e6556f97f786c7fadb08d"),
            ("Content-Length", "51"),
        ],
        body: "{\"logGroupName\":\"/app/web\",\"filterPattern\":\"ERROR\"}",
    },
    Vector {
        name: "s3_get_unicode_key",
        method: "GET",
        target: "/aws/my-bucket/photos/caf%C3%A9%20menu%2B1.txt?response-content-type=text%2Fplain&versionId=3%2FL4kqtJlcpXroDTDmJ%2Brmsr",
        headers: &[
            ("host", "gw.example.com"),
            ("Range", "bytes=0-99"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Content-SHA256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=432f3db94aa546f21028707977dd27d818e8085fbe9cdabfeb24c4133f4d784b"),
        ],
        body: "",
    },
    Vector {
        name: "s3_put_body",
        method: "PUT",
        target: "/aws/my-bucket/reports/2026/q4.csv",
        headers: &[
            ("host", "gw.example.com"),
            ("Content-Type", "text/csv"),
            ("X-Amz-Meta-Owner", "  Alice   Smith "),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Content-SHA256", "492d5ea496056f1a6a6592241032fab764c321596317930b4fa0e1e8bc3b7470"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-owner, Signature=86e2910dd35eb02b188bb0e9e0e624b3192bd23239b5946fdd27e0056498d1be"),
            ("Content-Length", "8"),
        ],
        body: "a,b\n1,2\n",
    },
    Vector {
        name: "s3_presigned_get",
        method: "GET",
        target: "/aws/my-bucket/reports/2026/q4.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261206%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261206T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=87b821fcd136454454ec34e734ebb7d095b08313b11bf9af62b34c4f148cdf1d",
        headers: &[
            ("host", "gw.example.com"),
        ],
        body: "",
    },
    Vector {
        name: "s3_delete_objects",
        method: "POST",
        target: "/aws/my-bucket?delete",
        headers: &[
            ("host", "gw.example.com"),
            ("Content-Type", "application/xml"),
            ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Content-SHA256", "5b4aa6c098b8015856ce4709ec4615b007e47d94740fbffdf432d1943d316a2b"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/s3/aws4_request, SignedHeaders=content-md5;content-type;host;x-amz-content-sha256;x-amz-date, Signature=bbdc413a8fae7e4d222e83c4a4fdf59f1d4129c258a8ec1a0f4b0a8afdba18df"),
            ("Content-Length", "69"),
        ],
        body: "<Delete><Object><Key>a.txt</Key></Object><Quiet>true</Quiet></Delete>",
    },
    Vector {
        name: "s3_copy_object",
        method: "PUT",
        target: "/aws/dest-bucket/copy.txt",
        headers: &[
            ("host", "gw.example.com"),
            ("x-amz-copy-source", "/src-bucket/orig.txt"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Security-Token", "IQoJb3JpZ2luX2VjEHRlc3QtdG9rZW4tZm9yLXNpZ3Y0LXZlY3RvcnM="),
            ("X-Amz-Content-SHA256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=ASIAQNZGKIQY56JQ7WML/20261206/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-copy-source;x-amz-date;x-amz-security-token, Signature=badbde372671ee45c7f9b30faf704e60a3c14204d24b63b76914c384244fc95f"),
            ("Content-Length", "0"),
        ],
        body: "",
    },
    Vector {
        name: "s3_streaming_put",
        method: "PUT",
        target: "/aws/my-bucket/big.bin",
        headers: &[
            ("host", "gw.example.com"),
            ("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Content-SHA256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length, Signature=c3bd60b344a5cfb8382a1c7df1b7e956ea73ed4d7f9840ebfd5f2bd520339650"),
            ("Content-Length", "0"),
        ],
        body: "",
    },
    Vector {
        name: "lambda_invoke",
        method: "POST",
        target: "/aws/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations",
        headers: &[
            ("host", "gw.example.com"),
            ("X-Amz-Invocation-Type", "RequestResponse"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date;x-amz-invocation-type, Signature=ac7d17d804d2fd61adf5f83caabbd5ce08d3068520413449f28bac7edd4d36b9"),
            ("Content-Length", "7"),
        ],
        body: "{\"k\":1}",
    },
    Vector {
        name: "lambda_list_functions",
        method: "GET",
        target: "/aws/2015-03-31/functions/?MaxItems=10",
        headers: &[
            ("host", "gw.example.com"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=a38d6a34421bf017654d847be46d4dde38935b5193f43385a75db18fba488d66"),
        ],
        body: "",
    },
    Vector {
        name: "sts_presigned_get",
        method: "GET",
        target: "/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261206%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20261206T120000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=b2f5106e49bd9a8630711082f022bd6ce1fd91ec077e944bbbfecde9bcab4eef",
        headers: &[
            ("host", "sts.amazonaws.com"),
        ],
        body: "",
    },
    Vector {
        name: "monitoring_query_post",
        method: "POST",
        target: "/aws/",
        headers: &[
            ("host", "gw.example.com"),
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/monitoring/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=e68de759bdd04db92f7578594a916171ed72fa228652d5715fcd300d7bf2a406"),
            ("Content-Length", "57"),
        ],
        body: "Action=ListMetrics&Version=2010-08-01&Namespace=AWS%2FEC2",
    },
    Vector {
        name: "s3_put_unsigned_payload",
        method: "PUT",
        target: "/aws/my-bucket/logs/app.log",
        headers: &[
            ("host", "gw.example.com"),
            ("Content-MD5", "XUFAKrxLKna5cZ2REBfFkg=="),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/s3/aws4_request, SignedHeaders=content-md5;host;x-amz-content-sha256;x-amz-date, Signature=8742c75ce3326cf5f931cfd45acec5ee542a33ec74b2caee4e54a254fa2ede9e"),
            ("Content-Length", "5"),
        ],
        body: "hello",
    },
];

/// `aws-chunked` uploads with a CRC32 trailer, as botocore sends them (see the module's docs).
pub const CHUNKED: &[Vector] = &[
    Vector {
        name: "s3_put_trailer_one_chunk",
        method: "PUT",
        target: "/aws/my-bucket/notes/a.txt",
        headers: &[
            ("host", "gw.example.com"),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ("Content-Encoding", "aws-chunked"),
            ("X-Amz-Trailer", "x-amz-checksum-crc32"),
            ("X-Amz-Decoded-Content-Length", "63"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Content-SHA256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-sdk-checksum-algorithm;x-amz-trailer, Signature=e66dd278ad893521b79849dd5307e3eed987038b357887969f58511c9bfca525"),
        ],
        body: "3f\r\nhello, chunked world\nhello, chunked world\nhello, chunked world\n\r\n0\r\nx-amz-checksum-crc32:HD21sw==\r\n\r\n",
    },
    Vector {
        name: "s3_put_trailer_chunks",
        method: "PUT",
        target: "/aws/my-bucket/notes/b.txt",
        headers: &[
            ("host", "gw.example.com"),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ("Content-Encoding", "aws-chunked"),
            ("X-Amz-Trailer", "x-amz-checksum-crc32"),
            ("X-Amz-Decoded-Content-Length", "165"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Content-SHA256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-sdk-checksum-algorithm;x-amz-trailer, Signature=6631cfd30d63eb347f4b75f39e811121f688ee2cff884ea59d8151d0e3526dbd"),
        ],
        body: "40\r\nline 000 of a multi-chunk object\nline 001 of a multi-chunk objec\r\n40\r\nt\nline 002 of a multi-chunk object\nline 003 of a multi-chunk obj\r\n25\r\nect\nline 004 of a multi-chunk object\n\r\n0\r\nx-amz-checksum-crc32:Djv+cw==\r\n\r\n",
    },
    Vector {
        name: "s3_put_trailer_empty",
        method: "PUT",
        target: "/aws/my-bucket/notes/empty.txt",
        headers: &[
            ("host", "gw.example.com"),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ("Content-Encoding", "aws-chunked"),
            ("X-Amz-Trailer", "x-amz-checksum-crc32"),
            ("X-Amz-Decoded-Content-Length", "0"),
            ("X-Amz-Date", "20261206T120000Z"),
            ("X-Amz-Content-SHA256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-sdk-checksum-algorithm;x-amz-trailer, Signature=4b5bfee3ec4e0fc4a98dfd064b6362c9f6274360d98e5b8ba0c4fb20c6b6e901"),
        ],
        body: "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
    },
];
