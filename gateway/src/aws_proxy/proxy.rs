//! The route: any method on `/aws/` and below. The stages in order: the gateway credential in the
//! request opened before any body is read; the body read (bounded); the client's signature
//! verified (and an aws-chunked body decoded); the operation named; membership checked now;
//! the call counted and decided; held for a person when risky; re-signed with the just-in-time
//! project credential and sent; the answer masked; and the call recorded, whatever the outcome,
//! in one place on the way out, with the model turn whose tool call made it when one matches.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use http::request::Parts;
use http::Request;
use http_body_util::BodyExt;

use super::answer::Answered;
use super::fault::{Fault, Protocol};
use super::serve::{self, Mode, Principal, Serving, Trail, Unsigned};
use super::sigv4::{self, KeyId, Payload, SigV4Error};
use crate::aws_access::gateway_credential::{self, ProxySession};
use crate::http::edge::RequestId;
use crate::state::AppState;

/// The proxy's routes: every method on `/aws/` and below (the approval pages under
/// `/aws/approvals/` hand signed requests here).
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(super::recordings::routes())
        .route("/aws", any(handle))
        .route("/aws/", any(handle))
        .route("/aws/{*rest}", any(handle))
}

/// The path prefix clients put in `endpoint_url`; what follows is the service's own path.
pub const PREFIX: &str = "/aws";

/// The most bytes of a session token looked at before the body is read.
const MAX_TOKEN_BYTES: usize = 8_192;

/// The handler.
pub async fn handle(State(state): State<AppState>, req: Request<Body>) -> Response {
    let now = state.clock.now();
    let (parts, body) = req.into_parts();
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .and_then(|r| r.0.to_str().ok())
        .unwrap_or("unknown")
        .to_owned();
    let scope_service = claimed_service(&parts).unwrap_or_default();
    let protocol = Protocol::of(&scope_service, &parts.headers, parts.uri.query());
    let mut trail = Trail::new(now);
    let outcome = call(&state, &parts, body, &mut trail).await;
    serve::finish(&state, trail, &outcome, protocol);
    match outcome {
        Ok(a) => a.response,
        Err(fault) => fault.respond(protocol, &request_id),
    }
}

/// Layer function: a SigV4-signed request under `/aws/approvals/` is a call for the proxy (S3,
/// path-style, to a bucket named `approvals`), not a visit to the approval pages there.
pub async fn signed_to_proxy(
    State(state): State<AppState>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path().starts_with("/aws/approvals/") && is_signed(&req) {
        return handle(State(state), req).await;
    }
    next.run(req).await
}

/// Whether a request carries an AWS signature, in either form.
fn is_signed<B>(req: &Request<B>) -> bool {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"));
    header
        || req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("X-Amz-Signature=")))
}

/// The `Credential` a request claims (`AKID/date/region/service/aws4_request`), before anything
/// is verified: from the `Authorization` header, or a presigned URL's query.
fn claimed_credential(parts: &Parts) -> Option<String> {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match header {
        Some(auth) => Some(
            auth.split("Credential=")
                .nth(1)?
                .split(',')
                .next()?
                .trim()
                .to_owned(),
        ),
        None => query_param(parts, "X-Amz-Credential"),
    }
}

/// A query parameter, decoded.
fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let value = parts
        .uri
        .query()?
        .split('&')
        .find_map(|p| p.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))?;
    Some(
        percent_encoding::percent_decode_str(value)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// The service a request's credential scope claims (for the shape of an early error).
fn claimed_service(parts: &Parts) -> Option<String> {
    claimed_credential(parts)?
        .split('/')
        .nth(3)
        .map(str::to_owned)
}

/// The access key id and session token a request carries, before its signature is checked.
fn claimed_key(parts: &Parts) -> Option<(String, Option<String>)> {
    let key = claimed_credential(parts)?.split('/').next()?.to_owned();
    let token = match parts
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
    {
        Some(t) => Some(t.to_owned()),
        None => query_param(parts, "X-Amz-Security-Token"),
    };
    Some((key, token))
}

/// Reads the body up to `limit` bytes.
async fn read_body(body: Body, limit: u64) -> Result<Bytes, Fault> {
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Fault::TooLarge(limit)),
        Err(_) => Err(Fault::BodyIncomplete),
    }
}

/// A request whose credential and signature hold: whose it is, and what it carries.
struct Inbound {
    session: ProxySession,
    service: String,
    region: String,
    /// The body, decoded when it came aws-chunked.
    body: Bytes,
    /// An aws-chunked body's trailers, to send as headers.
    trailers: Vec<(String, String)>,
}

