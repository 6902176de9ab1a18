//! The settings every message-queue destination has, checked once for all of them: topic
//! mapping, partition mode, heartbeat topic, and the message format.

use std::collections::HashMap;

use sluice_core::config::FieldError;
use sluice_core::sink::SinkError;
use sluice_core::TableId;
use sluice_format::{Format, FormatOptions, FORMAT_NAMES};

use crate::{PartitionMode, Routing, TopicMap};

/// The routing fields as written in a destination section.
#[derive(Debug, Clone, Default)]
pub struct RoutingFields {
    /// `topic`: a template with `{db}` and `{table}`.
    pub topic: Option<String>,
    /// `single_topic`.
    pub single_topic: Option<String>,
    /// `topics`: `db.table` -> topic.
    pub topics: HashMap<String, String>,
    /// `heartbeat_topic`.
    pub heartbeat_topic: Option<String>,
    /// `partition_mode`: one, hash or table (hash when not given).
    pub partition_mode: Option<String>,
}

impl RoutingFields {
    /// Checks the whole topic names the fields give (`single_topic`, `heartbeat_topic`, the
    /// values of `topics`) by a transport's naming rule (`problem`: why a name is illegal).
    pub fn check_names(&self, problem: fn(&str) -> Option<String>) -> Result<(), FieldError> {
        for (field, name) in [
            ("single_topic", &self.single_topic),
            ("heartbeat_topic", &self.heartbeat_topic),
        ] {
            if let Some(p) = name.as_deref().and_then(problem) {
                return Err(FieldError::new(field, p));
            }
        }
        for (table, name) in &self.topics {
            if let Some(p) = problem(name) {
                return Err(FieldError::new(format!("topics.{table}"), p));
            }
        }
        Ok(())
    }

    /// Checks the fields. `default_template` is the destination's own default topic template;
    /// `sharding` holds `objects.sharding` by destination table name.
    pub fn routing(
        self,
        default_template: &str,
        sharding: HashMap<TableId, Vec<String>>,
    ) -> Result<Routing, FieldError> {
        let mode = match self.partition_mode.as_deref() {
            None => PartitionMode::Hash,
            Some(m) => PartitionMode::parse(m).ok_or_else(|| {
                FieldError::new("partition_mode", format!("{m:?}: use one, hash or table"))
            })?,
        };
        let template = self.topic.unwrap_or_else(|| default_template.to_string());
        let topics = match (self.single_topic, self.topics.is_empty()) {
            (Some(t), true) => TopicMap::Single(t),
            (Some(_), false) => {
                return Err(FieldError::new(
                    "single_topic",
                    "give single_topic or topics, not both",
                ))
            }
            (None, true) => TopicMap::Template(template),
            (None, false) => TopicMap::Explicit(self.topics, template),
        };
        Ok(Routing {
            topics,
            heartbeat_topic: self.heartbeat_topic,
            mode,
            sharding,
        })
    }
}

/// The message format a destination writes, chosen by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatChoice {
    /// One of [`FORMAT_NAMES`].
    pub name: String,
    /// Its options.
    pub options: FormatOptions,
}

impl FormatChoice {
    /// Checks `format`, `debezium_schema` and `debezium_decimal`; `what` names the destination
    /// in the message (`a Kafka destination`).
    pub fn parse(
        format: Option<&str>,
        debezium_schema: bool,
        debezium_decimal: Option<&str>,
        what: &str,
    ) -> Result<Self, FieldError> {
        let name = match format {
            None => {
                return Err(FieldError::new(
                    "format",
                    format!("{what} needs a format: one of {}", FORMAT_NAMES.join(", ")),
                ))
            }
            Some("avro") => {
                return Err(FieldError::new(
                    "format",
                    format!("avro is written to Kafka destinations only (with a schema registry); {what} takes one of {}", FORMAT_NAMES.join(", ")),
                ))
            }
            Some(f) if !FORMAT_NAMES.contains(&f) => {
                return Err(FieldError::new(
                    "format",
                    format!(
                        "{f:?} is not a format; use one of {}",
                        FORMAT_NAMES.join(", ")
                    ),
                ))
            }
            Some(f) => f.to_string(),
        };
        let precise = match debezium_decimal {
            None | Some("string") => false,
            Some("precise") => true,
            Some(other) => {
                return Err(FieldError::new(
                    "debezium_decimal",
                    format!("{other:?}: use string or precise"),
                ))
            }
        };
        Ok(Self {
            name,
            options: FormatOptions {
                debezium_schema,
                debezium_decimal_precise: precise,
            },
        })
    }

    /// The format.
    pub fn build(&self) -> Result<Box<dyn Format>, SinkError> {
        sluice_format::by_name(&self.name, &self.options)
            .ok_or_else(|| SinkError::Config(format!("unknown format {}", self.name)))
    }
}
