//! The `destination` section of a project with `type: datahub`, as written and as checked.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use sluice_core::config::{given_or_env, FieldError};
use sluice_core::{Secret, TableId};
use sluice_datahub_protocol::Compression;
use sluice_mq::config::{FormatChoice, RoutingFields};
use sluice_mq::{Routing, TopicMap};

use crate::client::{Account, Protocol};

/// The section as written. Every field not listed here is refused, naming it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatahub {
    #[serde(rename = "type")]
    _kind: String,
    endpoint: Option<String>,
    project: Option<String>,
    access_id: Option<String>,
    access_id_env: Option<String>,
    access_key: Option<Secret>,
    access_key_env: Option<String>,
    security_token_env: Option<String>,
    record_type: Option<String>,
    format: Option<String>,
    #[serde(default)]
    debezium_schema: bool,
    debezium_decimal: Option<String>,
    topic: Option<String>,
    single_topic: Option<String>,
    #[serde(default)]
    topics: HashMap<String, String>,
    heartbeat_topic: Option<String>,
    partition_mode: Option<String>,
    create_topics: Option<bool>,
    shard_count: Option<i64>,
    lifecycle: Option<i64>,
    protocol: Option<String>,
    compression: Option<String>,
    update_image: Option<String>,
    schema_evolution: Option<String>,
    #[serde(default)]
    meta_columns: MetaNames,
    batch_records: Option<usize>,
    writers: Option<usize>,
    timeout_ms: Option<u64>,
}

/// Names of the change metadata columns of TUPLE topics (an empty name leaves the column
/// out; `shard` is only written for sharded sources).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetaNames {
    /// `insert`, `update`, `delete` or `snapshot` (STRING).
    pub op: String,
    /// Commit time at the source (TIMESTAMP, µs); NULL for full-sync rows.
    pub commit_time: String,
    /// Source sequence, increasing in commit order (BIGINT); NULL for full-sync rows.
    pub sequence: String,
    /// `B` for a before image, `A` for an after image (STRING).
    pub image: String,
    /// The instance a sharded source's row came from (STRING).
    pub shard: String,
}

impl Default for MetaNames {
    fn default() -> Self {
        Self {
            op: "sluice_op".into(),
            commit_time: "sluice_commit_time".into(),
            sequence: "sluice_sequence".into(),
            image: "sluice_image".into(),
            shard: "sluice_shard".into(),
        }
    }
}

/// TUPLE or BLOB topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// One field per column, plus metadata columns.
    Tuple,
    /// Each change encoded in a message format.
    Blob,
}

/// A checked DataHub destination.
#[derive(Debug, Clone)]
pub struct DatahubConfig {
    /// Endpoint and credentials.
    pub account: Account,
    /// The DataHub project.
    pub project: String,
    /// TUPLE or BLOB.
    pub record_type: RecordType,
    /// The message format of BLOB topics.
    pub format: Option<FormatChoice>,
    /// Topics and shard choice.
    pub routing: Routing,
    /// Create missing projects and topics.
    pub create_topics: bool,
    /// Shards of a topic Sluice creates.
    pub shard_count: i64,
    /// Days a topic Sluice creates keeps records.
    pub lifecycle: i64,
    /// Protobuf or JSON puts.
    pub protocol: Protocol,
    /// Body compression.
    pub compression: Compression,
    /// TUPLE updates as a before and an after record (true) or the after record only.
    pub before_image: bool,
    /// Append fields to a TUPLE topic for columns added at the source.
    pub append_fields: bool,
    /// Metadata column names.
    pub meta: MetaNames,
    /// Most records in one put.
    pub batch_records: usize,
    /// Writer threads (each shard's puts stay on one of them, in order).
    pub writers: usize,
    /// How long one call may take.
    pub timeout: Duration,
    /// For a part of a sharded project: physical table -> logical (destination) table.
    pub merge: HashMap<TableId, TableId>,
    /// For a part of a sharded project: its instance.
    pub shard: Option<String>,
}

/// The section checked, with its format.
#[derive(Debug, Clone)]
pub struct DatahubSettings {
    /// Everything the sink needs.
    pub config: DatahubConfig,
}

/// Why `name` cannot be a DataHub topic, if it cannot: letters, digits and `_`, starting with
/// a letter, 1 to 128 characters.
pub fn topic_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 128 {
        return Some(format!(
            "{name:?} is {} characters long; DataHub topic names have 1 to 128",
            name.len()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Some(format!(
            "{name:?} does not start with a letter, as DataHub topic names must"
        ));
    }
    let bad: String = name
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "{name:?} has characters DataHub topic names cannot have ({bad:?}); allowed are \
             letters, digits and _"
        )
    })
}

