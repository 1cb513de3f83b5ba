//! The local state directory of a deployment: the CA and certificates the deployer made, the
//! ARNs it imported them under, the VPN profiles it wrote and the last outputs it saw. It holds
//! private keys: keep it like any other secret (files are written with mode 0600).
//!
//! The account holds the deployment's copy of that state ([`Shared`], in one Secrets Manager
//! secret found by the deployment's name, see [`crate::aws::statestore`]); the directory is the
//! working copy of this machine, replaced by the account's whenever the two differ.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the deployer remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// What the account keeps for a deployment: the remembered state and the key material under
/// `pki/` (the CA, the server certificates and their keys), by path inside the state directory.
/// VPN client certificates stay with the machine that issued them: one per developer would not
/// fit a secret, and another machine issues its own from the same CA, which the endpoint accepts
/// as well.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    /// The layout's version.
    #[serde(default)]
    pub version: u32,
    /// The remembered ARNs, image, config fingerprint and outputs.
    #[serde(default)]
    pub state: State,
    /// Certificates and keys, by path (`pki/ca.pem`, `pki/vpn-server.key`, ...).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

impl Shared {
    /// The layout written today.
    pub const VERSION: u32 = 1;

    /// Whether it holds nothing worth keeping.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.state.gateway_certificate_arn.is_none()
            && self.state.vpn_certificate_arn.is_none()
            && self.state.image_uri.is_none()
            && self.state.outputs.is_empty()
    }

    /// The account's copy `account` over this machine's `self`: where both have a file or a
    /// value, the account's wins; what only this machine has is kept (the deployer never removes
    /// a key from the account, so it is one the account has not received yet, such as the CA of
    /// a deployment made before its state moved to the account).
    pub fn under(&self, account: &Shared) -> Shared {
        let mut files = self.files.clone();
        files.extend(account.files.clone());
        let (mine, theirs) = (&self.state, &account.state);
        let theirs_or_mine =
            |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        let outputs = if theirs.outputs.is_empty() {
            mine.outputs.clone()
        } else {
            theirs.outputs.clone()
        };
        Shared {
            version: Self::VERSION,
            state: State {
                gateway_certificate_arn: theirs_or_mine(
                    &theirs.gateway_certificate_arn,
                    &mine.gateway_certificate_arn,
                ),
                vpn_certificate_arn: theirs_or_mine(
                    &theirs.vpn_certificate_arn,
                    &mine.vpn_certificate_arn,
                ),
                image_uri: theirs_or_mine(&theirs.image_uri, &mine.image_uri),
                config_sha256: theirs_or_mine(&theirs.config_sha256, &mine.config_sha256),
                outputs,
            },
            files,
        }
    }

    /// What differs between `self` and `other`, named for the operator (file paths, state fields).
    pub fn differences(&self, other: &Shared) -> Vec<String> {
        let mut out: Vec<String> = self
            .files
            .keys()
            .chain(other.files.keys())
            .filter(|k| self.files.get(*k) != other.files.get(*k))
            .cloned()
            .collect();
        out.dedup();
        out.sort();
        out.dedup();
        let (a, b) = (&self.state, &other.state);
        if a.gateway_certificate_arn != b.gateway_certificate_arn {
            out.push("gateway certificate ARN".into());
        }
        if a.vpn_certificate_arn != b.vpn_certificate_arn {
            out.push("VPN certificate ARN".into());
        }
        if a.image_uri != b.image_uri || a.config_sha256 != b.config_sha256 {
            out.push("last deployed image and config".into());
        }
        if a.outputs != b.outputs {
            out.push("stack outputs".into());
        }
        out
    }
}

/// The folders whose certificates and keys the account keeps, and the endings kept.
const KEPT: [(&str, &[&str]); 1] = [("pki", &[".pem", ".key"])];
/// At most this many files are kept (a CA and two servers, each a certificate and a key).
const MAX_FILES: usize = 16;

