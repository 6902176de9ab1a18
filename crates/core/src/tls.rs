//! TLS to a database (`tls:` of a source or a database destination): the mode, as MySQL's
//! `--ssl-mode` names them, and the files. Each client crate turns it into its own library's
//! settings; this module only checks what was written.
//!
//! Invariants: a file named here is readable when the project is loaded (a wrong path is a
//! field error, not a handshake failure later); `cert_file` and `key_file` come together.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::FieldError;

/// How the client uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain TCP (the default without a `tls` section).
    #[default]
    Disabled,
    /// TLS when the server offers it, plain TCP otherwise; the certificate is not checked.
    Preferred,
    /// TLS or no connection; the certificate is not checked.
    Required,
    /// TLS, and the server's certificate must chain to `ca_file` (or the system's roots).
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyIdentity,
}

impl TlsMode {
    /// The names as written.
    pub const NAMES: &'static [&'static str] = &[
        "disabled",
        "preferred",
        "required",
        "verify_ca",
        "verify_identity",
    ];

    /// Parses a name of [`TlsMode::NAMES`] (`-` and `_` alike, any case).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" => Self::Disabled,
            "preferred" => Self::Preferred,
            "required" => Self::Required,
            "verify_ca" => Self::VerifyCa,
            "verify_identity" => Self::VerifyIdentity,
            _ => return None,
        })
    }

    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Preferred => "preferred",
            Self::Required => "required",
            Self::VerifyCa => "verify_ca",
            Self::VerifyIdentity => "verify_identity",
        }
    }

    /// Whether the server's certificate is checked against a CA.
    pub fn verifies(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyIdentity)
    }
}

/// Checked TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    /// The mode.
    pub mode: TlsMode,
    /// PEM file of the CA(s) the server's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// The `tls` section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    mode: Option<String>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

impl RawTls {
    /// Checks the section; field names are relative to it (`mode`, `ca_file`), the caller
    /// prefixes the section (`source.tls.`).
    pub fn check(self) -> Result<Tls, FieldError> {
        let mode = match self.mode.as_deref() {
            None => {
                return Err(FieldError::new(
                    "mode",
                    format!("give the TLS mode: one of {}", TlsMode::NAMES.join(", ")),
                ))
            }
            Some(m) => TlsMode::parse(m).ok_or_else(|| {
                FieldError::new(
                    "mode",
                    format!("{m:?}: use one of {}", TlsMode::NAMES.join(", ")),
                )
            })?,
        };
        for (field, path) in [
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ] {
            if let Some(p) = path {
                if mode == TlsMode::Disabled {
                    return Err(FieldError::new(
                        field,
                        format!("mode disabled uses no TLS; remove {field} or choose another mode"),
                    ));
                }
                std::fs::File::open(p).map_err(|e| {
                    FieldError::new(field, format!("cannot read {}: {e}", p.display()))
                })?;
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(FieldError::new(
                if self.cert_file.is_some() {
                    "key_file"
                } else {
                    "cert_file"
                },
                "a client certificate needs both cert_file and key_file",
            ));
        }
        Ok(Tls {
            mode,
            ca_file: self.ca_file,
            cert_file: self.cert_file,
            key_file: self.key_file,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(mode: Option<&str>, ca: Option<&str>, cert: Option<&str>) -> RawTls {
        RawTls {
            mode: mode.map(String::from),
            ca_file: ca.map(PathBuf::from),
            cert_file: cert.map(PathBuf::from),
            key_file: None,
        }
    }

    #[test]
    fn each_mistake_names_its_field() {
        let field = |r: RawTls| r.check().unwrap_err().field;
        assert_eq!(field(raw(None, None, None)), "mode");
        assert_eq!(field(raw(Some("sometimes"), None, None)), "mode");
        assert_eq!(
            field(raw(Some("disabled"), Some("/etc/hostname"), None)),
            "ca_file"
        );
        assert_eq!(
            field(raw(Some("verify_ca"), Some("/nonexistent/ca.pem"), None)),
            "ca_file"
        );
        assert_eq!(
            field(raw(Some("required"), None, Some("/etc/hostname"))),
            "key_file"
        );
        let ok = raw(Some("VERIFY-IDENTITY"), Some("/etc/hostname"), None)
            .check()
            .unwrap();
        assert_eq!(ok.mode, TlsMode::VerifyIdentity);
    }
}