/// The call, up to the answer or a fault; `trail` collects what the record needs.
async fn call(
    state: &AppState,
    parts: &Parts,
    body: Body,
    trail: &mut Trail,
) -> Result<Answered, Fault> {
    let gw = Serving::of(state)?;
    let Inbound {
        session,
        service,
        region,
        body,
        trailers,
    } = inbound(&gw, parts, body, trail).await?;
    // What the call is: its path below the prefix.
    let path = parts
        .uri
        .path()
        .strip_prefix(PREFIX)
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .map(|p| if p.is_empty() { "/" } else { p })
        .unwrap_or("/")
        .to_owned();
    let principal = Principal {
        session_id: session.sid,
        who: session.who,
    };
    serve::serve(
        &gw,
        &principal,
        Unsigned {
            method: &parts.method,
            service: &service,
            region: &region,
            path: &path,
            query: parts.uri.query().map(without_signature),
            headers: &parts.headers,
            extra: &trailers,
            body,
        },
        Mode::Relay,
        trail,
    )
    .await
}

/// The credential opened, the body read, the signature checked, an aws-chunked body decoded.
/// The credential must be one this gateway issued, still good, before a byte of body is read:
/// nobody without one makes the gateway buffer anything.
async fn inbound(
    gw: &Serving<'_>,
    parts: &Parts,
    body: Body,
    trail: &mut Trail,
) -> Result<Inbound, Fault> {
    let now = trail.at;
    let (key, token) = claimed_key(parts).ok_or(Fault::Signature(SigV4Error::Missing))?;
    let unknown = || {
        Fault::Signature(SigV4Error::UnknownKey {
            s3: claimed_service(parts).as_deref() == Some("s3"),
        })
    };
    if token.as_ref().is_some_and(|t| t.len() > MAX_TOKEN_BYTES) {
        return Err(unknown());
    }
    let keys = &gw.broker.proxy_keys;
    let (session, secret) =
        gateway_credential::open(keys, &gw.state.sealer, &key, token.as_deref(), now)
            .ok_or_else(unknown)?;
    // From here the call is someone's (the session is sealed by this gateway), and recorded as
    // theirs even if its signature fails: whoever holds the token without the secret is news.
    trail.level = session.who.level;
    trail.principal = Some(Principal {
        session_id: session.sid.clone(),
        who: session.who.clone(),
    });
    let body = read_body(body, gw.settings.max_request_bytes).await?;
    trail.request_bytes = body.len() as u64;
    let verified = sigv4::verify(
        &sigv4::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            authority: parts.uri.authority().map(|a| a.as_str()),
        },
        &body,
        now,
        |k: &KeyId<'_>| {
            (k.access_key_id == session.sid && k.session_token == token.as_deref())
                .then(|| secret.clone())
        },
    )?;
    let (body, trailers) = match &verified.payload {
        Payload::StreamingUnverified { .. } => {
            let max = usize::try_from(gw.settings.max_request_bytes).unwrap_or(usize::MAX);
            let decoded = sigv4::decode_chunked(&body, &verified, &secret, &parts.headers, max)?;
            (Bytes::from(decoded.body), decoded.trailers)
        }
        _ => (body, Vec::new()),
    };
    Ok(Inbound {
        session,
        service: verified.scope.service,
        region: verified.scope.region,
        body,
        trailers,
    })
}

/// A query without a presigned URL's own parameters (`X-Amz-Signature`, `X-Amz-Credential`...),
/// and without S3's overrides of the answer's type and coding (`response-content-type`,
/// `response-content-encoding`): whether an answer is text to mask follows what AWS stores, not
/// what the caller asks it to be labelled. Otherwise as received.
fn without_signature(query: &str) -> String {
    query
        .split('&')
        .filter(|p| {
            let name = p.split('=').next().unwrap_or_default();
            !super::params::is_signature_param(name)
                && !name.eq_ignore_ascii_case("response-content-type")
                && !name.eq_ignore_ascii_case("response-content-encoding")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presigned_urls_own_parameters_are_not_passed_on() {
        assert_eq!(
            without_signature(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&prefix=a&X-Amz-Signature=ff&list-type=2"
            ),
            "prefix=a&list-type=2"
        );
        assert_eq!(without_signature("versionId=1"), "versionId=1");
        // The caller cannot relabel an answer as binary to get it past masking.
        assert_eq!(
            without_signature(
                "response-content-type=application%2Foctet-stream&versionId=1&Response-Content-Encoding=gzip"
            ),
            "versionId=1"
        );
    }

    #[test]
    fn the_claimed_key_and_service_are_read_from_either_form() {
        let req = Request::builder()
            .uri("/aws/b/k")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AGWABC/20261206/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            )
            .header("x-amz-security-token", "tok")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(
            claimed_key(&parts),
            Some(("AGWABC".into(), Some("tok".into())))
        );
        assert_eq!(claimed_service(&parts).as_deref(), Some("s3"));
        let req = Request::builder()
            .uri("/aws/b/k?X-Amz-Credential=AGWXYZ%2F20261206%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Security-Token=t%2B1")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(
            claimed_key(&parts),
            Some(("AGWXYZ".into(), Some("t+1".into())))
        );
        let (parts, _) = Request::builder()
            .uri("/aws/")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(claimed_key(&parts), None);
    }
}
