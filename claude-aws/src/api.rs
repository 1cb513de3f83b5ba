//! The gateway's developer routes under `/v1/aws` (see the wire contract): each call carries the
//! session's bearer token, retried once with a refreshed token if the gateway refuses it.

use serde_json::Value;

use crate::client::Answer;
use crate::error::Error;
use crate::session::Signed;

/// What to call.
enum Call<'a> {
    Get(&'a str),
    Post(&'a str, &'a Value),
}

async fn call(s: &Signed, c: Call<'_>) -> Result<Answer, Error> {
    let mut force = false;
    loop {
        let token = s.access_token(force).await?;
        let a = match &c {
            Call::Get(path) => s.gateway.get(path, &token).await?,
            Call::Post(path, body) => s.gateway.post_json(path, &token, body).await?,
        };
        if a.status == 401 && !force {
            force = true;
            continue;
        }
        return Ok(a);
    }
}

fn checked(a: Answer, what: &str) -> Result<Value, Error> {
    if a.ok() {
        a.json(what)
    } else {
        Err(a.into_error())
    }
}

/// `GET /v1/aws/credentials?project=…&level=…`: the container-credentials JSON.
pub async fn credentials(s: &Signed, project: &str, write: bool) -> Result<Value, Error> {
    let level = if write { "write" } else { "read" };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("project", project)
        .append_pair("level", level)
        .finish();
    let path = format!("/v1/aws/credentials?{query}");
    checked(call(s, Call::Get(&path)).await?, "the credentials request")
}

/// `GET /v1/aws/status`.
pub async fn status(s: &Signed) -> Result<Value, Error> {
    checked(
        call(s, Call::Get("/v1/aws/status")).await?,
        "the status request",
    )
}

/// `POST /v1/aws/grants`.
pub async fn request_grant(s: &Signed, body: &Value) -> Result<Value, Error> {
    checked(
        call(s, Call::Post("/v1/aws/grants", body)).await?,
        "the grant request",
    )
}

/// `GET /v1/aws/grants/{id}`.
pub async fn grant(s: &Signed, id: &str) -> Result<Value, Error> {
    let path = format!("/v1/aws/grants/{id}");
    checked(call(s, Call::Get(&path)).await?, "the grant lookup")
}
