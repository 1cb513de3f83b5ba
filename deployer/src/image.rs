//! The gateway image: content-addressed tags and the build-and-push that runs only when the
//! registry does not have the tag yet.
//!
//! The tag is `src-` and the first 20 hex digits of a SHA-256 over everything the Docker build
//! reads (the Dockerfile and every source its build stage copies in, read from its `COPY` lines,
//! minus what `.dockerignore` leaves out), the target platform and the base images' digests.
//! Equal inputs give the same tag on any machine, so a re-run finds the tag in ECR and pushes
//! nothing; any change, a base image that moved under its tag included, gives a new tag, which an
//! immutable repository accepts.
//!
//! The base images are the Dockerfile's `ARG <NAME>_IMAGE=<reference>` lines before its first
//! `FROM`. A reference already pinned (`name:tag@sha256:...`) is used as written; otherwise its tag
//! is resolved to a digest with `docker buildx imagetools inspect` when the image is built, and the
//! pinned reference is passed to the build as that argument.

use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{Context, SHA256};

use crate::error::{Error, Result};

/// The files and folders the Dockerfile copies from the build context (its `COPY` lines without
/// `--from`), and the Dockerfile itself, relative to the repository root.
pub fn inputs(dockerfile: &str) -> Vec<String> {
    let mut out = vec!["Dockerfile".to_owned()];
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words
            .first()
            .is_none_or(|w| !w.eq_ignore_ascii_case("COPY"))
            || line.contains("--from")
        {
            continue;
        }
        let args: Vec<&str> = words[1..]
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        if let Some((_, sources)) = args.split_last() {
            out.extend(sources.iter().map(|s| s.trim_end_matches('/').to_owned()));
        }
    }
    out
}

const SKIP_DIRS: &[&str] = &["target", "node_modules", "__pycache__", ".git"];

/// The repository root: `start` or the nearest parent holding the Dockerfile and `gateway/`.
pub fn find_source_dir(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("Dockerfile").is_file() && d.join("gateway/Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// The Docker platform for a CloudFormation `CpuArchitecture`.
pub fn platform(cpu_architecture: &str) -> &'static str {
    if cpu_architecture == "ARM64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    }
}

/// A base image of the Dockerfile: the build argument that names it and its reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The `ARG` name, e.g. `BUILDER_IMAGE`.
    pub arg: String,
    /// The reference: `name:tag` as the Dockerfile gives it, or `name:tag@sha256:<hex>` pinned.
    pub reference: String,
}

impl BaseImage {
    /// The `sha256:<hex>` digest when the reference is pinned.
    pub fn digest(&self) -> Option<&str> {
        let (_, digest) = self.reference.rsplit_once('@')?;
        is_digest(digest).then_some(digest)
    }
}

/// The base images: `ARG <NAME>_IMAGE=<reference>` lines before the first `FROM`.
pub fn base_images(dockerfile: &str) -> Vec<BaseImage> {
    let mut out = Vec::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if first.eq_ignore_ascii_case("FROM") {
            break;
        }
        if !first.eq_ignore_ascii_case("ARG") {
            continue;
        }
        if let Some((arg, value)) = words.next().and_then(|w| w.split_once('=')) {
            if arg.ends_with("_IMAGE") && !value.is_empty() {
                out.push(BaseImage {
                    arg: arg.to_owned(),
                    reference: value.trim_matches('"').to_owned(),
                });
            }
        }
    }
    out
}

/// `sha256:` and 64 lowercase hex digits.
fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The digest in `docker buildx imagetools inspect --format '{{.Manifest.Digest}}'` output.
fn parse_digest(output: &str) -> Option<String> {
    let d = output.trim();
    is_digest(d).then(|| d.to_owned())
}

/// The environment variable that pins a base image for the deployer: `DEPLOYER_` and the `ARG`
/// name, e.g. `DEPLOYER_RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot@sha256:<digest>`.
pub fn pin_var(arg: &str) -> String {
    format!("DEPLOYER_{arg}")
}

