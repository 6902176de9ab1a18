//! The project file as written (serde), before validation.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Deserialize;
use sluice_core::{Secret, SecretUrl};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub(super) name: String,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) source: RawSource,
    pub(super) destination: RawDestination,
    pub(super) objects: RawObjects,
    #[serde(default)]
    pub(super) stages: RawStages,
    #[serde(default)]
    pub(super) options: RawOptions,
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

fn one() -> i32 {
    1
}
fn lz4() -> String {
    "lz4".into()
}
fn hash() -> String {
    "hash".into()
}
fn five() -> u32 {
    5
}
fn batch_bytes() -> u32 {
    1_000_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDestination {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) brokers: Option<String>,
    pub(super) format: Option<String>,
    pub(super) url: Option<SecretUrl>,
    pub(super) writers: Option<usize>,
    pub(super) meta_db: Option<String>,
    pub(super) unsupported_ddl: Option<String>,
    #[serde(default)]
    pub(super) shard_in_key: bool,
    #[serde(default)]
    pub(super) foreign_key_checks: bool,
    pub(super) topic: Option<String>,
    pub(super) single_topic: Option<String>,
    #[serde(default)]
    pub(super) topics: HashMap<String, String>,
    pub(super) heartbeat_topic: Option<String>,
    #[serde(default = "one")]
    pub(super) partitions: i32,
    #[serde(default = "one")]
    pub(super) replication_factor: i32,
    #[serde(default = "hash")]
    pub(super) partition_mode: String,
    #[serde(default = "lz4")]
    pub(super) compression: String,
    #[serde(default = "five")]
    pub(super) linger_ms: u32,
    #[serde(default = "batch_bytes")]
    pub(super) batch_bytes: u32,
    #[serde(default)]
    pub(super) properties: BTreeMap<String, Secret>,
    #[serde(default)]
    pub(super) debezium_schema: bool,
    pub(super) debezium_decimal: Option<String>,
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
}

impl Default for RawStages {
    fn default() -> Self {
        Self {
            schema: true,
            full: false,
            incremental: true,
            start: now(),
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
            heartbeat_secs: 5,
            full_readers: four(),
            full_chunk_rows: chunk_rows(),
            throttle_rows: None,
            throttle_bytes: None,
            metrics_listen: None,
        }
    }
}
