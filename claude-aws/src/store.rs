//! Where the session is kept between runs: the gateway's address, the refresh token and a cached
//! short-lived access token with its expiry. Never an AWS secret. The OS keyring on macOS and
//! Windows; elsewhere (and whenever `CLAUDE_AWS_CONFIG_DIR` is set) a file created with mode 0600
//! in a 0700 directory, replaced atomically, never readable by others even for a moment.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::Error;

/// The session file's name in the config directory.
pub const FILE: &str = "session.json";
/// Refresh the access token when it has less than this left.
pub const MIN_LIFE_SECONDS: i64 = 60;

/// What is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The gateway this session belongs to.
    pub gateway: String,
    /// The gateway's refresh token, if it gave one.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The last access token.
    #[serde(default)]
    pub access_token: Option<String>,
    /// When it expires (unix seconds).
    #[serde(default)]
    pub access_expires_at: Option<i64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("gateway", &self.gateway)
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The cached access token if it has more than [`MIN_LIFE_SECONDS`] left at `now`.
    pub fn fresh_access(&self, now: i64) -> Option<&str> {
        match (&self.access_token, self.access_expires_at) {
            (Some(t), Some(exp)) if exp - now > MIN_LIFE_SECONDS => Some(t),
            _ => None,
        }
    }
}

/// The session store chosen for this environment.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    keyring: bool,
}

impl Store {
    /// The keyring where there is one, unless `CLAUDE_AWS_CONFIG_DIR` asks for a file.
    pub fn open(env: &Env) -> Result<Store, Error> {
        Ok(Store {
            dir: env.config_dir()?,
            keyring: cfg!(any(target_os = "macos", windows)) && env.config_dir_override().is_none(),
        })
    }

    /// A human description of where the session is kept.
    pub fn describe(&self) -> String {
        if self.keyring {
            keyring_store::DESCRIPTION.to_owned()
        } else {
            self.dir.join(FILE).display().to_string()
        }
    }

    /// The directory holding the session file and the refresh lock.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored session, if any.
    pub fn load(&self) -> Result<Option<Session>, Error> {
        let bytes = if self.keyring {
            keyring_store::get()?
        } else {
            match fs::read(self.dir.join(FILE)) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io("read the session file", &self.dir.join(FILE), e)),
            }
        };
        match bytes {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(|_| {
                Error::not_signed_in(&format!(
                    "the stored session in {} is unreadable",
                    self.describe()
                ))
            }),
        }
    }

    /// Stores `session`, replacing what was there.
    pub fn save(&self, session: &Session) -> Result<(), Error> {
        let bytes = serde_json::to_vec(session)
            .map_err(|e| Error::Failed(format!("could not encode the session: {e}")))?;
        if self.keyring {
            return keyring_store::set(&bytes);
        }
        private_dir(&self.dir)?;
        write_private(&self.dir.join(FILE), &bytes)
    }

    /// Forgets the session. True if there was one.
    pub fn delete(&self) -> Result<bool, Error> {
        if self.keyring {
            return keyring_store::delete();
        }
        let path = self.dir.join(FILE);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("remove the session file", &path, e)),
        }
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Failed(format!("could not {what} {}: {e}", path.display()))
}

/// Creates `dir` (and its parents) and makes it 0700.
pub fn private_dir(dir: &Path) -> Result<(), Error> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| io("create the directory", dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io("restrict the directory", dir, e))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically with mode 0600: a new file opened exclusively with that
/// mode (no umask can widen it), synced, then renamed over the old one.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomically(path, bytes, 0o600)
}

/// Writes `bytes` to `path` atomically, the new file created with `mode` from its first moment.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        #[cfg(unix)]
        {
            // The umask may have narrowed the mode; set it exactly (never wider than asked).
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", path, e));
    }
    Ok(())
}

#[cfg(any(target_os = "macos", windows))]
mod keyring_store {
    //! The session as one secret in the OS keyring (bytes, so Windows' blob limit is not halved).
    use crate::error::Error;

    pub const DESCRIPTION: &str = "the system keyring (service claude-aws, account session)";

    fn entry() -> Result<keyring::Entry, Error> {
        keyring::Entry::new("claude-aws", "session")
            .map_err(|e| Error::Failed(format!("the system keyring is unavailable: {e}")))
    }

    pub fn get() -> Result<Option<Vec<u8>>, Error> {
        match entry()?.get_secret() {
            Ok(b) => Ok(Some(b)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(Error::Failed(format!(
                "could not read the system keyring: {e}"
            ))),
        }
    }

    pub fn set(bytes: &[u8]) -> Result<(), Error> {
        entry()?
            .set_secret(bytes)
            .map_err(|e| Error::Failed(format!("could not write to the system keyring: {e}")))
    }

    pub fn delete() -> Result<bool, Error> {
        match entry()?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(Error::Failed(format!(
                "could not delete from the system keyring: {e}"
            ))),
        }
    }
}

#[cfg(not(any(target_os = "macos", windows)))]
mod keyring_store {
    //! No keyring on this platform: the file store is always chosen, so these are never reached.
    use crate::error::Error;

    pub const DESCRIPTION: &str = "no keyring";

    fn none() -> Error {
        Error::Failed("this platform has no system keyring".into())
    }
    pub fn get() -> Result<Option<Vec<u8>>, Error> {
        Err(none())
    }
    pub fn set(_: &[u8]) -> Result<(), Error> {
        Err(none())
    }
    pub fn delete() -> Result<bool, Error> {
        Err(none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            gateway: "https://gw.example.com".into(),
            refresh_token: Some("rt-secret".into()),
            access_token: Some("at-secret".into()),
            access_expires_at: Some(1_000),
        }
    }

    #[test]
    fn a_cached_access_token_counts_only_with_more_than_a_minute_left() {
        let s = session();
        assert_eq!(s.fresh_access(900), Some("at-secret"));
        assert_eq!(s.fresh_access(940), None, "exactly 60 s left is not enough");
        assert_eq!(s.fresh_access(2_000), None);
        let debug = format!("{s:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[cfg(unix)]
    #[test]
    fn the_session_file_is_0600_in_a_0700_dir_and_never_wider() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/claude-aws");
        let store = Store {
            dir: dir.clone(),
            keyring: false,
        };
        assert_eq!(store.load().unwrap(), None);
        store.save(&session()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join(FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(store.load().unwrap(), Some(session()));

        // A file someone widened is replaced by a 0600 one, not written through.
        fs::set_permissions(dir.join(FILE), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let mut s = session();
        s.access_token = Some("at-2".into());
        store.save(&s).unwrap();
        assert_eq!(mode(&dir.join(FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(store.load().unwrap(), Some(s));
        // Nothing is left behind but the file.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE)]);

        assert!(store.delete().unwrap());
        assert!(!store.delete().unwrap());
        assert_eq!(store.load().unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_permissive_umask_cannot_widen_the_new_file() {
        use std::os::unix::fs::PermissionsExt;
        // The mode is given at creation (O_CREAT|O_EXCL with 0600); the umask can only remove
        // bits, and set_permissions pins it exactly. Writing over a 0666 file shows it is new.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn an_unreadable_session_says_sign_in_again() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(FILE), b"{not json").unwrap();
        let store = Store {
            dir: tmp.path().to_path_buf(),
            keyring: false,
        };
        assert!(matches!(store.load(), Err(Error::NotSignedIn(_))));
    }
}
