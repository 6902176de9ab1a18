//! Secrets at rest: every password and key the service keeps is sealed with XChaCha20-Poly1305
//! under a master key that is not in the metadata store — a key file created on first start
//! with owner-only permissions, or `SLUICE_MASTER_KEY` (base64 of 32 bytes). Each sealed value
//! is bound to what it belongs to (associated data `datasource:NAME`, `project:NAME`), so a
//! sealed blob moved to another record does not open.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Why the master key or a sealed value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file cannot be read or written.
    #[error("master key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong and what to do.
        message: String,
    },
    /// `SLUICE_MASTER_KEY` is not base64 of 32 bytes.
    #[error("SLUICE_MASTER_KEY is not the base64 of 32 bytes: give a key made by `head -c 32 /dev/urandom | base64`")]
    BadEnvKey,
    /// A sealed value does not open with this key (another key, or damaged).
    #[error("a stored secret does not open with this master key (was the key file replaced, or SLUICE_MASTER_KEY changed?)")]
    Open,
    /// The operating system gave no random bytes.
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
}

/// Random bytes from the OS.
pub fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(b)
}

/// The master key.
pub struct Vault {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// The key from `SLUICE_MASTER_KEY` when set, else from `file` (created with mode 0600 on
    /// first use).
    pub fn open(file: &Path) -> Result<Self, SecretError> {
        if let Ok(v) = std::env::var("SLUICE_MASTER_KEY") {
            let key = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .map_err(|_| SecretError::BadEnvKey)?;
            return Self::from_key(&key).ok_or(SecretError::BadEnvKey);
        }
        let bad = |message: String| SecretError::KeyFile {
            path: file.to_path_buf(),
            message,
        };
        match std::fs::read(file) {
            Ok(bytes) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    if let Ok(m) = std::fs::metadata(file) {
                        if m.permissions().mode() & 0o077 != 0 {
                            tracing::warn!(
                                "master key file {} can be read by others: chmod 600 it",
                                file.display()
                            );
                        }
                    }
                }
                Self::from_key(&bytes).ok_or_else(|| {
                    bad("it does not hold a 32-byte key; restore the original file".into())
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random::<32>()?;
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(file).map_err(|e| bad(e.to_string()))?;
                f.write_all(&key)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| bad(e.to_string()))?;
                tracing::info!("created the master key file {}", file.display());
                Self::from_key(&key).ok_or_else(|| bad("key of the wrong size".into()))
            }
            Err(e) => Err(bad(e.to_string())),
        }
    }

    fn from_key(key: &[u8]) -> Option<Self> {
        (key.len() == 32).then(|| Self {
            cipher: XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key)),
        })
    }

    /// Seals `plain` for `owner`: nonce (24 bytes) then ciphertext and tag.
    pub fn seal(&self, owner: &str, plain: &[u8]) -> Result<Vec<u8>, SecretError> {
        let nonce = random::<24>()?;
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open)?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(out)
    }

    /// Opens what [`Vault::seal`] sealed for `owner`.
    pub fn open_sealed(&self, owner: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 24 {
            return Err(SecretError::Open);
        }
        let (nonce, ct) = sealed.split_at(24);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_owner_and_key() -> Result<(), SecretError> {
        let v = Vault::from_key(&[7u8; 32]).ok_or(SecretError::BadEnvKey)?;
        let sealed = v.seal("datasource:a", b"hunter2")?;
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(v.open_sealed("datasource:a", &sealed)?, b"hunter2");
        assert!(v.open_sealed("datasource:b", &sealed).is_err());
        let other = Vault::from_key(&[8u8; 32]).ok_or(SecretError::BadEnvKey)?;
        assert!(other.open_sealed("datasource:a", &sealed).is_err());
        // Two seals of one value differ (fresh nonces).
        assert_ne!(sealed, v.seal("datasource:a", b"hunter2")?);
        Ok(())
    }
}
