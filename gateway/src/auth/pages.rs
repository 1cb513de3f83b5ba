//! The browser-facing pages of sign-in. Plain HTML, no script, a strict CSP whose `form-action`
//! allows only this gateway and the IdP (browsers enforce it along the redirect chain).

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, StatusCode};

use super::oauth_error::no_store;

use crate::http::pages::{escape, style_hash, STYLE};

/// A page and the origins its forms may lead to.
pub fn page(status: StatusCode, title: &str, body: &str, form_origins: &[String]) -> Response {
    let mut form_action = String::from("'self'");
    for o in form_origins {
        form_action.push(' ');
        form_action.push_str(o);
    }
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{}'; form-action {form_action}; base-uri 'none'; frame-ancestors 'none'",
        style_hash()
    );
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    (
        status,
        [
            (CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (CONTENT_SECURITY_POLICY, csp),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        html,
    )
        .into_response()
}

/// A page with a message and nothing to do.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(status, title, &format!("<p>{}</p>", escape(text)), &[])
}

/// The page of a failure that is nobody's fault to explain (randomness or sealing failed).
pub fn went_wrong() -> Response {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Try again.",
    )
}

/// A `302` to `to`, cached by no one.
pub fn found(to: &str) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(loc) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, loc);
    }
    no_store(res.headers_mut());
    res
}

/// Where a person types the code shown by their terminal.
pub fn enter_code(form_origins: &[String], notice: Option<&str>) -> Response {
    let notice = notice
        .map(|n| format!("<p class=\"notice\">{}</p>", escape(n)))
        .unwrap_or_default();
    let body = format!(
        "{notice}<p>Enter the code shown in your terminal.</p>\
<form method=\"post\" action=\"/device\"><label for=\"user_code\">Code</label> \
<input id=\"user_code\" name=\"user_code\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" maxlength=\"16\" required> \
<button type=\"submit\">Continue</button></form>"
    );
    page(
        StatusCode::OK,
        "Sign in to Claude Code",
        &body,
        form_origins,
    )
}

/// The confirmation step for a pre-filled code: nothing happens until the person presses a button.
pub fn confirm(display_code: &str, form_origins: &[String], notice: Option<&str>) -> Response {
    let code = escape(display_code);
    let notice = notice
        .map(|n| format!("<p class=\"notice\">{}</p>", escape(n)))
        .unwrap_or_default();
    let body = format!(
        "{notice}<p>Check that this code matches the one in your terminal:</p><p class=\"code\">{code}</p>\
<form method=\"post\" action=\"/device\"><input type=\"hidden\" name=\"user_code\" value=\"{code}\">\
<button type=\"submit\" id=\"approve\">Approve and sign in</button> \
<button type=\"submit\" id=\"deny\" formaction=\"/device/deny\" class=\"secondary\">Deny</button></form>\
<p>If you did not start a sign-in, press Deny.</p>"
    );
    page(StatusCode::OK, "Approve sign-in?", &body, form_origins)
}
