//! Secrets in settings: passwords, URLs that carry credentials, secret client properties.
//!
//! Invariant: neither type ever prints its secret. `Debug` and `Display` show a redacted form
//! (a URL keeps its scheme, user and address, so messages still say where), and only
//! [`Secret::expose`] / [`SecretUrl::expose`] give the text, at the one place that hands it to
//! a client library. A URL too broken to parse is redacted just as well: everything between
//! `scheme://user:` and the last `@` goes.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// What stands for a hidden secret in any output.
pub const REDACTED: &str = "***";

/// How to write a password a URL cannot hold as is (appended to "... is not a URL").
pub const URL_PASSWORD_HINT: &str =
    " (characters such as @ / # ? % in a password must be percent-encoded: %23 for #)";

/// A secret value (a password, a key): never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the client library that needs it (never for a message).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A connection URL (`mysql://user:password@host:port/...`) whose password never prints.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The whole URL, for the client library that connects (never for a message).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({:?})", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretUrl)
    }
}

/// `text` with the password of a `scheme://user:password@host` URL replaced by `***`; works on
/// text that is not a valid URL (the case where a parse error would otherwise quote it whole).
/// The user info ends at the last `@`, so a password holding `@`, `/` or `#` is hidden whole.
pub fn redact_url(text: &str) -> String {
    let Some(s) = text.find("://") else {
        return text.to_string();
    };
    let rest = &text[s + 3..];
    let Some(at) = rest.rfind('@') else {
        return text.to_string();
    };
    let auth = &rest[..at];
    match auth.find(':') {
        Some(colon) => format!(
            "{}{}:{REDACTED}@{}",
            &text[..s + 3],
            &auth[..colon],
            &rest[at + 1..]
        ),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        let u = SecretUrl::new("mysql://app:pa#ss/w@rd@db.example:3306/x");
        for shown in [format!("{u}"), format!("{u:?}"), u.redacted()] {
            assert!(!shown.contains("pa#ss"), "{shown}");
            assert!(!shown.contains("w@rd"), "{shown}");
            assert!(shown.contains("app:***@db.example:3306"), "{shown}");
        }
        assert_eq!(u.expose(), "mysql://app:pa#ss/w@rd@db.example:3306/x");
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(redact_url("mysql://root@h:1"), "mysql://root@h:1");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