/// The Dockerfile's base images with the pins set in the environment (`lookup` reads a
/// variable) in place of what the Dockerfile gives; a pin must carry a digest.
pub fn with_pins(
    bases: Vec<BaseImage>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<BaseImage>> {
    bases
        .into_iter()
        .map(|base| match lookup(&pin_var(&base.arg)) {
            None => Ok(base),
            Some(reference) => {
                let pinned = BaseImage {
                    arg: base.arg,
                    reference: reference.trim().to_owned(),
                };
                if pinned.digest().is_some() {
                    Ok(pinned)
                } else {
                    Err(Error::usage(format!(
                        "{} must name the image by digest (name:tag@sha256:<64 hex digits>), not {:?}",
                        pin_var(&pinned.arg),
                        pinned.reference
                    )))
                }
            }
        })
        .collect()
}

fn declared_bases(root: &Path) -> Result<Vec<BaseImage>> {
    with_pins(base_images(&read_dockerfile(root)?), |k| {
        use claude_gateway::config::Env;
        claude_gateway::config::ProcessEnv
            .var(k)
            .filter(|v| !v.is_empty())
    })
}

/// The base images of the Dockerfile under `root`, each pinned: as the environment or the
/// Dockerfile pins it, otherwise its tag resolved to the registry's current digest (needs
/// `docker` and the network).
pub async fn pinned_base_images(root: &Path) -> Result<Vec<BaseImage>> {
    let mut out = Vec::new();
    for base in declared_bases(root)? {
        if base.digest().is_some() {
            out.push(base);
            continue;
        }
        let output = tokio::process::Command::new("docker")
            .args([
                "buildx",
                "imagetools",
                "inspect",
                "--format",
                "{{.Manifest.Digest}}",
                &base.reference,
            ])
            .output()
            .await
            .map_err(|e| Error::failed(format!("cannot run docker ({e}); install Docker, or set GATEWAY_IMAGE to an image you pushed yourself")))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let digest = match parse_digest(&text) {
            Some(d) if output.status.success() => d,
            _ => {
                return Err(Error::failed(format!(
                    "cannot resolve base image {} ({}) to a digest with `docker buildx imagetools inspect`: {}; \
                     pin it: set {}={}@sha256:<digest>, or write that in the Dockerfile's ARG {}",
                    base.reference,
                    base.arg,
                    String::from_utf8_lossy(&output.stderr).trim(),
                    pin_var(&base.arg),
                    base.reference,
                    base.arg
                )))
            }
        };
        out.push(BaseImage {
            reference: format!("{}@{digest}", base.reference),
            arg: base.arg,
        });
    }
    Ok(out)
}

/// The base images as the environment and the Dockerfile under `root` pin them, when every one
/// is (the content tag can then be known without `docker`); `None` when a tag is left to resolve.
pub fn written_pins(root: &Path) -> Option<Vec<BaseImage>> {
    let bases = declared_bases(root).ok()?;
    bases.iter().all(|b| b.digest().is_some()).then_some(bases)
}

fn read_dockerfile(root: &Path) -> Result<String> {
    std::fs::read_to_string(root.join("Dockerfile"))
        .map_err(|e| Error::failed(format!("cannot read the Dockerfile: {e}")))
}

/// The content tag of the build inputs under `root` for `platform`, built on `bases` (pinned).
pub fn content_tag(root: &Path, platform: &str, bases: &[BaseImage]) -> Result<String> {
    let dockerfile = read_dockerfile(root)?;
    let mut files = Vec::new();
    for input in inputs(&dockerfile) {
        // A source names a path inside the build context, `/` being the context itself.
        let input = Path::new(input.trim_start_matches('/'));
        if input.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        }) {
            return Err(Error::failed(format!(
                "the Dockerfile copies {}, which is outside the build context",
                input.display()
            )));
        }
        collect(root, &root.join(input), &mut files)?;
    }
    files.sort();
    let mut ctx = Context::new(&SHA256);
    ctx.update(platform.as_bytes());
    ctx.update(b"\0");
    for base in bases {
        ctx.update(base.arg.as_bytes());
        ctx.update(b"=");
        ctx.update(base.reference.as_bytes());
        ctx.update(b"\0");
    }
    for rel in &files {
        let path = root.join(rel);
        let fail = |e: std::io::Error| Error::failed(format!("cannot read {rel}: {e}"));
        ctx.update(rel.as_bytes());
        ctx.update(b"\0");
        // A link is copied as a link: its target is what it holds.
        if let Ok(target) = std::fs::read_link(&path) {
            ctx.update(b"link\0");
            ctx.update(target.to_string_lossy().as_bytes());
            continue;
        }
        let mut file = std::fs::File::open(&path).map_err(fail)?;
        let len = file.metadata().map_err(fail)?.len();
        ctx.update(&len.to_be_bytes());
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf).map_err(fail)?;
            if n == 0 {
                break;
            }
            ctx.update(&buf[..n]);
        }
    }
    let hex = claude_gateway::config::hex(ctx.finish().as_ref());
    Ok(format!("src-{}", &hex[..20]))
}

