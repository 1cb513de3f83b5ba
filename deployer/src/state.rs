//! The local state directory of a deployment: the CA and certificates the deployer made, the
//! ARNs it imported them under, the VPN profiles it wrote and the last outputs it saw. It holds
//! private keys: keep it like any other secret (files are written with mode 0600).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the deployer remembers between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// ACM ARN of the gateway certificate imported in self-signed mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_certificate_arn: Option<String>,
    /// ACM ARN of the VPN server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpn_certificate_arn: Option<String>,
    /// The image last deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
    /// Fingerprint of the gateway config last deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
    /// Outputs of each stack, by stack name.
    #[serde(default)]
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
}

/// The directory and its files.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// `dir`, or `.deployer/<deployment>` under the current directory.
    pub fn new(dir: Option<&Path>, deployment: &str) -> Self {
        let root = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| Path::new(".deployer").join(deployment));
        Self { root }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside it.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Reads a file inside it, if present.
    pub fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path(rel)).ok()
    }

    /// Writes a file inside it, readable only by the owner.
    pub fn write(&self, rel: &str, text: &str) -> Result<PathBuf> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        write_private(&path, text).map_err(|e| io_err(&path, e))?;
        Ok(path)
    }

    /// The remembered state (empty when there is none yet).
    pub fn load(&self) -> Result<State> {
        match self.read("state.json") {
            None => Ok(State::default()),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                Error::failed(format!(
                    "{} is damaged: {e}",
                    self.path("state.json").display()
                ))
            }),
        }
    }

    /// Saves the state.
    pub fn save(&self, state: &State) -> Result<()> {
        let text = serde_json::to_string_pretty(state)
            .map_err(|e| Error::failed(format!("cannot write the state: {e}")))?;
        self.write("state.json", &text).map(|_| ())
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::failed(format!("cannot write {}: {e}", path.display()))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