/// The topic of `table`, or why it cannot be one.
pub fn checked_topic(map: &TopicMap, table: &TableId) -> Result<String, String> {
    let topic = map.topic(table);
    match topic_problem(&topic) {
        None => Ok(topic),
        Some(p) => Err(format!(
            "the DataHub topic of table {table} would be {topic:?}: {p}; rename the table \
             (objects rename) or set topic / topics so that its name is legal"
        )),
    }
}

/// A template whose literal parts are legal: `{db}`/`{table}` filled with a letter.
fn template_problem(template: &str) -> Option<String> {
    let rest = template.replace("{db}", "").replace("{table}", "");
    if rest.contains('{') || rest.contains('}') {
        return Some(format!(
            "{template:?}: a template may hold {{db}} and {{table}} only"
        ));
    }
    let sample = template.replace("{db}", "d").replace("{table}", "t");
    topic_problem(&sample).map(|p| p.replace(&format!("{sample:?}"), &format!("{template:?}")))
}

impl RawDatahub {
    /// The fields of the section.
    pub const FIELDS: &'static [&'static str] = &[
        "type",
        "endpoint",
        "project",
        "access_id",
        "access_id_env",
        "access_key",
        "access_key_env",
        "security_token_env",
        "record_type",
        "format",
        "debezium_schema",
        "debezium_decimal",
        "topic",
        "single_topic",
        "topics",
        "heartbeat_topic",
        "partition_mode",
        "create_topics",
        "shard_count",
        "lifecycle",
        "protocol",
        "compression",
        "update_image",
        "schema_evolution",
        "meta_columns",
        "batch_records",
        "writers",
        "timeout_ms",
    ];

    /// Checks the section; `sharding` holds `objects.sharding` by destination table name.
    pub fn check(
        self,
        sharding: HashMap<TableId, Vec<String>>,
    ) -> Result<DatahubSettings, FieldError> {
        let endpoint = self
            .endpoint
            .ok_or_else(|| {
                FieldError::new(
                    "endpoint",
                    "a DataHub destination needs endpoint: http://host:port",
                )
            })?
            .trim_end_matches('/')
            .to_string();
        if endpoint.starts_with("https://") {
            return Err(FieldError::new(
                "endpoint",
                "https endpoints are not supported yet (TLS comes with the secured-transport work); use http://",
            ));
        }
        if !endpoint.starts_with("http://") || endpoint.len() <= "http://".len() {
            return Err(FieldError::new(
                "endpoint",
                format!("{endpoint:?} is not http://host[:port]"),
            ));
        }
        let project = self.project.ok_or_else(|| {
            FieldError::new("project", "a DataHub destination needs project: NAME")
        })?;
        let valid_project = (3..=32).contains(&project.len())
            && project.starts_with(|c: char| c.is_ascii_alphabetic())
            && project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_project {
            return Err(FieldError::new(
                "project",
                format!("{project:?}: DataHub project names start with a letter and hold letters, digits and _, 3 to 32 characters"),
            ));
        }
        let access_id =
            given_or_env(self.access_id, self.access_id_env, "access_id")?.ok_or_else(|| {
                FieldError::new(
                    "access_id",
                    "a DataHub destination needs access_id or access_id_env",
                )
            })?;
        let access_key = given_or_env(
            self.access_key.map(|s| s.expose().to_string()),
            self.access_key_env,
            "access_key",
        )?
        .ok_or_else(|| {
            FieldError::new(
                "access_key",
                "a DataHub destination needs access_key or access_key_env",
            )
        })?;
        let token = given_or_env(None, self.security_token_env, "security_token")?;
        let record_type = match self.record_type.as_deref().unwrap_or("tuple") {
            "tuple" | "TUPLE" => RecordType::Tuple,
            "blob" | "BLOB" => RecordType::Blob,
            other => {
                return Err(FieldError::new(
                    "record_type",
                    format!("{other:?}: use tuple or blob"),
                ))
            }
        };
        let format = match record_type {
            RecordType::Blob => Some(FormatChoice::parse(
                self.format.as_deref(),
                self.debezium_schema,
                self.debezium_decimal.as_deref(),
                "a DataHub destination",
            )?),
            RecordType::Tuple => {
                if self.format.is_some() || self.debezium_schema || self.debezium_decimal.is_some()
                {
                    return Err(FieldError::new(
                        "format",
                        "a format applies to BLOB topics; TUPLE topics carry columns (set record_type: blob)",
                    ));
                }
                if self.heartbeat_topic.is_some() {
                    return Err(FieldError::new(
                        "heartbeat_topic",
                        "heartbeats and DDL go to BLOB topics only (set record_type: blob)",
                    ));
                }
                None
            }
        };
        if let Some(t) = &self.topic {
            if let Some(p) = template_problem(t) {
                return Err(FieldError::new("topic", p));
            }
        }
        let fields = RoutingFields {
            topic: self.topic,
            single_topic: self.single_topic,
            topics: self.topics,
            heartbeat_topic: self.heartbeat_topic,
            partition_mode: self.partition_mode,
        };
        fields.check_names(topic_problem)?;
        let routing = fields.routing("{db}_{table}", sharding)?;
        let shard_count = self.shard_count.unwrap_or(4);
        if !(1..=256).contains(&shard_count) {
            return Err(FieldError::new(
                "shard_count",
                "shard_count must be 1 to 256",
            ));
        }
        let lifecycle = self.lifecycle.unwrap_or(7);
        if !(1..=7).contains(&lifecycle) {
            return Err(FieldError::new(
                "lifecycle",
                "lifecycle must be 1 to 7 (days)",
            ));
        }
        let protocol = match self.protocol.as_deref().unwrap_or("protobuf") {
            "protobuf" | "pb" => Protocol::Protobuf,
            "json" => Protocol::Json,
            other => {
                return Err(FieldError::new(
                    "protocol",
                    format!("{other:?}: use protobuf or json"),
                ))
            }
        };
        let compression = match self.compression.as_deref().unwrap_or("lz4") {
            "none" => Compression::None,
            "lz4" => Compression::Lz4,
            "deflate" | "zlib" => Compression::Zlib,
            other => {
                return Err(FieldError::new(
                    "compression",
                    format!("{other:?}: use lz4, deflate or none"),
                ))
            }
        };
        let before_image = match self.update_image.as_deref().unwrap_or("both") {
            "both" => true,
            "after" => false,
            other => {
                return Err(FieldError::new(
                    "update_image",
                    format!("{other:?}: use both or after"),
                ))
            }
        };
        let append_fields = match self.schema_evolution.as_deref().unwrap_or("stop") {
            "stop" => false,
            "append" => true,
            other => {
                return Err(FieldError::new(
                    "schema_evolution",
                    format!("{other:?}: use stop or append"),
                ))
            }
        };
        let m = &self.meta_columns;
        let mut names: Vec<&str> = [&m.op, &m.commit_time, &m.sequence, &m.image, &m.shard]
            .into_iter()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .collect();
        if let Some(bad) = names.iter().find(|n| topic_problem(n).is_some()) {
            return Err(FieldError::new(
                "meta_columns",
                format!(
                    "{bad:?}: a field name starts with a letter and holds letters, digits and _"
                ),
            ));
        }
        names.sort_unstable();
        if names.windows(2).any(|w| w[0].eq_ignore_ascii_case(w[1])) {
            return Err(FieldError::new(
                "meta_columns",
                "two metadata columns have one name",
            ));
        }
        let batch_records = self.batch_records.unwrap_or(500);
        if !(1..=10_000).contains(&batch_records) {
            return Err(FieldError::new(
                "batch_records",
                "batch_records must be 1 to 10000",
            ));
        }
        let writers = self.writers.unwrap_or(4);
        if !(1..=64).contains(&writers) {
            return Err(FieldError::new("writers", "writers must be 1 to 64"));
        }
        let timeout = self.timeout_ms.unwrap_or(10_000);
        if timeout == 0 {
            return Err(FieldError::new("timeout_ms", "must be at least 1"));
        }
        Ok(DatahubSettings {
            config: DatahubConfig {
                account: Account {
                    endpoint,
                    access_id,
                    access_key: Secret::new(access_key),
                    security_token: token.map(Secret::new),
                },
                project,
                record_type,
                format,
                routing,
                create_topics: self.create_topics.unwrap_or(true),
                shard_count,
                lifecycle,
                protocol,
                compression,
                before_image,
                append_fields,
                meta: self.meta_columns,
                batch_records,
                writers,
                timeout: Duration::from_millis(timeout),
                merge: HashMap::new(),
                shard: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_datahubs_rules() {
        assert_eq!(topic_problem("a_1"), None);
        assert!(topic_problem("1a").expect("digit").contains("letter"));
        assert!(topic_problem("a-b").expect("dash").contains("(\"-\")"));
        assert!(topic_problem("").is_some());
        assert_eq!(template_problem("{db}_{table}"), None);
        assert!(template_problem("x-{table}").is_some());
        assert!(template_problem("_{table}").is_some());
        assert!(template_problem("{schema}").is_some());
    }
}
