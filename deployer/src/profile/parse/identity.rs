//! The identity provider keys: a new or existing Cognito pool, or any OpenID Connect provider.

use crate::profile::model::*;
use crate::profile::reader::Reader;

/// Reads `IDP_MODE` and the keys of that mode.
pub fn idp(r: &mut Reader, hostname: &str) -> Option<Idp> {
    match r
        .choice("IDP_MODE", &["new-cognito", "existing-cognito", "oidc"])
        .as_str()
    {
        "new-cognito" => {
            let admin_email = r.required("COGNITO_ADMIN_EMAIL", "with IDP_MODE=new-cognito");
            if !admin_email.is_empty() && !admin_email.contains('@') {
                r.err("COGNITO_ADMIN_EMAIL", "is not an e-mail address");
            }
            let domain_prefix = r.required("COGNITO_DOMAIN_PREFIX", "with IDP_MODE=new-cognito");
            let ok = (3..=63).contains(&domain_prefix.len())
                && domain_prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !["aws", "amazon", "cognito"]
                    .iter()
                    .any(|w| domain_prefix.contains(w));
            if !domain_prefix.is_empty() && !ok {
                r.err("COGNITO_DOMAIN_PREFIX", format!("{domain_prefix:?} must be 3-63 of a-z 0-9 - and not contain aws, amazon or cognito"));
            }
            Some(Idp::NewCognito {
                admin_email,
                domain_prefix,
                mfa: r.choice("COGNITO_MFA", &["OFF", "OPTIONAL", "ON"]),
                developer_group: r.raw("COGNITO_DEVELOPER_GROUP"),
                restricted_group: r.raw("COGNITO_RESTRICTED_GROUP"),
            })
        }
        "existing-cognito" => {
            let pool_id = r.required("COGNITO_USER_POOL_ID", "with IDP_MODE=existing-cognito");
            if !pool_id.is_empty() && !pool_id.contains('_') {
                r.err(
                    "COGNITO_USER_POOL_ID",
                    format!("{pool_id:?} is not a user pool id like us-east-1_AbCdEf123"),
                );
            }
            Some(Idp::ExistingCognito { pool_id })
        }
        "oidc" => {
            let issuer = r.required("OIDC_ISSUER", "with IDP_MODE=oidc");
            match url::Url::parse(&issuer) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
                _ if issuer.is_empty() => {}
                _ => r.err("OIDC_ISSUER", format!("{issuer:?} is not an https URL")),
            }
            if issuer.contains(hostname) && !hostname.is_empty() {
                r.err(
                    "OIDC_ISSUER",
                    "points at the gateway itself; it must be the identity provider",
                );
            }
            let client_id = r.required("OIDC_CLIENT_ID", "with IDP_MODE=oidc");
            let secret_arn = r.required(
                "OIDC_CLIENT_SECRET_ARN",
                "with IDP_MODE=oidc: a Secrets Manager secret holding the client secret",
            );
            if !secret_arn.is_empty() && !secret_arn.contains(":secretsmanager:") {
                r.err(
                    "OIDC_CLIENT_SECRET_ARN",
                    format!("{secret_arn:?} is not a Secrets Manager secret ARN"),
                );
            }
            let scopes = r.list("OIDC_SCOPES");
            if !scopes.iter().any(|s| s == "openid") {
                r.err("OIDC_SCOPES", "must include openid");
            }
            let mut extra = Vec::new();
            for item in r.list("OIDC_EXTRA_AUTH_PARAMS") {
                match item.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        extra.push((k.trim().to_owned(), v.trim().to_owned()))
                    }
                    _ => r.err(
                        "OIDC_EXTRA_AUTH_PARAMS",
                        format!("{item:?} is not key=value"),
                    ),
                }
            }
            Some(Idp::Oidc(OidcSettings {
                issuer,
                client_id,
                secret_arn,
                groups_claim: r.raw("OIDC_GROUPS_CLAIM"),
                scopes,
                email_claims: r.list("OIDC_EMAIL_CLAIM"),
                userinfo_fallback: r.bool("OIDC_USERINFO_FALLBACK"),
                scope_on_refresh: r.bool("OIDC_SCOPE_ON_REFRESH"),
                extra_auth_params: extra,
            }))
        }
        _ => None,
    }
}
