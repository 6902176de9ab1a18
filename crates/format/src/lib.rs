//! Message formats: one serializer per format over the one event model, so every message-queue
//! destination (Kafka, RocketMQ, DataHub BLOB topics) reuses them unchanged.
//!
//! Invariants:
//! - A serializer never drops or rounds a value: what it cannot show exactly in its convention
//!   it shows as a string (documented per format in docs/FORMATS.md).
//! - Output depends only on the [`Record`] (no clock reads), so a replayed change produces the
//!   same bytes — consumers can compare duplicates byte for byte.
#![deny(missing_docs)]

pub mod avro;
mod canal;
mod dataworks;
mod debezium;
mod maxwell;
mod oms;
mod shareplex;
pub mod text;

use sluice_core::{Ddl, Position, RowChange};

/// What kind of source database the changes come from (OMS `dbType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbType {
    /// MySQL.
    Mysql,
    /// MariaDB.
    Mariadb,
    /// OceanBase in MySQL mode.
    ObMysql,
    /// PostgreSQL.
    Postgres,
}

impl DbType {
    /// The OMS name: `MYSQL`, `MARIADB`, `OB_MYSQL`.
    pub fn oms_name(self) -> &'static str {
        match self {
            DbType::Mysql => "MYSQL",
            DbType::Mariadb => "MARIADB",
            DbType::ObMysql => "OB_MYSQL",
            DbType::Postgres => "POSTGRESQL",
        }
    }
}

/// Facts about the source that every message of a project shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Logical name of the source (OMS `source_identity`, Debezium `source.name`).
    pub name: String,
    /// Kind of database.
    pub db_type: DbType,
    /// The source server's `server_id`, when known (0 otherwise).
    pub server_id: u32,
}

/// One thing to serialize.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// A row change captured from the change log.
    Row(&'a RowChange),
    /// A row read by full sync (a snapshot row: an insert with no before image).
    Snapshot(&'a RowChange),
    /// A DDL statement.
    Ddl(&'a Ddl),
    /// The source is idle; its log reached `pos` at `ts_ms`.
    Heartbeat {
        /// Position reached.
        pos: &'a Position,
        /// Time, ms since the epoch.
        ts_ms: u64,
    },
}

/// A change with what the pipeline knows about its place in the stream.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The change.
    pub change: Change<'a>,
    /// Source facts.
    pub source: &'a SourceInfo,
    /// Source sequence: strictly increasing in commit order per source (OMS
    /// `storeDataSequence`); `None` for snapshot rows and heartbeats.
    pub sequence: Option<u64>,
    /// Whether this is the last change of its transaction (Maxwell's `commit`).
    pub last_in_txn: bool,
    /// Transaction number: increases by one per transaction (Maxwell's `xid`).
    pub txn_number: u64,
    /// The half of a split key change this is (an update that moved its row's key, delivered
    /// as a delete and an insert), if it is one.
    pub key_change: Option<sluice_core::KeyChange>,
}

/// A serializer failure (a value with no representation in the format, a schema the registry
/// refuses) or a schema registry that cannot be reached (`transient`).
#[derive(Debug, thiserror::Error)]
#[error("format {format}: {reason}")]
pub struct FormatError {
    /// Format name.
    pub format: &'static str,
    /// What could not be serialized.
    pub reason: String,
    /// Whether retrying may succeed (a registry outage); otherwise the change cannot be
    /// written in this format.
    pub transient: bool,
}

impl FormatError {
    /// A failure retrying cannot cure.
    pub fn definite(format: &'static str, reason: impl Into<String>) -> Self {
        Self {
            format,
            reason: reason.into(),
            transient: false,
        }
    }

    /// A failure that retrying may cure (a schema registry that cannot be reached).
    pub fn transient(format: &'static str, reason: impl Into<String>) -> Self {
        Self {
            transient: true,
            ..Self::definite(format, reason)
        }
    }
}

/// One encoded message: its value, and its key when the format encodes keys itself (Avro);
/// `None` leaves the key to the message-queue layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The message key, if the format writes one.
    pub key: Option<Vec<u8>>,
    /// The message value.
    pub value: Vec<u8>,
}

