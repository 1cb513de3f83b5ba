//! The common Lambda operations by method and path shape
//! (`/2015-03-31/functions/{name}/invocations`), with the IAM action each needs where its name
//! differs (`Invoke` needs `lambda:InvokeFunction`).

use super::{Call, Operation};

/// Names a Lambda call.
pub(super) fn name(call: &Call<'_>) -> Operation {
    match table(call) {
        Some((name, iam)) => Operation::named("lambda", name, iam),
        None => Operation::unnamed(),
    }
}

/// The operation and its IAM action name.
fn table(call: &Call<'_>) -> Option<(&'static str, &'static str)> {
    let path = call.path.strip_prefix('/')?;
    let path = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = path.split('/').take(6).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let op = match (call.method, segments.as_slice()) {
        ("GET", ["2015-03-31", "functions"]) => ("ListFunctions", "ListFunctions"),
        ("POST", ["2015-03-31", "functions"]) => ("CreateFunction", "CreateFunction"),
        ("GET", ["2015-03-31", "functions", _]) => ("GetFunction", "GetFunction"),
        ("DELETE", ["2015-03-31", "functions", _]) => ("DeleteFunction", "DeleteFunction"),
        ("POST", ["2015-03-31", "functions", _, "invocations"]) => ("Invoke", "InvokeFunction"),
        ("PUT", ["2015-03-31", "functions", _, "code"]) => {
            ("UpdateFunctionCode", "UpdateFunctionCode")
        }
        ("GET", ["2015-03-31", "functions", _, "configuration"]) => {
            ("GetFunctionConfiguration", "GetFunctionConfiguration")
        }
        ("PUT", ["2015-03-31", "functions", _, "configuration"]) => {
            ("UpdateFunctionConfiguration", "UpdateFunctionConfiguration")
        }
        ("GET", ["2015-03-31", "functions", _, "versions"]) => {
            ("ListVersionsByFunction", "ListVersionsByFunction")
        }
        ("POST", ["2015-03-31", "functions", _, "versions"]) => {
            ("PublishVersion", "PublishVersion")
        }
        ("GET", ["2015-03-31", "functions", _, "aliases"]) => ("ListAliases", "ListAliases"),
        ("POST", ["2015-03-31", "functions", _, "aliases"]) => ("CreateAlias", "CreateAlias"),
        ("GET", ["2015-03-31", "functions", _, "policy"]) => ("GetPolicy", "GetPolicy"),
        ("POST", ["2015-03-31", "functions", _, "policy"]) => ("AddPermission", "AddPermission"),
        ("GET", ["2015-03-31", "event-source-mappings"]) => {
            ("ListEventSourceMappings", "ListEventSourceMappings")
        }
        ("POST", ["2015-03-31", "event-source-mappings"]) => {
            ("CreateEventSourceMapping", "CreateEventSourceMapping")
        }
        ("POST", ["2014-11-13", "functions", _, "invoke-async"]) => {
            ("InvokeAsync", "InvokeFunction")
        }
        ("GET", ["2017-03-31", "tags", _]) => ("ListTags", "ListTags"),
        ("POST", ["2017-03-31", "tags", _]) => ("TagResource", "TagResource"),
        ("DELETE", ["2017-03-31", "tags", _]) => ("UntagResource", "UntagResource"),
        ("GET", ["2016-08-19", "account-settings"]) => ("GetAccountSettings", "GetAccountSettings"),
        ("GET", ["2018-10-31", "layers"]) => ("ListLayers", "ListLayers"),
        _ => return None,
    };
    Some(op)
}