impl StateDir {
    /// The certificates and keys of the directory the account keeps, by path.
    pub fn kept_files(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (dir, endings) in KEPT {
            let Ok(entries) = std::fs::read_dir(self.path(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !endings.iter().any(|e| name.ends_with(e)) {
                    continue;
                }
                let rel = format!("{dir}/{name}");
                if let Some(text) = self.read(&rel) {
                    out.insert(rel, text);
                }
                if out.len() > MAX_FILES {
                    return Err(Error::failed(format!(
                        "{} holds more than {MAX_FILES} certificates and keys; remove the ones no longer used",
                        self.root.display()
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The directory's state and key material, as the account would keep it.
    pub fn snapshot(&self) -> Result<Shared> {
        Ok(Shared {
            version: Shared::VERSION,
            state: self.load()?,
            files: self.kept_files()?,
        })
    }

    /// Makes the directory hold `shared`: its files written and its state saved (files it
    /// does not name are left alone).
    pub fn apply(&self, shared: &Shared) -> Result<()> {
        if let Some(rel) = shared.files.keys().find(|rel| !is_kept_path(rel)) {
            return Err(Error::failed(format!(
                "the deployment's state names a file {rel:?} outside pki/"
            )));
        }
        for (rel, text) in &shared.files {
            if self.read(rel).as_deref() != Some(text.as_str()) {
                self.write(rel, text)?;
            }
        }
        self.save(&shared.state)
    }
}

/// Whether `rel` is a path [`StateDir::kept_files`] could have produced (so a damaged or hostile
/// copy cannot write elsewhere).
fn is_kept_path(rel: &str) -> bool {
    let Some((dir, name)) = rel.split_once('/') else {
        return false;
    };
    KEPT.iter()
        .any(|(d, endings)| *d == dir && endings.iter().any(|e| name.ends_with(e)))
        && !name.is_empty()
        && !name.contains('/')
        && !name.contains('\\')
        && !name.starts_with('.')
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::failed(format!("cannot write {}: {e}", path.display()))
}

/// Writes `text` to `path` readable by its owner only (0600 on Unix, whatever mode an older
/// file had), whole or not at all: into a new file beside it, then renamed over it, so a run
/// that dies half way leaves the old file, never half a key.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_replaced_whole_and_left_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("ca.key");
        std::fs::write(&key, "old key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&key, "new key").unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "new key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Nothing else is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_accounts_copy_replaces_the_directorys_and_stays_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateDir::new(Some(dir.path()), "acme");
        st.write("pki/ca.pem", "local ca").unwrap();
        st.write("pki/old.key", "stale").unwrap();
        st.write("vpn/dev.ovpn", "derived, not kept").unwrap();
        st.write("vpn/dev.key", "this machine's client key, not kept")
            .unwrap();
        let mut shared = Shared::default();
        shared
            .files
            .insert("pki/ca.pem".into(), "account ca".into());
        shared
            .files
            .insert("pki/vpn-server.pem".into(), "server".into());
        shared.state.vpn_certificate_arn = Some("arn:aws:acm:x".into());
        let before = st.snapshot().unwrap();
        assert_eq!(
            before.differences(&shared),
            [
                "pki/ca.pem",
                "pki/old.key",
                "pki/vpn-server.pem",
                "VPN certificate ARN"
            ]
        );
        let merged = before.under(&shared);
        // The account's CA replaces this machine's; a key only this machine has is kept.
        assert_eq!(
            before.differences(&merged),
            ["pki/ca.pem", "pki/vpn-server.pem", "VPN certificate ARN"]
        );
        assert_eq!(merged.files["pki/ca.pem"], "account ca");
        assert_eq!(merged.files["pki/old.key"], "stale");
        st.apply(&merged).unwrap();
        let after = st.snapshot().unwrap();
        assert_eq!(after, merged);
        // A value only this machine has is kept too.
        let mut mine = after.clone();
        mine.state.gateway_certificate_arn = Some("arn:aws:acm:gw".into());
        assert_eq!(
            mine.under(&shared).state.gateway_certificate_arn.as_deref(),
            Some("arn:aws:acm:gw")
        );
        assert!(mine.under(&shared).differences(&mine).is_empty());
        assert!(st.read("vpn/dev.ovpn").is_some() && st.read("vpn/dev.key").is_some());

        for bad in [
            "../x.pem",
            "pki/../../x.pem",
            "etc/passwd",
            "pki/",
            "pki/.hidden.key",
            "vpn/dev.key",
        ] {
            let mut hostile = Shared::default();
            hostile.files.insert(bad.into(), "x".into());
            assert!(st.apply(&hostile).is_err(), "{bad}");
        }
    }
}
