//! The gateway's developer routes under `/v1/aws` (see the wire contract): each call carries the
//! session's bearer token, retried once with a refreshed token if the gateway refuses it.

use serde_json::Value;

use crate::cli::ProjectLevel;
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

/// `GET /v1/aws/credentials?project=…&level=…[&via=gateway]`: the container-credentials JSON.
pub async fn credentials(s: &Signed, target: &ProjectLevel) -> Result<Value, Error> {
    checked(
        call(s, Call::Get(&credentials_path(target))).await?,
        "the credentials request",
    )
}

/// The credentials route and query for `target`.
fn credentials_path(target: &ProjectLevel) -> String {
    let level = if target.write { "write" } else { "read" };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("project", &target.project)
        .append_pair("level", level);
    if target.via_gateway {
        query.append_pair("via", "gateway");
    }
    format!("/v1/aws/credentials?{}", query.finish())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credentials_query_names_the_level_and_the_gateway_route_when_asked() {
        let t = |write, via_gateway| ProjectLevel {
            project: "pay".into(),
            write,
            via_gateway,
        };
        assert_eq!(
            credentials_path(&t(false, false)),
            "/v1/aws/credentials?project=pay&level=read"
        );
        assert_eq!(
            credentials_path(&t(true, true)),
            "/v1/aws/credentials?project=pay&level=write&via=gateway"
        );
    }
}
