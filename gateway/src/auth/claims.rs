//! The claim gates: from a verified id_token's claims (and userinfo, when allowed to fill gaps)
//! to the identity the gateway signs, or the reason sign-in is refused.

use serde_json::Value;

use super::token::Identity;
use crate::config::Oidc;

/// Why an IdP identity is not admitted. The text is what the audit log records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `sub`.
    #[error("IdP claims missing required sub")]
    NoSubject,
    /// `email_verified` is false.
    #[error("email address not verified at the IdP")]
    EmailNotVerified,
    /// Domains are restricted and the IdP did not say whether the email is verified.
    #[error("the IdP did not say the email address is verified")]
    EmailVerifiedMissing,
    /// An email is needed (domains are restricted) but none came.
    #[error("id_token missing email claim")]
    NoEmail,
    /// Outside `allowed_email_domains`.
    #[error("email domain not allowed")]
    Domain,
    /// In none of `allowed_groups`.
    #[error("user is not a member of an allowed group")]
    Group,
}

/// Reads a claim by flat name or RFC 6901 JSON pointer.
pub fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    }
}

fn email_of(claims: &Value, oidc: &Oidc) -> Option<String> {
    oidc.email_claim
        .to_vec()
        .iter()
        .find_map(|name| claim(claims, name).and_then(Value::as_str))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
}