/// Where a format that writes schema ids gets them (Avro in the Confluent wire format):
/// registers `schema` under `subject` (or finds it registered) and returns its id. The
/// schema-registry client implements it; a registry's refusal is a definite [`FormatError`]
/// that names the subject, an unreachable registry a transient one.
pub trait SchemaRegistrar: Send + Sync {
    /// The id of `schema` under `subject`.
    fn register(&self, subject: &str, schema: &str) -> Result<u32, FormatError>;
}

/// A message format.
pub trait Format: Send + Sync {
    /// Name as written in a project file (`oms`, `canal`, ...).
    fn name(&self) -> &'static str;
    /// The message value for one record; `None` when the format has no message for it (for
    /// example Canal has no heartbeat message).
    fn encode(&self, rec: &Record<'_>) -> Result<Option<Vec<u8>>, FormatError>;
    /// The message for one record going to `topic`: formats whose schemas are registered per
    /// topic (Avro) and that encode keys themselves override this.
    fn encode_message(
        &self,
        rec: &Record<'_>,
        topic: &str,
    ) -> Result<Option<Encoded>, FormatError> {
        let _ = topic;
        Ok(self.encode(rec)?.map(|value| Encoded { key: None, value }))
    }
}

/// Options a format may read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatOptions {
    /// Debezium: include the Kafka Connect `schema` part.
    pub debezium_schema: bool,
    /// Debezium: DECIMAL as base64 of the unscaled big-endian two's complement ("precise")
    /// instead of a string.
    pub debezium_decimal_precise: bool,
}

/// Names accepted by [`by_name`].
pub const FORMAT_NAMES: &[&str] = &[
    "oms",
    "oms-extended",
    "canal",
    "debezium",
    "debezium-flat",
    "maxwell",
    "dataworks",
    "shareplex",
];

/// The format called `name`, or `None` (see [`FORMAT_NAMES`]).
pub fn by_name(name: &str, opts: &FormatOptions) -> Option<Box<dyn Format>> {
    Some(match name {
        "oms" => Box::new(oms::Oms { extended: false }),
        "oms-extended" => Box::new(oms::Oms { extended: true }),
        "canal" => Box::new(canal::Canal),
        "debezium" => Box::new(debezium::Debezium {
            flat: false,
            schema: opts.debezium_schema,
            precise: opts.debezium_decimal_precise,
        }),
        "debezium-flat" => Box::new(debezium::Debezium {
            flat: true,
            schema: opts.debezium_schema,
            precise: opts.debezium_decimal_precise,
        }),
        "maxwell" => Box::new(maxwell::Maxwell),
        "dataworks" => Box::new(dataworks::DataWorks),
        "shareplex" => Box::new(shareplex::SharePlex),
        _ => return None,
    })
}

/// The first word of a DDL statement's kind (`ALTER`, `CREATE`, ...), upper case.
pub(crate) fn ddl_kind(sql: &str) -> String {
    sql.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// The column names and values of the primary key of an image (empty when there is no key).
pub(crate) fn key_parts<'a>(
    row: &'a RowChange,
    image: &'a [sluice_core::Value],
) -> Vec<(&'a str, &'a sluice_core::Value)> {
    row.table
        .primary_key
        .iter()
        .filter_map(|&i| Some((row.table.columns.get(i)?.name.as_str(), image.get(i)?)))
        .collect()
}

pub(crate) fn to_bytes(v: serde_json::Value) -> Result<Option<Vec<u8>>, FormatError> {
    serde_json::to_vec(&v)
        .map(Some)
        .map_err(|e| FormatError::definite("json", e.to_string()))
}
