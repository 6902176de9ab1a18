//! A client of the Confluent Schema Registry REST API (the subset a producer needs): register
//! a schema under a subject (`POST /subjects/{subject}/versions`), which returns its id; the
//! registry decides compatibility with the subject's earlier versions.
//!
//! Invariants:
//! - A schema is sent once per subject and process; later messages use the cached id.
//! - A refusal (incompatible, invalid schema, wrong credentials) is a definite error naming the
//!   subject and the fix; an unreachable registry or a 5xx answer is transient (retried).
//! - The password never prints (it is a [`Secret`] and goes out only in the Authorization header).
#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use sluice_core::Secret;
use sluice_format::{FormatError, SchemaRegistrar};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Where the registry is and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://127.0.0.1:8281`.
    pub url: String,
    /// Basic-auth user, if the registry asks for one.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<Secret>,
}

/// The client.
pub struct Client {
    cfg: RegistryConfig,
    agent: ureq::Agent,
    ids: Mutex<HashMap<(String, String), u32>>,
}

/// What a call came back with.
enum Answer {
    Ok(serde_json::Value),
    Refused {
        status: u16,
        code: i64,
        message: String,
    },
}

fn transient(reason: String) -> FormatError {
    FormatError::transient("avro", reason)
}

impl Client {
    /// A client (connects on first call).
    pub fn new(cfg: RegistryConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(15)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            cfg,
            agent,
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<String>) -> Result<Answer, String> {
        let url = format!("{}{path}", self.cfg.url.trim_end_matches('/'));
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("accept", CONTENT_TYPE)
            .header("content-type", CONTENT_TYPE);
        if let Some(user) = &self.cfg.username {
            let pw = self.cfg.password.as_ref().map_or("", |p| p.expose());
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
            req = req.header("authorization", format!("Basic {token}"));
        }
        let req = req
            .body(body.unwrap_or_default())
            .map_err(|e| format!("request: {e}"))?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| format!("schema registry {}: {e}", self.cfg.url))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| format!("schema registry answer: {e}"))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        if status >= 400 {
            return Ok(Answer::Refused {
                status,
                code: json["error_code"].as_i64().unwrap_or(i64::from(status)),
                message: json["message"]
                    .as_str()
                    .map_or_else(|| text.chars().take(300).collect(), str::to_string),
            });
        }
        Ok(Answer::Ok(json))
    }

    /// Whether the registry answers and accepts the credentials (the precheck).
    pub fn reachable(&self) -> Result<(), String> {
        match self.call("GET", "/subjects", None)? {
            Answer::Ok(_) => Ok(()),
            Answer::Refused {
                status: 401 | 403,
                message,
                ..
            } => Err(format!(
                "schema registry {} refused the credentials ({message}); check destination.schema_registry.username and password_env",
                self.cfg.url
            )),
            Answer::Refused {
                status, message, ..
            } => Err(format!(
                "schema registry {} answered {status} to GET /subjects: {message}",
                self.cfg.url
            )),
        }
    }
}

impl SchemaRegistrar for Client {
    fn register(&self, subject: &str, schema: &str) -> Result<u32, FormatError> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.lock().ok().and_then(|m| m.get(&key).copied()) {
            return Ok(id);
        }
        let path = format!(
            "/subjects/{}/versions",
            utf8_percent_encode(subject, NON_ALPHANUMERIC)
        );
        let body = serde_json::json!({ "schema": schema }).to_string();
        let answer = self.call("POST", &path, Some(body)).map_err(transient)?;
        let id = match answer {
            Answer::Ok(v) => v["id"]
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| transient(format!("schema registry answered without an id: {v}")))?,
            Answer::Refused { status, message, .. } if status >= 500 || status == 429 => {
                return Err(transient(format!(
                    "schema registry {} answered {status} registering {subject}: {message}",
                    self.cfg.url
                )))
            }
            Answer::Refused {
                status: 409,
                message,
                ..
            } => {
                return Err(FormatError::definite(
                    "avro",
                    format!(
                        "schema registry refused the new schema of subject {subject} as incompatible \
                         with its earlier versions ({message}); the table's change is not one its \
                         compatibility level allows: change the subject's compatibility \
                         (PUT /config/{subject}) or write to a new topic"
                    ),
                ))
            }
            Answer::Refused {
                status: 401 | 403,
                message,
                ..
            } => {
                return Err(FormatError::definite(
                    "avro",
                    format!(
                        "schema registry refused the credentials registering {subject} ({message}); \
                         check destination.schema_registry.username and password_env"
                    ),
                ))
            }
            Answer::Refused {
                status,
                code,
                message,
            } => {
                return Err(FormatError::definite(
                    "avro",
                    format!(
                        "schema registry refused the schema of subject {subject}: {status} (error {code}): {message}"
                    ),
                ))
            }
        };
        if let Ok(mut m) = self.ids.lock() {
            m.insert(key, id);
        }
        Ok(id)
    }
}