fn groups_of(claims: &Value, oidc: &Oidc) -> Option<Vec<String>> {
    match claim(claims, &oidc.groups_claim)? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

/// `email_verified` as the IdP sent it: a boolean, or the strings `"true"`/`"false"` some send.
fn verified_of(doc: &Value) -> Option<bool> {
    match doc.get("email_verified")? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Whether the id_token lacks what userinfo could provide (so it is worth asking).
pub fn needs_userinfo(claims: &Value, oidc: &Oidc) -> bool {
    oidc.userinfo_fallback
        && (email_of(claims, oidc).is_none() || groups_of(claims, oidc).is_none())
}

/// Applies every gate. `userinfo` only fills what the id_token lacks; it must name the same `sub`
/// (the caller checks that before passing it).
pub fn admit(claims: &Value, userinfo: Option<&Value>, oidc: &Oidc) -> Result<Identity, Refusal> {
    let sub_claim = oidc.user_id_claim.as_deref().unwrap_or("sub");
    let sub = claim(claims, sub_claim)
        .and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        })
        .filter(|s| !s.is_empty())
        .ok_or(Refusal::NoSubject)?;
    // `email_verified` is read from the document the email came from.
    let (email, verified) = match email_of(claims, oidc) {
        Some(e) => (Some(e), verified_of(claims)),
        None => match userinfo.and_then(|u| email_of(u, oidc)) {
            Some(e) => (Some(e), userinfo.and_then(verified_of)),
            None => (None, verified_of(claims)),
        },
    };
    if verified == Some(false) {
        return Err(Refusal::EmailNotVerified);
    }
    let groups = groups_of(claims, oidc)
        .or_else(|| userinfo.and_then(|u| groups_of(u, oidc)))
        .unwrap_or_default();
    if let Some(domains) = &oidc.allowed_email_domains {
        let email = email.as_deref().ok_or(Refusal::NoEmail)?;
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .ok_or(Refusal::Domain)?;
        let ok = domains.iter().any(|d| {
            d.trim()
                .trim_start_matches('@')
                .eq_ignore_ascii_case(&domain)
        });
        if !ok {
            return Err(Refusal::Domain);
        }
        if verified.is_none() && !oidc.accept_missing_email_verified {
            return Err(Refusal::EmailVerifiedMissing);
        }
    }
    if let Some(allowed) = &oidc.allowed_groups {
        if !groups.iter().any(|g| allowed.contains(g)) {
            return Err(Refusal::Group);
        }
    }
    let name = claims
        .get("name")
        .or_else(|| userinfo.and_then(|u| u.get("name")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Multi-factor proof comes from the id_token only: userinfo does not describe a sign-in.
    let amr: Vec<String> = claims
        .get("amr")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(32)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let auth_time = claims.get("auth_time").and_then(Value::as_i64);
    Ok(Identity {
        sub,
        email,
        name,
        groups,
        mfa_at: crate::aws_access::mfa::proven_at(&amr, auth_time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, MapEnv};
    use serde_json::json;

    fn oidc(extra: &str) -> Oidc {
        let yaml = format!(
            "listen: {{host: 127.0.0.1}}\nupstreams: [{{provider: bedrock, region: us-east-1}}]\nsession: {{jwt_secret: 0123456789abcdef0123456789abcdef}}\nstore: {{postgres_url: 'postgres://x@h/d'}}\noidc: {{issuer: 'https://i.example.com', client_id: c, client_secret: s{extra}}}\n"
        );
        load(&yaml, &MapEnv::new()).unwrap().config.oidc.unwrap()
    }

    #[test]
    fn a_multi_factor_sign_in_is_remembered_from_the_id_token_only() {
        let o = oidc("");
        let signed = json!({"sub": "u1", "amr": ["pwd", "otp"], "auth_time": 1_700_000_000});
        assert_eq!(
            admit(&signed, None, &o).unwrap().mfa_at,
            Some(1_700_000_000)
        );
        let one = json!({"sub": "u1", "amr": ["pwd"], "auth_time": 1_700_000_000});
        assert_eq!(admit(&one, None, &o).unwrap().mfa_at, None);
        let odd = json!({"sub": "u1", "amr": "mfa", "auth_time": "yesterday"});
        assert_eq!(admit(&odd, None, &o).unwrap().mfa_at, None);
        let info = json!({"sub": "u1", "amr": ["mfa"], "auth_time": 1_700_000_000});
        assert_eq!(
            admit(&json!({"sub": "u1"}), Some(&info), &o)
                .unwrap()
                .mfa_at,
            None
        );
    }

    #[test]
    fn a_plain_identity_passes() {
        let who = admit(
            &json!({"sub": "u1", "email": "a@example.com", "name": "A", "groups": ["eng", 3]}),
            None,
            &oidc(""),
        )
        .unwrap();
        assert_eq!(
            who,
            Identity {
                sub: "u1".into(),
                email: Some("a@example.com".into()),
                name: Some("A".into()),
                groups: vec!["eng".into()],
                mfa_at: None,
            }
        );
    }

    #[test]
    fn gates_refuse_with_reasons() {
        let o = oidc(", allowed_email_domains: ['@Example.com'], allowed_groups: [eng]");
        assert_eq!(
            admit(&json!({"email": "a@example.com"}), None, &o),
            Err(Refusal::NoSubject)
        );
        assert_eq!(
            admit(
                &json!({"sub": "u", "email": "a@example.com", "email_verified": false, "groups": ["eng"]}),
                None,
                &o
            ),
            Err(Refusal::EmailNotVerified)
        );
        assert_eq!(
            admit(
                &json!({"sub": "u", "email": "a@example.com", "email_verified": "false", "groups": ["eng"]}),
                None,
                &o
            ),
            Err(Refusal::EmailNotVerified)
        );
        assert_eq!(
            admit(&json!({"sub": "u", "groups": ["eng"]}), None, &o),
            Err(Refusal::NoEmail)
        );
        assert_eq!(
            admit(
                &json!({"sub": "u", "email": "a@evil.com", "groups": ["eng"]}),
                None,
                &o
            ),
            Err(Refusal::Domain)
        );
        assert_eq!(
            admit(
                &json!({"sub": "u", "email": "a@example.com.evil.com", "groups": ["eng"]}),
                None,
                &o
            ),
            Err(Refusal::Domain)
        );
        assert_eq!(
            admit(
                &json!({"sub": "u", "email": "a@EXAMPLE.com", "email_verified": true, "groups": ["Eng"]}),
                None,
                &o
            ),
            Err(Refusal::Group),
            "groups match exactly"
        );
        assert!(admit(
            &json!({"sub": "u", "email": "a@EXAMPLE.com", "email_verified": true, "groups": "eng"}),
            None,
            &o
        )
        .is_ok());
    }

    #[test]
    fn a_domain_gate_wants_the_email_said_verified() {
        let o = oidc(", allowed_email_domains: [example.com]");
        let silent = json!({"sub": "u", "email": "a@example.com"});
        assert_eq!(admit(&silent, None, &o), Err(Refusal::EmailVerifiedMissing));
        assert!(admit(
            &json!({"sub": "u", "email": "a@example.com", "email_verified": "true"}),
            None,
            &o
        )
        .is_ok());
        // Verified or not is read where the email came from: here, userinfo.
        let o = oidc(", allowed_email_domains: [example.com], userinfo_fallback: true");
        let thin = json!({"sub": "u", "email_verified": true});
        assert_eq!(
            admit(
                &thin,
                Some(&json!({"sub": "u", "email": "a@example.com"})),
                &o
            ),
            Err(Refusal::EmailVerifiedMissing)
        );
        assert!(admit(
            &thin,
            Some(&json!({"sub": "u", "email": "a@example.com", "email_verified": true})),
            &o
        )
        .is_ok());
        // The switch, for an IdP that never sends the claim.
        let o = oidc(", allowed_email_domains: [example.com], accept_missing_email_verified: true");
        assert!(admit(&silent, None, &o).is_ok());
        // Without a domain gate the email is not a credential, and its absence is not asked about.
        assert!(admit(&silent, None, &oidc("")).is_ok());
    }

    #[test]
    fn pointers_fallbacks_and_userinfo() {
        let o = oidc(", groups_claim: /resource_access/gw/roles, email_claim: [upn, email], userinfo_fallback: true");
        let claims = json!({"sub": "u", "upn": "u@corp.example", "resource_access": {"gw": {"roles": ["admin"]}}});
        let who = admit(&claims, None, &o).unwrap();
        assert_eq!(who.email.as_deref(), Some("u@corp.example"));
        assert_eq!(who.groups, ["admin"]);
        assert!(!needs_userinfo(&claims, &o));
        let thin = json!({"sub": "u"});
        assert!(needs_userinfo(&thin, &o));
        let who = admit(&thin, Some(&json!({"sub": "u", "email": "e@x.example", "resource_access": {"gw": {"roles": ["r"]}}})), &o).unwrap();
        assert_eq!(
            (who.email.as_deref(), who.groups.as_slice()),
            (Some("e@x.example"), &["r".to_owned()][..])
        );
    }
}
