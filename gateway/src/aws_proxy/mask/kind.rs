//! What a masked value was: the kinds that name a `[MASKED:kind]` token, and the count of
//! masked values per kind that a recording and the metrics report.

use std::fmt;

/// The kind of a masked value, written into its token as `[MASKED:kind]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An AWS access key id (`AKIA…`, `ASIA…`).
    AwsAccessKeyId,
    /// An AWS secret access key.
    AwsSecretAccessKey,
    /// A private key: a PEM block, or the value of a private-key field.
    PrivateKey,
    /// A JSON Web Token.
    Jwt,
    /// A password: in a connection string, or the value of a password field.
    Password,
    /// The value of a token field (`SessionToken`, `AccessToken`, …).
    Token,
    /// The value of a secret field (`SecretString`, `ClientSecret`, a configured path, …).
    Secret,
    /// An email address (only when enabled).
    Email,
    /// A phone number (only when enabled).
    Phone,
}

impl Kind {
    /// Every kind, in the order of [`Counts`].
    pub const ALL: [Kind; 9] = [
        Kind::AwsAccessKeyId,
        Kind::AwsSecretAccessKey,
        Kind::PrivateKey,
        Kind::Jwt,
        Kind::Password,
        Kind::Token,
        Kind::Secret,
        Kind::Email,
        Kind::Phone,
    ];

    /// The name written into the token and reported with counts.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AwsAccessKeyId => "aws_access_key_id",
            Kind::AwsSecretAccessKey => "aws_secret_access_key",
            Kind::PrivateKey => "private_key",
            Kind::Jwt => "jwt",
            Kind::Password => "password",
            Kind::Token => "token",
            Kind::Secret => "secret",
            Kind::Email => "email",
            Kind::Phone => "phone",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a token starts; nothing a detector finds starts this way.
pub(crate) const TOKEN_PREFIX: &str = "[MASKED:";

/// The token that replaces a value of `kind`.
pub(crate) fn token(kind: Kind) -> String {
    format!("{TOKEN_PREFIX}{}]", kind.as_str())
}

/// Whether `s` is exactly one token, so masking it again would change nothing.
pub(crate) fn is_token(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|name| Kind::ALL.iter().any(|k| k.as_str() == name))
}

/// How many values of each kind one body had masked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts([u32; Kind::ALL.len()]);

impl Counts {
    /// The number of masked values of `kind`.
    pub fn get(&self, kind: Kind) -> u32 {
        self.0[kind.index()]
    }

    /// The number of masked values of every kind together.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }

    /// The kinds that had values masked, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (Kind, u32)> + '_ {
        Kind::ALL
            .iter()
            .map(|&k| (k, self.get(k)))
            .filter(|&(_, n)| n > 0)
    }

    pub(crate) fn add(&mut self, kind: Kind) {
        let n = &mut self.0[kind.index()];
        *n = n.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_recognised_only_whole_and_with_a_known_kind() {
        for kind in Kind::ALL {
            assert!(is_token(&token(kind)), "{kind}");
        }
        assert!(!is_token("[MASKED:nothing]"));
        assert!(!is_token(" [MASKED:jwt]"));
        assert!(!is_token("[MASKED:jwt"));
    }

    #[test]
    fn counts_report_only_kinds_that_were_masked() {
        let mut counts = Counts::default();
        counts.add(Kind::Jwt);
        counts.add(Kind::Jwt);
        counts.add(Kind::Email);
        assert_eq!(counts.get(Kind::Jwt), 2);
        assert_eq!(counts.total(), 3);
        assert_eq!(
            counts.iter().collect::<Vec<_>>(),
            vec![(Kind::Jwt, 2), (Kind::Email, 1)]
        );
    }
}
