//! `destination.security`: TLS and SASL for a Kafka destination, as fields that are checked
//! here and become librdkafka properties (`security.protocol`, `sasl.*`, `ssl.*`).
//!
//! Invariants: every secret (`password`, `key_password`, or the variables their `_env` forms
//! name) stays a [`Secret`] and never prints; a file named here is checked to be readable
//! when the project is loaded, so a wrong path is a field error, not a handshake failure.

use serde::Deserialize;
use sluice_core::config::{given_or_env, FieldError};
use sluice_core::Secret;

/// The section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    protocol: Option<String>,
    sasl_mechanism: Option<String>,
    username: Option<String>,
    password: Option<Secret>,
    password_env: Option<String>,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    key_password: Option<Secret>,
    key_password_env: Option<String>,
    /// TLS: check the broker's name against its certificate (default true).
    verify_hostname: Option<bool>,
    kerberos_service_name: Option<String>,
    kerberos_principal: Option<String>,
    kerberos_keytab: Option<String>,
}

/// `security.protocol` values, as written in the project (librdkafka takes them in any case).
const PROTOCOLS: &[&str] = &["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
/// `sasl.mechanisms` values this build supports (librdkafka's built-in PLAIN and SCRAM, GSSAPI
/// through Cyrus SASL).
pub const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI"];

fn err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(format!("security.{field}"), message)
}

fn secret_or_env(
    value: Option<Secret>,
    env: Option<String>,
    field: &str,
) -> Result<Option<Secret>, FieldError> {
    let given = value.map(|s| s.expose().to_string());
    given_or_env(given, env, field)
        .map(|v| v.map(Secret::new))
        .map_err(|e| FieldError::new(format!("security.{}", e.field), e.message))
}

/// A file the client will read: it must exist and be readable now.
fn readable(field: &str, path: Option<String>) -> Result<Option<String>, FieldError> {
    let Some(path) = path else {
        return Ok(None);
    };
    std::fs::File::open(&path)
        .map(|_| Some(path.clone()))
        .map_err(|e| err(field, format!("cannot read {path}: {e}")))
}

