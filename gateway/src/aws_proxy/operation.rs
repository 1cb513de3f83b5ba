//! Naming the operation of a request and its class, pure: from the credential scope's service
//! and the request, the API operation (`GetObject`), the IAM action a policy names
//! (`s3:GetObject`) and whether it reads, lists or writes. JSON protocols name it in
//! `X-Amz-Target`, Query protocols in `Action`, REST protocols by method and path (a table for
//! S3 and Lambda). What cannot be named counts as a write.

mod lambda;
mod s3;
#[cfg(test)]
mod tests;

use http::HeaderMap;
use percent_encoding::percent_decode_str;

/// The longest operation name accepted.
const MAX_NAME: usize = 128;
/// The most query or form parameters looked at.
const MAX_PARAMS: usize = 256;

/// A request to name, its path relative to the service endpoint (any gateway prefix removed).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The signing name of the credential scope (`s3`, `logs`, `monitoring`).
    pub service: &'a str,
    /// The method.
    pub method: &'a str,
    /// The path, still percent-encoded; S3 is path-style (`/bucket/key`).
    pub path: &'a str,
    /// The query string, without the `?`.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body, for the `Action` of a Query protocol's form.
    pub body: &'a [u8],
}

/// What an operation does, for rate limits and risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Reads one thing (`Get*`, `Head*`, `Describe*`, `BatchGet*`, `Query`, `Scan`, ...).
    Read,
    /// Lists things (`List*`).
    List,
    /// Anything else, and anything that cannot be named.
    Write,
}

impl Class {
    /// `read`, `list` or `write`, as config, counters and records name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::List => "list",
            Class::Write => "write",
        }
    }
}

/// A named (or unnamed) operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The API operation (`ListObjectsV2`, `FilterLogEvents`); `None` when it cannot be named.
    pub name: Option<String>,
    /// The IAM action a policy names (`s3:ListBucket`, `logs:FilterLogEvents`).
    pub action: Option<String>,
    /// Its class; [`Class::Write`] when unnamed.
    pub class: Class,
}

impl Operation {
    /// An operation that cannot be named: a write.
    pub fn unnamed() -> Self {
        Self {
            name: None,
            action: None,
            class: Class::Write,
        }
    }

    /// `name` of `service`, whose IAM action is `iam_name` under the service's IAM prefix.
    fn named(service: &str, name: &str, iam_name: &str) -> Self {
        Self {
            name: Some(name.to_owned()),
            action: Some(format!("{}:{iam_name}", iam_prefix(service))),
            class: class_of(name),
        }
    }
}

/// The IAM prefix of a signing name, where they differ; every other service uses its signing
/// name (`s3`, `logs`, `sts`, `dynamodb`, `lambda`, `execute-api`...).
pub fn iam_prefix(signing_name: &str) -> &str {
    match signing_name {
        // CloudWatch metrics and alarms sign as `monitoring`.
        "monitoring" => "cloudwatch",
        // SES signs as `email`.
        "email" => "ses",
        // The IoT data plane signs as `iotdata`.
        "iotdata" => "iot",
        // The Resource Groups Tagging API signs as `tagging`; IAM names it `tag`.
        "tagging" => "tag",
        other => other,
    }
}

/// The class of an API operation, by the verb it begins with.
pub fn class_of(name: &str) -> Class {
    const READ: &[&str] = &[
        "Get", "Head", "Describe", "BatchGet", "Query", "Scan", "Select", "Lookup", "Filter",
        "Search",
    ];
    let begins = |verb: &str| {
        name.strip_prefix(verb).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase())
        })
    };
    if begins("List") {
        Class::List
    } else if READ.iter().any(|v| begins(v)) {
        Class::Read
    } else {
        Class::Write
    }
}

/// Names the operation of `call`.
pub fn name(call: &Call<'_>) -> Operation {
    match call.service {
        "s3" => s3::name(call),
        "lambda" => lambda::name(call),
        service => match rpc_name(call) {
            Some(op) => Operation::named(service, &op, &op),
            None => Operation::unnamed(),
        },
    }
}

/// The operation of a JSON (`X-Amz-Target: Service_Version.Operation`, POSTed) or Query
/// (`Action`) protocol request. Where several are given they must agree, or the call is
/// unnamed: a header cannot dress up what the body asks for. Both protocols address the
/// service's root: at any other path the service has a REST API, which acts on the method and
/// path whatever a header or parameter says, so such a call is unnamed (a write) too.
fn rpc_name(call: &Call<'_>) -> Option<String> {
    if call.path != "/" {
        return None;
    }
    let mut names = Vec::new();
    let mut targets = call.headers.get_all("x-amz-target").iter();
    if let Some(target) = targets.next() {
        if call.method != "POST" {
            return None;
        }
        if targets.next().is_some() {
            return None;
        }
        let target = target.to_str().ok()?;
        let (_, op) = target.rsplit_once('.')?;
        names.push(valid(op)?.to_owned());
    }
    let query = params(call.query.unwrap_or_default())?;
    let form = match form_body(call) {
        Some(body) => params(body)?,
        None => Vec::new(),
    };
    for (_, action) in query.iter().chain(&form).filter(|(k, _)| k == "Action") {
        names.push(valid(action)?.to_owned());
    }
    let first = names.first()?.clone();
    names.iter().all(|n| *n == first).then_some(first)
}

/// The body as a form, when the request says it is one.
fn form_body<'a>(call: &Call<'a>) -> Option<&'a str> {
    let form = call
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    form.then(|| std::str::from_utf8(call.body).ok()).flatten()
}

/// An operation name: an uppercase letter, then letters and digits.
fn valid(name: &str) -> Option<&str> {
    let ok = (1..=MAX_NAME).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(name)
}

/// The parameters of a query string or form, names and values decoded; `None` past
/// [`MAX_PARAMS`], where a parameter could hide beyond what is looked at.
pub(super) fn params(s: &str) -> Option<Vec<(String, String)>> {
    let parts: Vec<&str> = s
        .split('&')
        .filter(|p| !p.is_empty())
        .take(MAX_PARAMS + 1)
        .collect();
    if parts.len() > MAX_PARAMS {
        return None;
    }
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    Some(
        parts
            .into_iter()
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect(),
    )
}
