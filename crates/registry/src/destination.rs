//! The destination types: one variant per type, each checked by its own crate from its own
//! section of the project file, each building its own sink and saying what it needs of the
//! pipeline. A new destination is one crate plus one variant here.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use sluice_core::config::FieldError;
use sluice_core::sink::{Sink, SinkError};
use sluice_core::{RowChange, TableId};
use sluice_format::SourceInfo;
use sluice_sink_datahub::{DatahubSettings, DatahubSink, RawDatahub, RecordType};
use sluice_sink_kafka::{KafkaSettings, KafkaSink, RawKafka};
use sluice_sink_mysql::{MysqlConfig, MysqlSink, RawDatabase};
use sluice_sink_rocketmq::{RawRocketmq, RocketmqSettings, RocketmqSink};

use sluice_pipeline::project::{line_of, yaml_error};
use sluice_pipeline::{DestinationSpec, Needs, ProjectError};

/// A checked destination.
#[derive(Debug, Clone)]
pub enum Destination {
    /// `type: kafka`.
    Kafka(KafkaSettings),
    /// `type: oceanbase`, `mariadb` or `mysql`: a MySQL-compatible database.
    Database(MysqlConfig),
    /// `type: rocketmq`.
    Rocketmq(RocketmqSettings),
    /// `type: datahub` (boxed: its settings are the largest).
    Datahub(Box<DatahubSettings>),
}

/// The destination types a project file may name, how messages call each, and its fields.
const TYPES: &[(&str, &str, &[&str])] = &[
    ("kafka", "a Kafka destination", RawKafka::FIELDS),
    ("rocketmq", "a RocketMQ destination", RawRocketmq::FIELDS),
    ("datahub", "a DataHub destination", RawDatahub::FIELDS),
    ("oceanbase", "a database destination", RawDatabase::FIELDS),
    ("mariadb", "a database destination", RawDatabase::FIELDS),
    ("mysql", "a database destination", RawDatabase::FIELDS),
];

/// The project file with only its destination section, read as `T`.
#[derive(Deserialize)]
struct Section<T> {
    destination: T,
}

