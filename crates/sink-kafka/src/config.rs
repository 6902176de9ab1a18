//! The `destination` section of a project with `type: kafka`, as written and as checked.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use sluice_core::config::FieldError;
use sluice_core::{Secret, TableId};
use sluice_mq::config::{FormatChoice, RoutingFields};

use crate::security::RawSecurity;
use crate::KafkaConfig;

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
    #[serde(default)]
    properties: BTreeMap<String, Secret>,
    #[serde(default)]
    debezium_schema: bool,
    debezium_decimal: Option<String>,
}

/// A checked Kafka destination: the client settings and the message format.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Client, topic and partition settings.
    pub config: KafkaConfig,
    /// The message format.
    pub format: FormatChoice,
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
        "properties",
        "debezium_schema",
        "debezium_decimal",
    ];

    /// Checks the section; `sharding` holds `objects.sharding` by destination table name.
    pub fn check(
        self,
        sharding: HashMap<TableId, Vec<String>>,
    ) -> Result<KafkaSettings, FieldError> {
        let format = FormatChoice::parse(
            self.format.as_deref(),
            self.debezium_schema,
            self.debezium_decimal.as_deref(),
            "a Kafka destination",
        )?;
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
        })
    }
}
