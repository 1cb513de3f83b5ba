//! What one deployment masks: the size limit, whether personal data is masked, and the
//! configured key paths. Built once from configuration and shared by every call.

use super::keys::{KeyPath, PathError, MAX_PATHS};

/// The masking rules: size limit, optional detectors, configured key paths.
#[derive(Clone, Debug)]
pub struct Rules {
    max_body_bytes: usize,
    emails: bool,
    phones: bool,
    paths: Vec<KeyPath>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_body_bytes: Rules::DEFAULT_MAX_BODY_BYTES,
            emails: false,
            phones: false,
            paths: Vec::new(),
        }
    }
}

impl Rules {
    /// The default size limit: 1 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

    /// The rules with a different size limit: a larger body is `TooLarge`.
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The rules with email addresses masked (`on`) or not.
    pub fn with_emails(mut self, on: bool) -> Self {
        self.emails = on;
        self
    }

    /// The rules with phone numbers masked (`on`) or not.
    pub fn with_phones(mut self, on: bool) -> Self {
        self.phones = on;
        self
    }

    /// The rules with these key paths (see [`super::keys`] for the syntax), replacing any before.
    pub fn with_paths<I, S>(mut self, paths: I) -> Result<Self, PathError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed = Vec::new();
        for path in paths {
            if parsed.len() == MAX_PATHS {
                return Err(PathError::TooManyPaths);
            }
            parsed.push(KeyPath::parse(path.as_ref())?);
        }
        self.paths = parsed;
        Ok(self)
    }

    /// The largest body that is masked.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Whether email addresses are masked.
    pub fn emails_enabled(&self) -> bool {
        self.emails
    }

    /// Whether phone numbers are masked.
    pub fn phones_enabled(&self) -> bool {
        self.phones
    }

    /// The configured key paths.
    pub fn paths(&self) -> &[KeyPath] {
        &self.paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_mask_no_personal_data_and_cap_at_one_mebibyte() {
        let rules = Rules::default();
        assert_eq!(rules.max_body_bytes(), 1 << 20);
        assert!(!rules.emails_enabled() && !rules.phones_enabled());
        assert!(rules.paths().is_empty());
    }

    #[test]
    fn a_bad_path_or_too_many_paths_are_refused() {
        assert!(Rules::default().with_paths(["a..b"]).is_err());
        let many = vec!["a"; MAX_PATHS + 1];
        assert_eq!(
            Rules::default().with_paths(many).err(),
            Some(PathError::TooManyPaths)
        );
        let rules = Rules::default()
            .with_paths(["$.Parameter.Value", "x"])
            .unwrap();
        assert_eq!(rules.paths().len(), 2);
    }
}