impl Destination {
    /// Reads and checks the destination section of `text` (its type is `kind`). `sharding`
    /// holds `objects.sharding` by destination table name.
    pub fn parse(
        kind: &str,
        text: &str,
        file: &str,
        project: &str,
        sharding: HashMap<TableId, Vec<String>>,
    ) -> Result<Destination, ProjectError> {
        let what = TYPES
            .iter()
            .find(|(k, ..)| *k == kind)
            .map(|(_, w, _)| *w)
            .ok_or_else(|| ProjectError {
                file: file.to_string(),
                line: line_of(text, "destination.type"),
                field: "destination.type: ".into(),
                message: format!(
                    "{kind:?}: use {}",
                    TYPES
                        .iter()
                        .map(|(k, ..)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let field = |e: FieldError| ProjectError {
            file: file.to_string(),
            line: line_of(text, &format!("destination.{}", e.field)),
            field: format!("destination.{}: ", e.field),
            message: e.message,
        };
        Ok(match kind {
            "kafka" => Destination::Kafka(
                section::<RawKafka>(text, file, kind, what)?
                    .check(sharding)
                    .map_err(field)?,
            ),
            "rocketmq" => Destination::Rocketmq(
                section::<RawRocketmq>(text, file, kind, what)?
                    .check(project, sharding)
                    .map_err(field)?,
            ),
            "datahub" => Destination::Datahub(Box::new(
                section::<RawDatahub>(text, file, kind, what)?
                    .check(sharding)
                    .map_err(field)?,
            )),
            _ => Destination::Database(
                section::<RawDatabase>(text, file, kind, what)?
                    .check(project)
                    .map_err(field)?,
            ),
        })
    }
}

impl DestinationSpec for Destination {
    fn needs(&self) -> Needs {
        match self {
            Destination::Kafka(k) => Needs {
                definitions: false,
                past_schema: false,
                heartbeats: k.config.routing.heartbeat_topic.is_some(),
                sharded_sources: false,
            },
            Destination::Rocketmq(r) => Needs {
                definitions: false,
                past_schema: false,
                heartbeats: r.config.routing.heartbeat_topic.is_some(),
                sharded_sources: false,
            },
            Destination::Datahub(d) => {
                let tuple = d.config.record_type == RecordType::Tuple;
                Needs {
                    definitions: tuple,
                    // A TUPLE topic is made from the table as it is when the project starts
                    // (rows of an older shape fill the fields they have; docs/DATAHUB.md).
                    past_schema: false,
                    heartbeats: !tuple && d.config.routing.heartbeat_topic.is_some(),
                    sharded_sources: true,
                }
            }
            Destination::Database(_) => Needs {
                definitions: true,
                past_schema: true,
                heartbeats: false,
                sharded_sources: true,
            },
        }
    }

    // A database applies an update as one change.
    fn splits(&self, r: &RowChange) -> Result<bool, SinkError> {
        match self {
            Destination::Kafka(k) => k.config.routing.moves_key(r),
            Destination::Rocketmq(k) => k.config.routing.moves_key(r),
            Destination::Datahub(d) => d.config.routing.moves_key(r),
            Destination::Database(_) => Ok(false),
        }
    }

    fn sink(&self, source: SourceInfo) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match self {
            Destination::Kafka(k) => {
                Box::new(KafkaSink::new(k.config.clone(), k.build_format()?, source)?)
            }
            Destination::Rocketmq(r) => Box::new(RocketmqSink::new(
                r.config.clone(),
                r.format.build()?,
                source,
            )?),
            Destination::Datahub(d) => Box::new(DatahubSink::new(
                d.config.clone(),
                d.config.format.as_ref().map(|f| f.build()).transpose()?,
                source,
            )?),
            Destination::Database(db) => Box::new(MysqlSink::new(db.clone())?),
        })
    }

    fn for_part(
        &self,
        part: &str,
        shard: &str,
        merge: HashMap<TableId, TableId>,
    ) -> Arc<dyn DestinationSpec> {
        let mut d = self.clone();
        match &mut d {
            Destination::Database(db) => {
                db.project = part.to_string();
                db.merge = merge;
                db.shard = Some(shard.to_string());
            }
            Destination::Datahub(dh) => {
                dh.config.merge = merge;
                dh.config.shard = Some(shard.to_string());
            }
            Destination::Kafka(_) | Destination::Rocketmq(_) => {}
        }
        Arc::new(d)
    }

    fn prepare_shared(&self) -> Result<(), SinkError> {
        match self {
            Destination::Database(db) => sluice_sink_mysql::prepare_destination(db),
            Destination::Kafka(_) | Destination::Rocketmq(_) | Destination::Datahub(_) => Ok(()),
        }
    }

    fn check(&self) -> Result<(), SinkError> {
        match self {
            Destination::Database(db) => sluice_sink_mysql::prepare_destination(db),
            Destination::Kafka(k) => {
                sluice_sink_kafka::reachable(&k.config)?;
                k.registry_reachable()
            }
            Destination::Rocketmq(r) => sluice_sink_rocketmq::reachable(&r.config),
            // Reads (or creates, with create_topics) the DataHub project.
            Destination::Datahub(_) => self
                .sink(SourceInfo {
                    name: String::new(),
                    db_type: sluice_format::DbType::Mysql,
                    server_id: 0,
                })?
                .prepare(&[]),
        }
    }

    fn release(&self) -> Result<(), SinkError> {
        match self {
            Destination::Database(db) => sluice_sink_mysql::release_destination(db),
            Destination::Kafka(_) | Destination::Rocketmq(_) | Destination::Datahub(_) => Ok(()),
        }
    }

    fn state_verifier(&self) -> Result<Option<Box<dyn sluice_core::verify::StateSide>>, SinkError> {
        if !self.verifiable() {
            return Ok(None);
        }
        match self {
            Destination::Kafka(k) => sluice_sink_kafka::verify::KafkaState::new(k)
                .map(|s| Some(Box::new(s) as Box<dyn sluice_core::verify::StateSide>))
                .map_err(|e| SinkError::Config(e.to_string())),
            Destination::Rocketmq(r) => sluice_sink_rocketmq::verify::RocketmqState::new(r)
                .map(|s| Some(Box::new(s) as Box<dyn sluice_core::verify::StateSide>))
                .map_err(|e| SinkError::Config(e.to_string())),
            Destination::Datahub(d) => sluice_sink_datahub::verify::DatahubState::new(d)
                .map(|s| Some(Box::new(s) as Box<dyn sluice_core::verify::StateSide>))
                .map_err(|e| SinkError::Config(e.to_string())),
            Destination::Database(_) => Ok(None),
        }
    }

    fn verifiable(&self) -> bool {
        let readable = |format: &str| sluice_mq::state::READABLE.contains(&format);
        match self {
            Destination::Database(_) => true,
            Destination::Kafka(k) => readable(&k.format.name),
            Destination::Rocketmq(r) => readable(&r.format.name),
            Destination::Datahub(d) => d.config.format.as_ref().is_none_or(|f| readable(&f.name)),
        }
    }

    fn verifier(&self) -> Result<Option<Box<dyn sluice_core::verify::VerifySide>>, SinkError> {
        match self {
            Destination::Database(db) => sluice_sink_mysql::verify_side(db).map(Some),
            Destination::Kafka(_) | Destination::Rocketmq(_) | Destination::Datahub(_) => Ok(None),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Reads the destination section as `T`. A field of another destination type is an error
/// naming it, its line, and the fields this type has; a field of no type (a typo) gets
/// serde's message, which lists them too.
fn section<T: DeserializeOwned>(
    text: &str,
    file: &str,
    kind: &str,
    what: &str,
) -> Result<T, ProjectError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Section<T>>(de) {
        Ok(s) => Ok(s.destination),
        Err(e) => {
            let mut err = yaml_error(e, file, text);
            let foreign = err
                .message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                .filter(|key| TYPES.iter().any(|(.., fields)| fields.contains(key)))
                .map(str::to_string);
            if let Some(key) = foreign {
                let rest = err.message.clone();
                let fields = rest
                    .split_once("expected ")
                    .map(|(_, l)| l.trim_start_matches("one of ").replace('`', ""))
                    .unwrap_or_default();
                err.field = format!("destination.{key}: ");
                err.line = line_of(text, &format!("destination.{key}"));
                err.message = format!(
                    "{key} is not a field of {what} (type: {kind}); its fields are {fields}"
                );
            }
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each type's `FIELDS` is the list serde knows: a typo's message lists exactly them.
    #[test]
    fn each_type_lists_its_own_fields() {
        for (kind, _, fields) in TYPES {
            let text = format!("destination:\n  type: {kind}\n  zzz: 1\n");
            let e = match *kind {
                "kafka" => section::<RawKafka>(&text, "p.yaml", kind, "x").map(drop),
                "rocketmq" => section::<RawRocketmq>(&text, "p.yaml", kind, "x").map(drop),
                "datahub" => section::<RawDatahub>(&text, "p.yaml", kind, "x").map(drop),
                _ => section::<RawDatabase>(&text, "p.yaml", kind, "x").map(drop),
            }
            .expect_err("unknown field");
            let listed = e
                .message
                .split_once("expected one of ")
                .map(|(_, l)| l.replace('`', ""))
                .unwrap_or_default();
            assert_eq!(listed, fields.join(", "), "{kind}");
            assert_eq!(e.line, Some(3), "{e}");
        }
    }
}
