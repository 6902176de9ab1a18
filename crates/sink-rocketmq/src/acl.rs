//! RocketMQ ACL request signing, as the Java client's `AclClientRPCHook` does it (ACL 1.0, and
//! the remoting side of ACL 2.0): every request carries `AccessKey`, optionally
//! `SecurityToken`, and `Signature` = base64(HMAC-SHA1(secret key, the values of all header
//! fields sorted by name, then the body)).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sluice_core::Secret;

use crate::remoting::Command;

/// An access key and its secret.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `AccessKey`.
    pub access_key: String,
    /// The secret key (never printed).
    pub secret_key: Secret,
    /// `SecurityToken` (STS), when one is used.
    pub security_token: Option<Secret>,
}

impl Credentials {
    /// Adds `AccessKey`, `SecurityToken` and `Signature` to `cmd`.
    pub fn sign(&self, cmd: &mut Command) {
        cmd.ext.insert("AccessKey".into(), self.access_key.clone());
        if let Some(t) = &self.security_token {
            cmd.ext
                .insert("SecurityToken".into(), t.expose().to_string());
        }
        cmd.ext.remove("Signature");
        // `ext` is a BTreeMap: its values come in key order, as the Java client's TreeMap.
        let mut content: Vec<u8> = cmd
            .ext
            .values()
            .flat_map(|v| v.as_bytes().to_vec())
            .collect();
        content.extend_from_slice(&cmd.body);
        let signature = signature(self.secret_key.expose(), &content);
        cmd.ext.insert("Signature".into(), signature);
    }
}

/// base64(HMAC-SHA1(key, content)).
fn signature(key: &str, content: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha1>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(content);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected values were computed with Python's `hmac` and `base64` modules (an
    /// implementation that is not this one).
    #[test]
    fn the_signature_covers_sorted_field_values_then_the_body() {
        assert_eq!(signature("sk", b"ak1t"), "pGRs/zNsrkZ23a+A7Nah9fQl7nw=");
        let c = Credentials {
            access_key: "ak".into(),
            secret_key: Secret::new("sk"),
            security_token: None,
        };
        let mut cmd = Command::request(17, [("topic", "t".to_string()), ("b", "1".to_string())]);
        cmd.body = b"xyz".to_vec();
        c.sign(&mut cmd);
        // Fields by name: AccessKey=ak, b=1, topic=t; then the body.
        assert_eq!(
            cmd.ext.get("Signature").map(String::as_str),
            Some("s/Nczu0rya5Hb6IXD966XkkIwjY=")
        );
        assert_eq!(cmd.ext.get("AccessKey").map(String::as_str), Some("ak"));
        // Signed again (sent again on a new connection): the same signature.
        let first = cmd.ext.clone();
        c.sign(&mut cmd);
        assert_eq!(cmd.ext, first);
    }
}
