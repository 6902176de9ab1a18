//! What the pipeline asks of a source type and a destination type, and of the registry that
//! knows them by name (the `sluice-registry` crate, above this one). The pipeline names no
//! source and no destination: a new one is a crate and one entry in the registry.

use std::any::Any;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use sluice_core::config::FieldError;
use sluice_core::sink::{Sink, SinkError};
use sluice_core::source::{Source, SourceError};
use sluice_core::{RowChange, SecretUrl, TableId};
use sluice_format::{DbType, SourceInfo};

use crate::error::ProjectError;

/// The destinations verification reads, for messages that refuse the others.
pub const VERIFIABLE: &str = "database destinations (mysql, mariadb, oceanbase), and Kafka, \
    RocketMQ and DataHub destinations in the oms, oms-extended, canal or maxwell format (DataHub \
    TUPLE topics too) can be verified";

/// What a destination needs of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Whole table definitions (column types, indexes) in the schema step, to create tables.
    pub definitions: bool,
    /// With a start in the past, each table as it was at the start position (it creates tables
    /// that the replayed DDL then changes).
    pub past_schema: bool,
    /// Heartbeats delivered as changes (a heartbeat topic is set).
    pub heartbeats: bool,
    /// Sharded (logical table) sources may write into it.
    pub sharded_sources: bool,
}

/// A checked destination section.
pub trait DestinationSpec: Debug + Send + Sync {
    /// What it needs of the pipeline.
    fn needs(&self) -> Needs;
    /// Whether an update must reach it as a delete of the old key and an insert of the new
    /// one (message queues, see `sluice_mq::Routing::moves_key`).
    fn splits(&self, r: &RowChange) -> Result<bool, SinkError>;
    /// Its sink, writing for `source`.
    fn sink(&self, source: SourceInfo) -> Result<Box<dyn Sink>, SinkError>;
    /// The destination of part `part` of a sharded project, which reads instance `shard` and
    /// writes each physical table into its destination table (`merge`).
    fn for_part(
        &self,
        part: &str,
        shard: &str,
        merge: HashMap<TableId, TableId>,
    ) -> Arc<dyn DestinationSpec>;
    /// Makes once what the parts of a sharded project share at the destination, before they
    /// start, so that their first runs never race to create it.
    fn prepare_shared(&self) -> Result<(), SinkError>;
    /// Whether the destination can be reached and written with these settings (the
    /// precheck): connects and asks for what the schema step will need.
    fn check(&self) -> Result<(), SinkError>;
    /// Frees what the project keeps at the destination (its checkpoint rows there), when the
    /// project is released.
    fn release(&self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Whether [`DestinationSpec::verifier`] gives a side (checked when a project with
    /// `stages.verify` is read, without connecting).
    fn verifiable(&self) -> bool {
        false
    }
    /// One side of a verification at the destination, on a connection of its own (None:
    /// this destination type cannot be verified yet).
    fn verifier(&self) -> Result<Option<Box<dyn sluice_core::verify::VerifySide>>, SinkError> {
        Ok(None)
    }
    /// The destination's state side, for a destination that cannot be queried by key range
    /// (a message queue): None when it has none.
    fn state_verifier(&self) -> Result<Option<Box<dyn sluice_core::verify::StateSide>>, SinkError> {
        Ok(None)
    }
    /// For tests and tools that know the type.
    fn as_any(&self) -> &dyn Any;
}

/// A checked source (one server; a sharded source has one per instance).
pub trait SourceSpec: Debug + Send + Sync {
    /// Opens it.
    fn open(&self) -> Result<Box<dyn Source>, SourceError>;
    /// The kind of database, for the formats' source fields.
    fn db_type(&self) -> DbType;
    /// For tests and tools that know the type.
    fn as_any(&self) -> &dyn Any;
}

/// The source fields the project file gives for one server.
#[derive(Debug, Clone)]
pub struct SourceSettings<'a> {
    /// `source.type` (for an instance of a sharded source: the instances' type).
    pub kind: &'a str,
    /// The connection URL, with its password.
    pub url: &'a SecretUrl,
    /// Our replica id on it.
    pub server_id: u32,
    /// `stages.start`.
    pub start: &'a str,
    /// `options.heartbeat_secs`.
    pub heartbeat_secs: u32,
    /// The project's name (a PostgreSQL slot is named after it by default).
    pub project: &'a str,
    /// The settings only some source types have (`source.slot`, ...).
    pub extra: &'a SourceExtra,
    /// `source.tls` (None: as the URL says).
    pub tls: Option<&'a sluice_core::tls::Tls>,
}

/// Source fields that only some types take; a type that takes none of them refuses each
/// given by name ([`SourceExtra::given`]).
#[derive(Debug, Clone, Default)]
pub struct SourceExtra {
    /// `source.slot` (PostgreSQL): the logical replication slot.
    pub slot: Option<String>,
    /// `source.publication` (PostgreSQL).
    pub publication: Option<String>,
    /// `source.create_publication` (PostgreSQL).
    pub create_publication: Option<bool>,
}

impl SourceExtra {
    /// The names (`source.slot`, ...) of the fields given.
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.slot.is_some() {
            out.push("source.slot");
        }
        if self.publication.is_some() {
            out.push("source.publication");
        }
        if self.create_publication.is_some() {
            out.push("source.create_publication");
        }
        out
    }
}

/// The source and destination types by name.
pub trait Connectors: Send + Sync {
    /// The source types `source.type` may name (besides `sharded`).
    fn source_types(&self) -> &[&'static str];
    /// Checks one server's source settings. A field error names the field from the top of the
    /// file (`source.url`, `stages.start`).
    fn source(&self, s: &SourceSettings<'_>) -> Result<Arc<dyn SourceSpec>, FieldError>;
    /// Reads and checks the destination section of `text` (file `file`) of type `kind`, for
    /// project `project`; `sharding` holds `objects.sharding` by destination table name.
    fn destination(
        &self,
        kind: &str,
        text: &str,
        file: &str,
        project: &str,
        sharding: HashMap<TableId, Vec<String>>,
    ) -> Result<Arc<dyn DestinationSpec>, ProjectError>;
}
