//! The gateway image: content-addressed tags and the build-and-push that runs only when the
//! registry does not have the tag yet.
//!
//! The tag is `src-` and the first 20 hex digits of a SHA-256 over everything the Docker build
//! reads (the Dockerfile and every source its build stage copies in, read from its `COPY` lines,
//! minus what `.dockerignore` leaves out) and the target platform. Equal inputs give the
//! same tag on any machine, so a re-run finds the tag in ECR and pushes nothing; any change gives a
//! new tag, which an immutable repository accepts.

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

/// The content tag of the build inputs under `root` for `platform`.
pub fn content_tag(root: &Path, platform: &str) -> Result<String> {
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile"))
        .map_err(|e| Error::failed(format!("cannot read the Dockerfile: {e}")))?;
    let mut files = Vec::new();
    for input in inputs(&dockerfile) {
        collect(root, &root.join(input), &mut files)?;
    }
    files.sort();
    let mut ctx = Context::new(&SHA256);
    ctx.update(platform.as_bytes());
    ctx.update(b"\0");
    for rel in &files {
        let bytes = std::fs::read(root.join(rel))
            .map_err(|e| Error::failed(format!("cannot read {rel}: {e}")))?;
        ctx.update(rel.as_bytes());
        ctx.update(b"\0");
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(&bytes);
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
    if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| Error::failed(format!("cannot list {}: {e}", path.display())))?;
        for entry in entries.flatten() {
            collect(root, &entry.path(), out)?;
        }
    } else if path.is_file() {
        if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Builds the image from `root` for `platform` and pushes it as `uri`, logging in to the registry
/// with `password` (user `AWS`). Uses the `docker` command.
pub async fn build_and_push(root: &Path, uri: &str, platform: &str, password: &str) -> Result<()> {
    let registry = uri.split('/').next().unwrap_or_default();
    let tag = uri.rsplit(':').next().unwrap_or_default();
    run_docker(
        &[
            "build",
            "--platform",
            platform,
            "--build-arg",
            &format!("REVISION={tag}"),
            "-t",
            uri,
            &root.to_string_lossy(),
        ],
        None,
    )
    .await?;
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
        let a = content_tag(dir.path(), "linux/amd64").unwrap();
        assert_eq!(a, content_tag(dir.path(), "linux/amd64").unwrap());
        assert!(a.starts_with("src-") && a.len() == 24);
        std::fs::write(dir.path().join("gateway/target/junk"), "still ignored").unwrap();
        assert_eq!(a, content_tag(dir.path(), "linux/amd64").unwrap());
        assert_ne!(a, content_tag(dir.path(), "linux/arm64").unwrap());
        std::fs::write(dir.path().join("gateway/Cargo.toml"), "[package] ").unwrap();
        assert_ne!(a, content_tag(dir.path(), "linux/amd64").unwrap());
        assert_eq!(
            find_source_dir(&dir.path().join("gateway")).unwrap(),
            dir.path()
        );
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
