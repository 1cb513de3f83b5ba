//! Where configuration reads the outside world: environment variables and `${file:}` references.
//!
//! Everything that reads the process environment goes through [`Env`], so tests feed a map instead
//! of mutating the real environment.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// The environment a config is loaded in: variables and readable files.
pub trait Env {
    /// The value of an environment variable, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
    /// The contents of a file, as text.
    fn read_file(&self, path: &Path) -> io::Result<String>;

    /// True when the variable is set to `1` or `true` (case-insensitive).
    fn flag(&self, name: &str) -> bool {
        self.var(name)
            .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
            .unwrap_or(false)
    }
}

/// The real process environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    #[allow(clippy::disallowed_methods)] // this is the one place that reads the process environment
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &Path) -> io::Result<String> {
        read_capped(path)
    }
}

/// Reads a UTF-8 file of at most [`MAX_CONFIG_BYTES`](super::budget::MAX_CONFIG_BYTES): a config
/// or a secret it names. A larger file (or an endless one, such as a device) is refused after
/// reading one byte past the limit.
pub fn read_capped(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let limit = super::budget::MAX_CONFIG_BYTES;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// A fixed set of variables and files, for tests and for callers that build a config in memory.
#[derive(Debug, Clone, Default)]
pub struct MapEnv {
    vars: HashMap<String, String>,
    files: HashMap<PathBuf, String>,
}

impl MapEnv {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a variable.
    pub fn with_var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Adds a file.
    pub fn with_file(mut self, path: impl Into<PathBuf>, contents: &str) -> Self {
        self.files.insert(path.into(), contents.to_owned());
        self
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn read_file(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_or_huge_file_is_refused_after_the_limit() {
        let err = read_capped(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("s");
        std::fs::write(&small, "secret\n").unwrap();
        assert_eq!(read_capped(&small).unwrap(), "secret\n");
    }
}
