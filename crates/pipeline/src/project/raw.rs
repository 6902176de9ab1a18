//! The project file as written (serde), before validation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use sluice_core::{Secret, SecretUrl};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub(super) name: String,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) source: RawSource,
    /// Only its type here: the type's own crate reads the rest (see `Connectors`).
    pub(super) destination: RawType,
    pub(super) objects: RawObjects,
    #[serde(default)]
    pub(super) stages: RawStages,
    #[serde(default)]
    pub(super) options: RawOptions,
}

/// Only the `type` of the destination section.
#[derive(Debug, Deserialize)]
pub(super) struct RawType {
    #[serde(rename = "type")]
    pub(super) kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) url: Option<SecretUrl>,
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) user: Option<String>,
    pub(super) password: Option<Secret>,
    pub(super) password_env: Option<String>,
    pub(super) server_id: Option<u32>,
    pub(super) name: Option<String>,
    /// PostgreSQL: the database (with host; a URL names it itself).
    pub(super) database: Option<String>,
    /// PostgreSQL: the replication slot (default: from the project's name).
    pub(super) slot: Option<String>,
    /// PostgreSQL: the publication (default: the slot's name).
    pub(super) publication: Option<String>,
    /// PostgreSQL: create the publication for the selected tables (default false).
    pub(super) create_publication: Option<bool>,
    /// TLS to the server (every instance of a sharded source).
    pub(super) tls: Option<sluice_core::tls::RawTls>,
    #[serde(default)]
    pub(super) instances: Vec<RawInstance>,
    #[serde(default)]
    pub(super) logical_tables: Vec<RawLogical>,
    /// An Apache ShardingSphere rule file (path relative to the project file) giving the
    /// instances and logical tables instead.
    pub(super) shardingsphere: Option<String>,
    /// With `shardingsphere`: the logical database (default: the file's databaseName).
    pub(super) logical_database: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    pub(super) name: String,
    pub(super) url: SecretUrl,
    pub(super) server_id: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogical {
    pub(super) name: String,
    /// Instance name -> `db_{00..03}.orders_{0000..0127}` (or a list of such patterns).
    pub(super) shards: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawObjects {
    pub(super) include: Vec<String>,
    #[serde(default)]
    pub(super) exclude: Vec<String>,
    #[serde(default)]
    pub(super) rename: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) columns: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) keys: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) filters: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) sharding: BTreeMap<String, Vec<String>>,
}

fn five() -> u32 {
    5
}

fn yes() -> bool {
    true
}
fn now() -> String {
    "now".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStages {
    #[serde(default = "yes")]
    pub(super) schema: bool,
    #[serde(default)]
    pub(super) full: bool,
    #[serde(default = "yes")]
    pub(super) incremental: bool,
    #[serde(default = "now")]
    pub(super) start: String,
    #[serde(default)]
    pub(super) verify: bool,
}

impl Default for RawStages {
    fn default() -> Self {
        Self {
            schema: true,
            full: false,
            incremental: true,
            start: now(),
            verify: false,
        }
    }
}

fn all_dml() -> Vec<String> {
    vec!["insert".into(), "update".into(), "delete".into()]
}
fn batch_rows() -> usize {
    2000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOptions {
    #[serde(default = "all_dml")]
    pub(super) dml: Vec<String>,
    #[serde(default = "yes")]
    pub(super) ddl: bool,
    #[serde(default = "batch_rows")]
    pub(super) batch_rows: usize,
    /// Batches sent to the destination and not yet acknowledged, at most (both stages).
    #[serde(default = "four")]
    pub(super) in_flight_batches: usize,
    #[serde(default = "five")]
    pub(super) heartbeat_secs: u32,
    #[serde(default = "four")]
    pub(super) full_readers: usize,
    #[serde(default = "chunk_rows")]
    pub(super) full_chunk_rows: usize,
    #[serde(default)]
    pub(super) throttle_rows: Option<u64>,
    #[serde(default)]
    pub(super) throttle_bytes: Option<u64>,
    #[serde(default)]
    pub(super) metrics_listen: Option<String>,
}

fn four() -> usize {
    4
}
fn chunk_rows() -> usize {
    5000
}

impl Default for RawOptions {
    fn default() -> Self {
        Self {
            dml: all_dml(),
            ddl: true,
            batch_rows: batch_rows(),
            in_flight_batches: four(),
            heartbeat_secs: 5,
            full_readers: four(),
            full_chunk_rows: chunk_rows(),
            throttle_rows: None,
            throttle_bytes: None,
            metrics_listen: None,
        }
    }
}
