//! `claude-aws configure`: a profile in the AWS CLI's config whose `credential_process` is this
//! binary, so `aws --profile claude-<project> …` and every SDK get credentials from the gateway.
//! With `--via-gateway` the profile also sends every call to the gateway (`endpoint_url`), with
//! S3 in path style (a bucket name cannot be a subdomain of the gateway's address).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::api;
use crate::aws_config::{upsert_profile, Setting};
use crate::cli::ProjectLevel;
use crate::client::proxy_endpoint;
use crate::env::Env;
use crate::error::{printable, Error};
use crate::session::{gateway_address, Signed};
use crate::store::{private_dir, write_atomically};

/// The default profile name: `claude-<project>`, `claude-<project>-write` for write.
pub fn profile_name(project: &str, write: bool) -> String {
    if write {
        format!("claude-{project}-write")
    } else {
        format!("claude-{project}")
    }
}

/// The `credential_process` command line: this binary's absolute path (in double quotes when it
/// holds anything a shell reads specially) and the `credentials` arguments.
pub fn command_line(exe: &Path, target: &ProjectLevel) -> Result<String, Error> {
    let path = exe.to_str().ok_or_else(|| {
        Error::Failed("this program's path is not valid UTF-8; move it to a plainer path".into())
    })?;
    // SDKs run the line through `sh -c` (the Rust SDK) or split it like a shell (botocore):
    // inside double quotes every character but these four is itself in both.
    if path.contains(['"', '$', '`', '\\']) || path.chars().any(char::is_control) {
        return Err(Error::Failed(
            "this program's path holds a quote, `$`, a backquote, a backslash or a control character; move it to a plainer path"
                .into(),
        ));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+@%,:=".contains(c);
    let path = if path.chars().all(plain) {
        path.to_owned()
    } else {
        format!("\"{path}\"")
    };
    let mut line = format!("{path} credentials --project {}", target.project);
    if target.write {
        line.push_str(" --write");
    }
    if target.via_gateway {
        line.push_str(" --via-gateway");
    }
    Ok(line)
}

/// Options of `configure`.
#[derive(Debug)]
pub struct Options<'a> {
    /// The project, level and route.
    pub target: &'a ProjectLevel,
    /// Profile name, else the default.
    pub profile: Option<&'a str>,
    /// Region, else the project's first.
    pub region: Option<&'a str>,
}

/// Runs `configure`.
pub async fn run(env: &Env, gateway: Option<&str>, o: Options<'_>) -> Result<(), Error> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| Error::Failed(format!("could not find this program's own path: {e}")))?;
    let t = o.target;
    let name = o
        .profile
        .map(str::to_owned)
        .unwrap_or_else(|| profile_name(&t.project, t.write));
    let mut settings = vec![Setting::Plain("credential_process", command_line(&exe, t)?)];
    let region = match o.region {
        Some(r) => Some(r.to_owned()),
        None => match first_region(env, gateway, &t.project).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("No region set: the project's regions could not be read ({e}).");
                None
            }
        },
    };
    if let Some(r) = &region {
        settings.push(Setting::Plain("region", r.clone()));
    }
    settings.extend(route(t.via_gateway, gateway_address(env, gateway))?);
    let file = env.aws_config_file()?;
    let target = resolve(&file);
    let (text, mode) = match fs::read(&target) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| {
                Error::Failed(format!(
                    "{} is not UTF-8 text; not editing it",
                    target.display()
                ))
            })?;
            (text, mode_of(&target))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = target
                .parent()
                .filter(|d| !d.as_os_str().is_empty() && !d.exists())
            {
                private_dir(dir)?;
            }
            (String::new(), 0o600)
        }
        Err(e) => {
            return Err(Error::Failed(format!(
                "could not read {}: {e}",
                target.display()
            )))
        }
    };
    let out = upsert_profile(&text, &name, &settings);
    if out != text {
        write_atomically(&target, out.as_bytes(), mode)?;
    }
    eprintln!(
        "Profile {name} is set in {}{}.",
        target.display(),
        region.map(|r| format!(" (region {r})")).unwrap_or_default()
    );
    if t.via_gateway {
        eprintln!("Its AWS calls go through the gateway. Try: aws s3 ls --profile {name}");
    } else {
        eprintln!("Try: aws sts get-caller-identity --profile {name}");
    }
    Ok(())
}

