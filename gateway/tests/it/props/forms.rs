//! Sign-in forms and Admin API queries, through the real router (its store unreachable): any
//! urlencoded body or query string is answered with a clear client error or "unavailable", never
//! a panic or an internal error.

use axum::body::Body;
use axum::extract::Query;
use claude_gateway::spend::admin::{AuditQuery, ListQuery};
use http::StatusCode;
use proptest::prelude::*;

use crate::edge::{fixture_with_idp, req, send};

/// One urlencoded pair, with names the handlers read and values that decode to anything.
fn pair() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("grant_type".to_owned()),
        Just("device_code".to_owned()),
        Just("refresh_token".to_owned()),
        Just("user_code".to_owned()),
        Just("surface".to_owned()),
        Just("limit".to_owned()),
        Just("after_id".to_owned()),
        Just("before_id".to_owned()),
        Just("scope_type".to_owned()),
        "[a-z_%+]{0,12}",
    ];
    let value = prop_oneof![
        Just("urn:ietf:params:oauth:grant-type:device_code".to_owned()),
        Just("refresh_token".to_owned()),
        Just("ABCD-EFGH".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        "[ -~]{0,40}",
        any::<String>(),
    ];
    (name, value, any::<bool>()).prop_map(|(n, v, encode)| {
        if encode {
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair(&n, &v)
                .finish()
        } else {
            format!("{n}={v}")
        }
    })
}

/// A form body: encoded pairs joined by `&` (repeats and empties included), or raw bytes.
fn form() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(pair(), 0..8).prop_map(|p| p.join("&").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => prop::collection::vec(prop_oneof![Just(b'%'), Just(b'&'), Just(b'='), Just(b'+'), Just(0xff), any::<u8>()], 0..64),
    ]
}

fn answer_is_clean(path: &str, status: StatusCode, body: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        status.is_client_error()
            || status == StatusCode::SERVICE_UNAVAILABLE
            || status.is_success(),
        "{path}: {status} {body}"
    );
    if path.starts_with("/oauth/") && status != StatusCode::PAYLOAD_TOO_LARGE {
        let v: serde_json::Value = serde_json::from_str(body)
            .map_err(|_| TestCaseError::fail(format!("{path}: not JSON: {body}")))?;
        prop_assert!(
            status.is_success() || v["error"].is_string(),
            "{path}: {body}"
        );
    }
    Ok(())
}

proptest! {
    // Each case is a request through the router and a refused store connection.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sign_in_forms_answer_any_body_cleanly(body in form(), route in 0usize..4) {
        let path = ["/oauth/token", "/oauth/device_authorization", "/device", "/device/deny"][route];
        let rt = crate::support::runtime();
        let (status, text) = rt.block_on(async {
            // A refresh grant reaches the IdP: a closed port here.
            let f = fixture_with_idp("http://127.0.0.1:1");
            let r = req("POST", path)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(body))
                .unwrap();
            let a = send(&f.app, r).await;
            (a.status, a.body)
        });
        answer_is_clean(path, status, &text)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn form_pairs_decode_without_panic(body in form()) {
        // The decoder `/oauth/token` and `/oauth/device_authorization` read their fields with.
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
        prop_assert!(pairs.len() <= body.len() + 1);
    }

    #[test]
    fn admin_queries_parse_or_are_refused(body in form()) {
        let query = String::from_utf8_lossy(&body).replace(['#', ' '], "");
        let Ok(uri) = format!("http://gw.example.com/v1/organizations/spend_limits?{query}").parse::<http::Uri>() else {
            return Ok(());
        };
        let _ = Query::<ListQuery>::try_from_uri(&uri);
        let _ = Query::<AuditQuery>::try_from_uri(&uri);
    }
}
