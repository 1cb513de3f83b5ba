//! The real answers that must come back masked: Secrets Manager, Parameter Store, STS, and S3
//! objects holding a private key or an env file.

use super::*;

const SECRET_KEY: &str = "k9XbQe2uVr7T/aNw4LmPz8Hs+Dc1Yf6Go3JtRiEq";

fn run(body: &str, content_type: Option<&str>, rules: &Rules) -> (String, Masked<'static>) {
    let out = mask(body.as_bytes(), content_type, rules).unwrap();
    let owned = Masked {
        body: Cow::Owned(out.body.to_vec()),
        ..out
    };
    (String::from_utf8(owned.body.to_vec()).unwrap(), owned)
}

#[test]
fn secrets_manager_get_secret_value_hides_the_secret_string() {
    let body = r#"{"ARN":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/db-Ab12Cd","Name":"prod/db","VersionId":"a1b2c3d4-5678-90ab-cdef-EXAMPLE11111","SecretString":"{\"username\":\"app\",\"password\":\"Tr0ub4dor&3-horse\",\"host\":\"db.internal\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1.523477145713E9}"#;
    let (out, masked) = run(body, Some("application/x-amz-json-1.1"), &Rules::default());
    assert!(!out.contains("Tr0ub4dor"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["SecretString"], "[MASKED:secret]");
    assert_eq!(json["Name"], "prod/db");
    assert_eq!(json["VersionStages"][0], "AWSCURRENT");
    assert_eq!(json["CreatedDate"].as_f64(), Some(1.523477145713e9));
    assert_eq!(masked.counts.get(Kind::Secret), 1, "{out}");
    assert_eq!(masked.format, Format::Json);
}

#[test]
fn ssm_get_parameter_with_decryption_hides_the_value_at_a_configured_path() {
    let body = r#"{"Parameter":{"Name":"/prod/db/master","Type":"SecureString","Value":"Tr0ub4dor&3-horse","Version":4,"LastModifiedDate":1.700000000E9,"ARN":"arn:aws:ssm:eu-west-1:111122223333:parameter/prod/db/master","DataType":"text"}}"#;
    let rules = Rules::default()
        .with_paths(["Parameter.Value", "Parameters.Value"])
        .unwrap();
    let (out, masked) = run(body, Some("application/x-amz-json-1.1"), &rules);
    assert!(!out.contains("Tr0ub4dor"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["Parameter"]["Value"], "[MASKED:secret]");
    assert_eq!(json["Parameter"]["Name"], "/prod/db/master");
    assert_eq!(masked.counts.total(), 1);

    // The path is what hides it: a plain value has no shape a detector knows.
    let (bare, _) = run(body, Some("application/x-amz-json-1.1"), &Rules::default());
    assert!(bare.contains("Tr0ub4dor"));
}

#[test]
fn sts_assume_role_hides_the_credentials() {
    let body = format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::111122223333:assumed-role/dev/alice</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:alice</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIA3XFRBF535PLBQWER</AccessKeyId>
      <SecretAccessKey>{SECRET_KEY}</SecretAccessKey>
      <SessionToken>IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6+sessiontokenbody==</SessionToken>
      <Expiration>2026-12-06T18:00:00Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
    );
    let (out, masked) = run(&body, Some("text/xml"), &Rules::default());
    for secret in [SECRET_KEY, "IQoJb3JpZ2luX2VjEJr", "ASIA3XFRBF535PLBQWER"] {
        assert!(!out.contains(secret), "{secret} in {out}");
    }
    assert!(out.contains("<SecretAccessKey>[MASKED:aws_secret_access_key]</SecretAccessKey>"));
    assert!(out.contains("<SessionToken>[MASKED:token]</SessionToken>"));
    assert!(out.contains("<AccessKeyId>[MASKED:aws_access_key_id]</AccessKeyId>"));
    assert!(out.contains("<Expiration>2026-12-06T18:00:00Z</Expiration>"));
    assert!(out.contains("AROA3XFRBF535PLBIFPI4:alice"));
    assert_eq!(masked.format, Format::Xml);
    assert_eq!(masked.counts.total(), 3);
}

#[test]
fn an_s3_object_holding_a_private_key_hides_the_block() {
    let body = "# deploy key for the build host\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDmQuW0ri8example0keybody0AAAAA\n-----END OPENSSH PRIVATE KEY-----\nhost: build-1\n";
    let (out, masked) = run(body, Some("binary/octet-stream"), &Rules::default());
    assert_eq!(
        out,
        "# deploy key for the build host\n[MASKED:private_key]\nhost: build-1\n"
    );
    assert_eq!(masked.counts.get(Kind::PrivateKey), 1);
}

#[test]
fn an_s3_object_holding_an_env_file_hides_its_secrets() {
    let body = format!(
        "AWS_ACCESS_KEY_ID=AKIA3XFRBF535PLBQWER\nAWS_SECRET_ACCESS_KEY={SECRET_KEY}\nAWS_REGION=eu-west-1\nDATABASE_URL=postgres://app:Tr0ub4dor3@db.internal:5432/app\nSTRIPE_API_KEY=sk_live_51Habc\nLOG_LEVEL=info\n"
    );
    let (out, _) = run(&body, Some("text/plain"), &Rules::default());
    assert_eq!(
        out,
        "AWS_ACCESS_KEY_ID=[MASKED:aws_access_key_id]\nAWS_SECRET_ACCESS_KEY=[MASKED:aws_secret_access_key]\nAWS_REGION=eu-west-1\nDATABASE_URL=postgres://app:[MASKED:password]@db.internal:5432/app\nSTRIPE_API_KEY=[MASKED:secret]\nLOG_LEVEL=info\n"
    );
}