impl RawSecurity {
    /// The librdkafka properties these settings stand for.
    pub fn check(self) -> Result<Vec<(String, Secret)>, FieldError> {
        let protocol = self
            .protocol
            .as_deref()
            .unwrap_or("plaintext")
            .to_ascii_lowercase();
        if !PROTOCOLS.contains(&protocol.as_str()) {
            return Err(err(
                "protocol",
                format!("{protocol:?}: use one of {}", PROTOCOLS.join(", ")),
            ));
        }
        let tls = protocol.ends_with("ssl");
        let sasl = protocol.starts_with("sasl");
        let mut props = vec![("security.protocol".to_string(), Secret::new(&protocol))];
        let mut set = |k: &str, v: &str| props.push((k.to_string(), Secret::new(v)));

        // TLS.
        let ca = readable("ca_file", self.ca_file)?;
        let cert = readable("cert_file", self.cert_file)?;
        let key = readable("key_file", self.key_file)?;
        let key_password = secret_or_env(self.key_password, self.key_password_env, "key_password")?;
        if !tls {
            for (field, given) in [
                ("ca_file", ca.is_some()),
                ("cert_file", cert.is_some()),
                ("key_file", key.is_some()),
                ("key_password", key_password.is_some()),
                ("verify_hostname", self.verify_hostname.is_some()),
            ] {
                if given {
                    return Err(err(
                        field,
                        format!("protocol {protocol} does not use TLS; use ssl or sasl_ssl, or remove {field}"),
                    ));
                }
            }
        }
        if cert.is_some() != key.is_some() {
            return Err(err(
                if cert.is_some() {
                    "key_file"
                } else {
                    "cert_file"
                },
                "a client certificate needs both cert_file and key_file",
            ));
        }
        if let Some(ca) = &ca {
            set("ssl.ca.location", ca);
        }
        if let (Some(c), Some(k)) = (&cert, &key) {
            set("ssl.certificate.location", c);
            set("ssl.key.location", k);
        }
        if tls {
            let verify = self.verify_hostname.unwrap_or(true);
            set(
                "ssl.endpoint.identification.algorithm",
                if verify { "https" } else { "none" },
            );
        }

        // SASL.
        let password = secret_or_env(self.password, self.password_env, "password")?;
        let kerberos = [
            (
                "kerberos_service_name",
                "sasl.kerberos.service.name",
                &self.kerberos_service_name,
            ),
            (
                "kerberos_principal",
                "sasl.kerberos.principal",
                &self.kerberos_principal,
            ),
            (
                "kerberos_keytab",
                "sasl.kerberos.keytab",
                &self.kerberos_keytab,
            ),
        ];
        match (sasl, self.sasl_mechanism.as_deref()) {
            (false, Some(_)) => {
                return Err(err(
                    "sasl_mechanism",
                    format!(
                        "protocol {protocol} does not use SASL; use sasl_plaintext or sasl_ssl"
                    ),
                ))
            }
            (false, None) => {
                for (field, given) in [
                    ("username", self.username.is_some()),
                    ("password", password.is_some()),
                ]
                .into_iter()
                .chain(kerberos.iter().map(|(f, _, v)| (*f, v.is_some())))
                {
                    if given {
                        return Err(err(
                            field,
                            format!("protocol {protocol} does not use SASL; use sasl_plaintext or sasl_ssl, or remove {field}"),
                        ));
                    }
                }
            }
            (true, None) => {
                return Err(err(
                    "sasl_mechanism",
                    format!(
                        "protocol {protocol} needs sasl_mechanism: one of {}",
                        SASL_MECHANISMS.join(", ")
                    ),
                ))
            }
            (true, Some(m)) => {
                let m = m.to_ascii_uppercase();
                if !SASL_MECHANISMS.contains(&m.as_str()) {
                    return Err(err(
                        "sasl_mechanism",
                        format!("{m:?}: use one of {}", SASL_MECHANISMS.join(", ")),
                    ));
                }
                set("sasl.mechanisms", &m);
                if m == "GSSAPI" {
                    for (field, prop, value) in &kerberos {
                        let value = match *field {
                            "kerberos_keytab" => readable(field, (*value).clone())?,
                            _ => (*value).clone(),
                        };
                        if let Some(v) = value {
                            set(prop, &v);
                        }
                    }
                } else {
                    if let Some((field, ..)) = kerberos.iter().find(|(_, _, v)| v.is_some()) {
                        return Err(err(field, format!("{field} is for GSSAPI, not {m}")));
                    }
                    let user = self.username.ok_or_else(|| {
                        err(
                            "username",
                            format!("SASL {m} needs username and password (or password_env)"),
                        )
                    })?;
                    set("sasl.username", &user);
                }
            }
        }
        if let Some(p) = password {
            props.push(("sasl.password".into(), p));
        } else if props
            .iter()
            .any(|(k, v)| k == "sasl.mechanisms" && v.expose() != "GSSAPI")
        {
            return Err(err(
                "password",
                "SASL needs password or password_env (the name of a variable that holds it)",
            ));
        }
        if let Some(p) = key_password {
            props.push(("ssl.key.password".into(), p));
        }
        Ok(props)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<(String, Secret)>, FieldError> {
        serde_yaml_ng::from_str::<RawSecurity>(yaml)
            .unwrap()
            .check()
    }

    fn get<'a>(props: &'a [(String, Secret)], k: &str) -> Option<&'a str> {
        props.iter().find(|(p, _)| p == k).map(|(_, v)| v.expose())
    }

    #[test]
    fn sasl_scram_over_tls_becomes_librdkafka_properties() {
        let props = parse(
            "{protocol: SASL_SSL, sasl_mechanism: scram-sha-512, username: u, password: pw, verify_hostname: false}",
        )
        .unwrap();
        assert_eq!(get(&props, "security.protocol"), Some("sasl_ssl"));
        assert_eq!(get(&props, "sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(get(&props, "sasl.username"), Some("u"));
        assert_eq!(get(&props, "sasl.password"), Some("pw"));
        assert_eq!(
            get(&props, "ssl.endpoint.identification.algorithm"),
            Some("none")
        );
        assert!(!format!("{props:?}").contains("pw"));
    }

    #[test]
    fn each_mistake_names_its_field() {
        let field = |yaml: &str| parse(yaml).unwrap_err().field;
        assert_eq!(field("{protocol: tls}"), "security.protocol");
        assert_eq!(field("{protocol: sasl_ssl}"), "security.sasl_mechanism");
        assert_eq!(
            field("{protocol: sasl_ssl, sasl_mechanism: OAUTHBEARER}"),
            "security.sasl_mechanism"
        );
        assert_eq!(
            field("{protocol: sasl_plaintext, sasl_mechanism: PLAIN, password: x}"),
            "security.username"
        );
        assert_eq!(
            field("{protocol: sasl_plaintext, sasl_mechanism: PLAIN, username: x}"),
            "security.password"
        );
        assert_eq!(
            field("{protocol: sasl_plaintext, sasl_mechanism: PLAIN, username: x, password_env: SLUICE_TEST_UNSET_VAR_9}"),
            "security.password_env"
        );
        assert_eq!(
            field("{protocol: plaintext, ca_file: /x}"),
            "security.ca_file"
        );
        assert_eq!(
            field("{protocol: ssl, ca_file: /nonexistent/ca.pem}"),
            "security.ca_file"
        );
        assert_eq!(
            field("{protocol: ssl, cert_file: /etc/hostname}"),
            "security.key_file"
        );
        assert_eq!(field("{protocol: ssl, username: u}"), "security.username");
        assert_eq!(
            field("{protocol: sasl_ssl, sasl_mechanism: PLAIN, username: u, password: p, kerberos_principal: k}"),
            "security.kerberos_principal"
        );
    }

    /// The client is built with TLS and every SASL mechanism the section offers, as librdkafka
    /// itself reports (`builtin.features`).
    #[test]
    fn the_client_is_built_with_tls_and_each_sasl_mechanism() {
        let features = crate::builtin_features().unwrap();
        let have: Vec<&str> = features.split(',').collect();
        for f in ["ssl", "sasl", "sasl_plain", "sasl_scram", "sasl_gssapi"] {
            assert!(have.contains(&f), "no {f} in {features}");
        }
    }

    #[test]
    fn gssapi_takes_kerberos_settings_and_no_password() {
        let props = parse(
            "{protocol: sasl_plaintext, sasl_mechanism: GSSAPI, kerberos_service_name: kafka, kerberos_principal: sluice@EXAMPLE.COM}",
        )
        .unwrap();
        assert_eq!(get(&props, "sasl.kerberos.service.name"), Some("kafka"));
        assert_eq!(
            get(&props, "sasl.kerberos.principal"),
            Some("sluice@EXAMPLE.COM")
        );
        assert_eq!(get(&props, "sasl.password"), None);
    }
}
