//! The `destination` section of a project with `type: kafka`, as written and as checked.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use std::sync::Arc;

use sluice_core::config::{given_or_env, FieldError};
use sluice_core::sink::SinkError;
use sluice_core::{Secret, TableId};
use sluice_format::avro::Avro;
use sluice_format::Format;
use sluice_mq::config::{FormatChoice, RoutingFields};
use sluice_schema_registry::{Client, RegistryConfig};

use crate::security::RawSecurity;
use crate::KafkaConfig;

/// The format name that needs a schema registry.
const AVRO: &str = "avro";

fn one() -> i32 {
    1
}
fn lz4() -> String {
    "lz4".into()
}
fn five() -> u32 {
    5
}
fn batch_bytes() -> u32 {
    1_000_000
}

/// The section as written. Every field not listed here is refused, naming it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    #[serde(rename = "type")]
    _kind: String,
    brokers: Option<String>,
    format: Option<String>,
    topic: Option<String>,
    single_topic: Option<String>,
    #[serde(default)]
    topics: HashMap<String, String>,
    heartbeat_topic: Option<String>,
    #[serde(default = "one")]
    partitions: i32,
    #[serde(default = "one")]
    replication_factor: i32,
    partition_mode: Option<String>,
    #[serde(default = "lz4")]
    compression: String,
    #[serde(default = "five")]
    linger_ms: u32,
    #[serde(default = "batch_bytes")]
    batch_bytes: u32,
    security: Option<RawSecurity>,
    schema_registry: Option<RawRegistry>,
    #[serde(default)]
    properties: BTreeMap<String, Secret>,
    #[serde(default)]
    debezium_schema: bool,
    debezium_decimal: Option<String>,
}

/// `destination.schema_registry` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    url: Option<String>,
    username: Option<String>,
    password: Option<Secret>,
    password_env: Option<String>,
}

impl RawRegistry {
    fn check(self) -> Result<RegistryConfig, FieldError> {
        let url = self.url.ok_or_else(|| {
            FieldError::new(
                "schema_registry.url",
                "give the registry's URL: http://host:port",
            )
        })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(FieldError::new(
                "schema_registry.url",
                format!("{url:?}: use http://host:port or https://host:port"),
            ));
        }
        let password = given_or_env(
            self.password.map(|p| p.expose().to_string()),
            self.password_env,
            "password",
        )
        .map_err(|e| FieldError::new(format!("schema_registry.{}", e.field), e.message))?;
        if password.is_some() && self.username.is_none() {
            return Err(FieldError::new(
                "schema_registry.username",
                "a password needs a username (HTTP basic auth)",
            ));
        }
        Ok(RegistryConfig {
            url,
            username: self.username,
            password: password.map(Secret::new),
        })
    }
}

/// A checked Kafka destination: the client settings and the message format.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Client, topic and partition settings.
    pub config: KafkaConfig,
    /// The message format.
    pub format: FormatChoice,
    /// The schema registry (format `avro`).
    pub schema_registry: Option<RegistryConfig>,
}

impl KafkaSettings {
    /// The format, with its registry client when it is Avro.
    pub fn build_format(&self) -> Result<Box<dyn Format>, SinkError> {
        match (&self.format.name[..], &self.schema_registry) {
            (AVRO, Some(r)) => Ok(Box::new(Avro::new(Arc::new(Client::new(r.clone()))))),
            (AVRO, None) => Err(SinkError::Config(
                "format avro needs destination.schema_registry".into(),
            )),
            _ => self.format.build(),
        }
    }

    /// Whether the registry answers and accepts the credentials (when there is one).
    pub fn registry_reachable(&self) -> Result<(), SinkError> {
        match &self.schema_registry {
            Some(r) => Client::new(r.clone())
                .reachable()
                .map_err(SinkError::Unavailable),
            None => Ok(()),
        }
    }
}

impl RawKafka {
    /// The fields of the section (`type` and every field of [`RawKafka`]).
    pub const FIELDS: &'static [&'static str] = &[
        "type",
        "brokers",
        "format",
        "topic",
        "single_topic",
        "topics",
        "heartbeat_topic",
        "partitions",
        "replication_factor",
        "partition_mode",
        "compression",
        "linger_ms",
        "batch_bytes",
        "security",
        "schema_registry",
        "properties",
        "debezium_schema",
        "debezium_decimal",
    ];

    /// Checks the section; `sharding` holds `objects.sharding` by destination table name.
    pub fn check(
        self,
        sharding: HashMap<TableId, Vec<String>>,
    ) -> Result<KafkaSettings, FieldError> {
        let format = if self.format.as_deref() == Some(AVRO) {
            if self.schema_registry.is_none() {
                return Err(FieldError::new(
                    "schema_registry",
                    "format avro needs a schema registry: schema_registry: {url: http://host:port}",
                ));
            }
            FormatChoice {
                name: AVRO.into(),
                options: Default::default(),
            }
        } else {
            if self.schema_registry.is_some() {
                return Err(FieldError::new(
                    "schema_registry",
                    "only format avro uses a schema registry; remove it or use format: avro",
                ));
            }
            FormatChoice::parse(
                self.format.as_deref(),
                self.debezium_schema,
                self.debezium_decimal.as_deref(),
                "a Kafka destination",
            )?
        };
        let schema_registry = match self.schema_registry {
            Some(r) => Some(r.check()?),
            None => None,
        };
        let brokers = self.brokers.ok_or_else(|| {
            FieldError::new(
                "brokers",
                "a Kafka destination needs brokers: host:port[,host:port]",
            )
        })?;
        let routing = RoutingFields {
            topic: self.topic,
            single_topic: self.single_topic,
            topics: self.topics,
            heartbeat_topic: self.heartbeat_topic,
            partition_mode: self.partition_mode,
        }
        .routing("{db}.{table}", sharding)?;
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&self.compression.as_str()) {
            return Err(FieldError::new(
                "compression",
                format!(
                    "{:?}: use none, gzip, snappy, lz4 or zstd",
                    self.compression
                ),
            ));
        }
        if self.partitions < 1 || self.replication_factor < 1 {
            return Err(FieldError::new(
                "partitions",
                "partitions and replication_factor must be at least 1",
            ));
        }
        let mut properties = match self.security {
            Some(s) => s.check()?,
            None => Vec::new(),
        };
        for (k, v) in self.properties {
            if properties.iter().any(|(p, _)| *p == k) {
                return Err(FieldError::new(
                    "properties",
                    format!("{k} is already set by destination.security; set it in one place"),
                ));
            }
            properties.push((k, v));
        }
        Ok(KafkaSettings {
            config: KafkaConfig {
                brokers,
                routing,
                partitions: self.partitions,
                replication_factor: self.replication_factor,
                compression: self.compression,
                linger_ms: self.linger_ms,
                batch_bytes: self.batch_bytes,
                properties,
            },
            format,
            schema_registry,
        })
    }
}