/// The profile's route settings. Through the gateway: its AWS endpoint and path-style S3 (the
/// gateway's address is needed). Straight to AWS: a gateway endpoint written by an earlier
/// `--via-gateway` is removed (when the gateway's address is known), any other one kept.
fn route(
    via_gateway: bool,
    gateway: Result<String, Error>,
) -> Result<Vec<Setting<'static>>, Error> {
    if via_gateway {
        let endpoint = proxy_endpoint(&gateway?);
        return Ok(vec![
            Setting::Plain("endpoint_url", endpoint),
            Setting::Nested("s3", "addressing_style", "path".into()),
        ]);
    }
    Ok(gateway
        .ok()
        .map(|g| Setting::RemoveIf("endpoint_url", proxy_endpoint(&g)))
        .into_iter()
        .collect())
}

/// The file a symlinked config points at (edited in place there, the link kept).
fn resolve(file: &Path) -> PathBuf {
    match fs::symlink_metadata(file) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf())
        }
        _ => file.to_path_buf(),
    }
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_of(_: &Path) -> u32 {
    0o600
}

/// The project's first region from `/v1/aws/status`.
async fn first_region(
    env: &Env,
    gateway: Option<&str>,
    project: &str,
) -> Result<Option<String>, Error> {
    let s = Signed::open(env, gateway)?;
    let status = api::status(&s).await?;
    let region = status["projects"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == project))
        .and_then(|p| p["regions"].as_array())
        .and_then(|rs| rs.first())
        .and_then(Value::as_str)
        .filter(|r| valid_region(r))
        .map(|r| printable(r, 64));
    Ok(region)
}

/// A region name as AWS spells them (`eu-west-1`, `us-gov-west-1`).
pub fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_and_command_lines() {
        assert_eq!(profile_name("pay", false), "claude-pay");
        assert_eq!(profile_name("pay", true), "claude-pay-write");
        let t = |write, via_gateway| ProjectLevel {
            project: "pay".into(),
            write,
            via_gateway,
        };
        assert_eq!(
            command_line(Path::new("/usr/local/bin/claude-aws"), &t(false, false)).unwrap(),
            "/usr/local/bin/claude-aws credentials --project pay"
        );
        assert_eq!(
            command_line(Path::new("/Users/a b/bin/claude-aws"), &t(true, false)).unwrap(),
            "\"/Users/a b/bin/claude-aws\" credentials --project pay --write"
        );
        assert_eq!(
            command_line(Path::new("/bin/claude-aws"), &t(true, true)).unwrap(),
            "/bin/claude-aws credentials --project pay --write --via-gateway"
        );
        assert!(command_line(Path::new("/x\"y/claude-aws"), &t(false, false)).is_err());
        for bad in [
            "/a$HOME/claude-aws",
            "/a`id`/claude-aws",
            "/a\\b/claude-aws",
        ] {
            assert!(
                command_line(Path::new(bad), &t(false, false)).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            command_line(Path::new("/Users/o'brien/claude-aws"), &t(false, false)).unwrap(),
            "\"/Users/o'brien/claude-aws\" credentials --project pay"
        );
    }

    #[test]
    fn the_route_settings_follow_the_mode() {
        let gw = || Ok::<_, Error>("https://gw.example.com".to_owned());
        assert_eq!(
            route(true, gw()).unwrap(),
            [
                Setting::Plain("endpoint_url", "https://gw.example.com/aws/".into()),
                Setting::Nested("s3", "addressing_style", "path".into()),
            ]
        );
        assert_eq!(
            route(false, gw()).unwrap(),
            [Setting::RemoveIf(
                "endpoint_url",
                "https://gw.example.com/aws/".into()
            )]
        );
        let unknown = || Err(Error::not_signed_in("not signed in"));
        assert!(route(false, unknown()).unwrap().is_empty());
        assert!(route(true, unknown()).is_err());
    }

    #[test]
    fn regions_are_checked() {
        assert!(valid_region("eu-west-1"));
        assert!(!valid_region("eu west"));
        assert!(!valid_region("x\ncredential_process = evil"));
    }
}
