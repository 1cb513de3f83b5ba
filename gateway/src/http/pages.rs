//! Unauthenticated documents: the landing page and the protocol this gateway serves.

use std::sync::LazyLock;

use aws_lc_rs::digest;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};

use crate::state::AppState;

/// The one stylesheet of every page, inline and allowed by its hash.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1f1f1f}code{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}dt{font-weight:600}pre{background:#f2f2f2;padding:.5rem;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere}.code{font:600 2rem ui-monospace,monospace;letter-spacing:.15em}button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid #555;background:#1f1f1f;color:#fff;cursor:pointer}button.secondary{background:#fff;color:#1f1f1f}input{font:inherit;padding:.4rem}.notice{border-left:4px solid #c60;padding-left:.75rem}";

static STYLE_HASH: LazyLock<String> =
    LazyLock::new(|| B64.encode(digest::digest(&digest::SHA256, STYLE.as_bytes())));

/// Base64 SHA-256 of [`STYLE`], for `style-src`.
pub fn style_hash() -> &'static str {
    STYLE_HASH.as_str()
}

/// The landing page's CSP: its own style and nothing else.
static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        style_hash()
    )
});

/// The contract served at `/protocol`.
const PROTOCOL: &str = include_str!("protocol.md");

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `GET /`.
pub async fn landing(State(state): State<AppState>) -> Response {
    let issuer_host = state
        .config
        .oidc
        .as_ref()
        .and_then(|o| url::Url::parse(&o.issuer).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let origin = escape(&state.origin);
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Claude gateway</title>\
<style>{STYLE}</style></head><body><h1>Claude gateway</h1>\
<p>This gateway serves Claude Code to your organization. To sign in, run <code>claude</code> and type \
<code>/login</code>; your administrator's managed settings point it here.</p>\
<dl><dt>Gateway URL</dt><dd><code>{origin}</code></dd><dt>Identity provider</dt><dd>{}</dd>\
<dt>Version</dt><dd>{}</dd></dl><p><a href=\"/protocol\">The protocol this gateway serves</a></p></body></html>",
        escape(&issuer_host),
        env!("CARGO_PKG_VERSION"),
    );
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, CSP.as_str()),
            (CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /protocol`.
pub async fn protocol() -> Response {
    ([(CONTENT_TYPE, "text/markdown; charset=utf-8")], PROTOCOL).into_response()
}