fn collect(root: &Path, path: &Path, out: &mut Vec<String>) -> Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if SKIP_DIRS.contains(&name) || name.ends_with(".pyc") {
        return Ok(());
    }
    // Links are not followed (the build copies them as links): a loop of them cannot make the
    // walk endless, nor one to elsewhere take it outside the context.
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| Error::failed(format!("cannot list {}: {e}", path.display())))?;
        for entry in entries.flatten() {
            collect(root, &entry.path(), out)?;
        }
    } else if meta.is_file() || meta.file_type().is_symlink() {
        if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Builds the image from `root` for `platform` and pushes it as `uri`, logging in to the registry
/// with `password` (user `AWS`). Uses the `docker` command.
/// `bases` are passed as build arguments, so the build uses exactly the digests the tag covers.
pub async fn build_and_push(
    root: &Path,
    uri: &str,
    platform: &str,
    bases: &[BaseImage],
    password: &str,
) -> Result<()> {
    let registry = uri.split('/').next().unwrap_or_default();
    let tag = uri.rsplit(':').next().unwrap_or_default();
    let root_arg = root.to_string_lossy();
    let revision = format!("REVISION={tag}");
    let base_args: Vec<String> = bases
        .iter()
        .map(|b| format!("{}={}", b.arg, b.reference))
        .collect();
    let mut args = vec!["build", "--platform", platform, "--build-arg", &revision];
    for a in &base_args {
        args.extend(["--build-arg", a.as_str()]);
    }
    args.extend(["-t", uri, &root_arg]);
    run_docker(&args, None).await?;
    run_docker(
        &["login", "--username", "AWS", "--password-stdin", registry],
        Some(password),
    )
    .await?;
    run_docker(&["push", uri], None).await
}

async fn run_docker(args: &[&str], stdin: Option<&str>) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    eprintln!("  $ docker {}", args.join(" "));
    let mut cmd = tokio::process::Command::new("docker");
    cmd.args(args);
    if stdin.is_some() {
        cmd.stdin(std::process::Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| {
        Error::failed(format!("cannot run docker ({e}); install Docker, or set GATEWAY_IMAGE to an image you pushed yourself"))
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|e| Error::failed(format!("docker login: {e}")))?;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| Error::failed(format!("docker: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "docker {} failed ({status})",
            args.first().unwrap_or(&"")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM x\nCOPY gateway ./gateway\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("gateway/target")).unwrap();
        std::fs::write(dir.path().join("gateway/Cargo.toml"), "[package]").unwrap();
        std::fs::write(dir.path().join("gateway/target/junk"), "ignored").unwrap();
        let a = content_tag(dir.path(), "linux/amd64", &[]).unwrap();
        assert_eq!(a, content_tag(dir.path(), "linux/amd64", &[]).unwrap());
        assert!(a.starts_with("src-") && a.len() == 24);
        std::fs::write(dir.path().join("gateway/target/junk"), "still ignored").unwrap();
        assert_eq!(a, content_tag(dir.path(), "linux/amd64", &[]).unwrap());
        assert_ne!(a, content_tag(dir.path(), "linux/arm64", &[]).unwrap());
        std::fs::write(dir.path().join("gateway/Cargo.toml"), "[package] ").unwrap();
        assert_ne!(a, content_tag(dir.path(), "linux/amd64", &[]).unwrap());
        assert_eq!(
            find_source_dir(&dir.path().join("gateway")).unwrap(),
            dir.path()
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_are_hashed_as_links_and_sources_stay_in_the_context() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM x\nCOPY src ./src\n").unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/a"), "a").unwrap();
        // A loop of links, and a link out of the context: neither is walked.
        std::os::unix::fs::symlink("..", dir.path().join("src/up")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("src/root")).unwrap();
        let a = content_tag(dir.path(), "linux/amd64", &[]).unwrap();
        // Retargeting a link changes the tag, as it changes what the build copies.
        std::fs::remove_file(dir.path().join("src/root")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("src/root")).unwrap();
        assert_ne!(a, content_tag(dir.path(), "linux/amd64", &[]).unwrap());

        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM x\nCOPY ../outside ./o\n",
        )
        .unwrap();
        assert!(content_tag(dir.path(), "linux/amd64", &[]).is_err());
        // `/` is the context itself.
        std::fs::write(dir.path().join("Dockerfile"), "FROM x\nCOPY / /app\n").unwrap();
        assert!(content_tag(dir.path(), "linux/amd64", &[]).is_ok());
    }

    #[test]
    fn tag_follows_the_base_image_digests() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM x\n").unwrap();
        let base = |hex: char| BaseImage {
            arg: "RUNTIME_IMAGE".into(),
            reference: format!(
                "distroless/cc:nonroot@sha256:{}",
                hex.to_string().repeat(64)
            ),
        };
        let a = content_tag(dir.path(), "linux/amd64", &[base('a')]).unwrap();
        assert_eq!(
            a,
            content_tag(dir.path(), "linux/amd64", &[base('a')]).unwrap()
        );
        assert_ne!(
            a,
            content_tag(dir.path(), "linux/amd64", &[base('b')]).unwrap()
        );
        assert_ne!(a, content_tag(dir.path(), "linux/amd64", &[]).unwrap());
    }

    #[test]
    fn base_images_come_from_the_args_before_the_first_from() {
        let pinned = format!("rust:1.95@sha256:{}", "0".repeat(64));
        let d = format!("# c\nARG RUST=1\nARG BUILDER_IMAGE={pinned}\nARG RUNTIME_IMAGE=\"cc:nonroot\"\nFROM ${{BUILDER_IMAGE}}\nARG LATE_IMAGE=x\n");
        let bases = base_images(&d);
        assert_eq!(bases.len(), 2, "{bases:?}");
        assert_eq!(bases[0].arg, "BUILDER_IMAGE");
        assert_eq!(bases[0].digest(), Some(&pinned[10..]));
        assert_eq!(bases[1].reference, "cc:nonroot");
        assert_eq!(bases[1].digest(), None);
        // The repository's own Dockerfile names its bases this way.
        let ours = include_str!("../../Dockerfile");
        let args: Vec<String> = base_images(ours).into_iter().map(|b| b.arg).collect();
        assert_eq!(args, ["BUILDER_IMAGE", "RUNTIME_IMAGE"]);
        for arg in &args {
            assert!(
                ours.contains(&format!("FROM ${{{arg}}}")),
                "{arg} names no FROM"
            );
        }
    }

    #[test]
    fn a_pin_in_the_environment_replaces_the_dockerfile_and_needs_a_digest() {
        let bases = base_images("ARG BUILDER_IMAGE=rust:1\nARG RUNTIME_IMAGE=cc:nonroot\nFROM x\n");
        let pin = format!("cc:nonroot@sha256:{}", "f".repeat(64));
        let got = with_pins(bases.clone(), |k| {
            (k == "DEPLOYER_RUNTIME_IMAGE").then(|| pin.clone())
        })
        .unwrap();
        assert_eq!(got[0], bases[0]);
        assert_eq!(got[1].reference, pin);
        let err = with_pins(bases, |k| {
            (k == "DEPLOYER_BUILDER_IMAGE").then(|| "rust:1.96".to_owned())
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("DEPLOYER_BUILDER_IMAGE must name the image by digest"),
            "{err}"
        );
    }

    #[test]
    fn only_a_full_sha256_digest_is_accepted_from_docker() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            parse_digest(&format!("sha256:{hex}\n")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(parse_digest(""), None);
        assert_eq!(parse_digest(&format!("sha256:{}", &hex[1..])), None);
        assert_eq!(
            parse_digest(&format!("sha256:{}", hex.to_uppercase())),
            None
        );
        assert_eq!(parse_digest("error: not found"), None);
    }

    #[test]
    fn inputs_come_from_the_copy_lines() {
        let d = "FROM rust AS b\nCOPY Cargo.toml Cargo.lock ./\nCOPY --chown=1 gateway/ ./gateway\nFROM x\nCOPY --from=b /out/bin /bin\n";
        assert_eq!(
            inputs(d),
            vec!["Dockerfile", "Cargo.toml", "Cargo.lock", "gateway"]
        );
    }
}
