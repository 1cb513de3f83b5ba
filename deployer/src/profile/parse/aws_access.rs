//! `AWS_ACCESS_CONFIG` and `AWS_ACCESS_ROLE_ARNS`: the gateway's `aws_access` section, kept in a
//! YAML file of its own beside the profile, and the project roles the gateway's task role may
//! assume. The file is read with a size bound, typed as the gateway's own [`AwsAccess`] and checked
//! by the gateway's own rules here, so a bad file is refused when the profile is read, naming the
//! key and the file; the roles are derived from it, or checked against it.

use std::io::Read;
use std::path::{Path, PathBuf};

use claude_gateway::config::aws_access::{self, AwsAccess};
use claude_gateway::config::Secret;

use super::super::model::AwsAccessFile;
use super::super::reader::Reader;

/// The key naming the file.
pub const CONFIG_KEY: &str = "AWS_ACCESS_CONFIG";
/// The key listing the roles.
const ROLES_KEY: &str = "AWS_ACCESS_ROLE_ARNS";
/// The key naming the Secrets Manager secret that holds the webhook URL.
const WEBHOOK_KEY: &str = "AWS_ACCESS_WEBHOOK_SECRET_ARN";
/// The variable the tasks see the webhook URL as (the gateway stack's `Secrets` entry), and the
/// only value `webhook_url` may have in the file.
pub const WEBHOOK_VAR: &str = "AWS_ACCESS_WEBHOOK_URL";
/// A stand-in for the webhook URL where the gateway's rules check the section before deployment.
pub const PLANNED_WEBHOOK_URL: &str = "https://hooks.example.com/planned";
/// The most bytes the file may hold.
pub const MAX_FILE_BYTES: usize = 64 * 1024;
/// The most bytes of a CloudFormation parameter value (`AwsAccessRoleArns`, comma-joined).
const MAX_PARAMETER_BYTES: usize = 4096;

/// Reads both keys: the section (when `AWS_ACCESS_CONFIG` is set) and the role ARNs, derived from
/// the section's projects when `AWS_ACCESS_ROLE_ARNS` is not set.
pub fn read(r: &mut Reader, dir: &Path) -> (Option<AwsAccessFile>, Vec<String>) {
    let webhook = r.opt(WEBHOOK_KEY);
    if let Some(arn) = &webhook {
        if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") {
            r.err(
                WEBHOOK_KEY,
                format!("{arn:?} is not a Secrets Manager secret ARN"),
            );
        }
        if !r.is_set(CONFIG_KEY) {
            r.err(
                WEBHOOK_KEY,
                format!("set, but {CONFIG_KEY} is not: the webhook announces agent-access write requests"),
            );
        }
    }
    let file = r.opt(CONFIG_KEY).and_then(|v| section(r, dir, &v, webhook));
    let roles = if r.is_set(ROLES_KEY) {
        let roles = role_arns(r, ROLES_KEY, r.list(ROLES_KEY));
        if let Some(f) = &file {
            for p in &f.section.projects {
                if !roles.contains(&p.role_arn) {
                    r.err(
                        CONFIG_KEY,
                        format!(
                            "{}: project {}'s role_arn {:?} is not in {ROLES_KEY}, so the gateway's task role could not assume it (add it there, or leave {ROLES_KEY} empty to derive it from the file)",
                            f.path.display(),
                            p.name,
                            p.role_arn
                        ),
                    );
                }
            }
        }
        roles
    } else {
        let mut derived: Vec<String> = Vec::new();
        for p in file.iter().flat_map(|f| &f.section.projects) {
            if !derived.contains(&p.role_arn) {
                derived.push(p.role_arn.clone());
            }
        }
        role_arns(r, CONFIG_KEY, derived)
    };
    (file, roles)
}

/// Reads, types and checks the file `value` names (relative to `dir` unless absolute).
fn section(
    r: &mut Reader,
    dir: &Path,
    value: &str,
    webhook_secret_arn: Option<String>,
) -> Option<AwsAccessFile> {
    let path: PathBuf = if Path::new(value).is_absolute() {
        value.into()
    } else {
        dir.join(value)
    };
    let shown = path.display().to_string();
    let text = match read_bounded(&path) {
        Ok(t) => t,
        Err(e) => {
            r.err(CONFIG_KEY, format!("cannot read {shown}: {e}"));
            return None;
        }
    };
    let section: AwsAccess = match serde_yaml::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            let hint = if wrapped(&text) {
                " (the file holds the body of the section: its projects, members and settings, without an `aws_access:` line above them)"
            } else {
                ""
            };
            r.err(
                CONFIG_KEY,
                format!("{shown} is not a valid aws_access section: {e}{hint}"),
            );
            return None;
        }
    };
    let before = r.issues.len();
    let reference = format!("${{{WEBHOOK_VAR}}}");
    match (&section.webhook_url, &webhook_secret_arn) {
        // The value is never repeated: it may be the secret itself.
        (Some(url), _) if url.expose() != reference => r.err(
            CONFIG_KEY,
            format!("{shown}: webhook_url must be the reference {reference}, never the URL itself (the stack parameters that carry this file are no place for a secret): store the URL in Secrets Manager as a plain string and name the secret with {WEBHOOK_KEY}"),
        ),
        (Some(_), None) => r.err(
            CONFIG_KEY,
            format!("{shown}: webhook_url refers to {reference}, but {WEBHOOK_KEY} names no secret to fill it from"),
        ),
        (None, Some(_)) => r.err(
            WEBHOOK_KEY,
            format!("set, but {shown} has no `webhook_url: {reference}` to use it"),
        ),
        _ => {}
    }
    // The gateway's rules, with the reference filled as the tasks will see it.
    let mut filled = section.clone();
    if filled.webhook_url.is_some() {
        filled.webhook_url = Some(Secret::new(PLANNED_WEBHOOK_URL));
    }
    for issue in aws_access::check(&filled) {
        r.err(CONFIG_KEY, format!("{shown}: {issue}"));
    }
    (r.issues.len() == before).then_some(AwsAccessFile {
        path,
        section,
        webhook_secret_arn,
    })
}

/// Whether the text's top level is a mapping with an `aws_access` key (a whole gateway.yaml, or
/// the section with its heading).
fn wrapped(text: &str) -> bool {
    serde_yaml::from_str::<serde_yaml::Mapping>(text)
        .is_ok_and(|m| m.contains_key(serde_yaml::Value::from("aws_access")))
}

/// The file's text: a regular file (never a pipe or a device, which could block or never end),
/// at most [`MAX_FILE_BYTES`], UTF-8.
fn read_bounded(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".to_owned());
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(format!("it is larger than {MAX_FILE_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())
}

/// Checks role ARNs (distinct IAM role ARNs that fit one stack parameter), naming `key`.
fn role_arns(r: &mut Reader, key: &str, arns: Vec<String>) -> Vec<String> {
    for (i, a) in arns.iter().enumerate() {
        if !is_role_arn(a) {
            r.err(
                key,
                format!("{a:?} is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)"),
            );
        } else if arns[..i].contains(a) {
            r.err(key, format!("{a:?} is listed twice"));
        }
    }
    let joined = arns.join(",").len();
    if joined > MAX_PARAMETER_BYTES {
        r.err(
            key,
            format!("{joined} bytes joined; a stack parameter holds at most {MAX_PARAMETER_BYTES}"),
        );
    }
    arns
}

/// Whether `s` is an IAM role ARN: `arn:<aws partition>:iam::<12 digits>:role/<path and name>`.
fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
    if partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource.strip_prefix("role/").is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=.@_/-".contains(&b))
        }))
}
