//! The floor: a bare HTTP/1.1 proxy, in a process of its own like the gateway, that forwards each
//! request as it arrives and each answer as it comes, reading nothing in either. What it adds over
//! the direct call is what one more proxy hop costs on this machine (two more sockets, two more
//! wakeups per event, one more runtime); what the gateway adds beyond it is the gateway's own work.
//!
//! It is this same binary, started as `gateway-bench serve-floor <upstream URL>`; it prints its
//! port on the first line of its standard output.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// The first argument that makes `gateway-bench` the floor proxy.
pub const COMMAND: &str = "serve-floor";

type Upstream = Client<HttpConnector, Incoming>;
type Answer = Response<Either<Incoming, Empty<Bytes>>>;

/// Serves until killed. `upstream` is `http://host:port`, without a path.
pub async fn serve(upstream: String) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let mut out = tokio::io::stdout();
    out.write_all(format!("{port}\n").as_bytes())
        .await
        .and(out.flush().await)
        .map_err(|e| e.to_string())?;

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new()).build(connector);
    let upstream: Arc<str> = upstream.trim_end_matches('/').into();
    // On a worker, like the gateway's accept loop.
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors and the like: wait rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (client, upstream) = (client.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    forward(client.clone(), upstream.clone(), req)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
    .await
    .map_err(|e| e.to_string())
}

/// The request to the same path upstream, its answer back as it streams; 502 if it fails.
async fn forward(
    client: Upstream,
    upstream: Arc<str>,
    req: Request<Incoming>,
) -> Result<Answer, Infallible> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{upstream}{path}").parse() else {
        return Ok(bad_gateway());
    };
    parts.uri = uri;
    parts.headers.remove(http::header::HOST);
    match client.request(Request::from_parts(parts, body)).await {
        Ok(answer) => Ok(answer.map(Either::Left)),
        Err(_) => Ok(bad_gateway()),
    }
}

fn bad_gateway() -> Answer {
    let mut r = Response::new(Either::Right(Empty::new()));
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r
}
