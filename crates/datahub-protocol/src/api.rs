//! The JSON bodies of the calls a CDC writer and a reader make, named as on the wire
//! (`../shared/DATAHUB.md`), and the record schema of TUPLE topics.

use serde::{Deserialize, Serialize};

/// An error answer (HTTP status >= 400).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `NoSuchTopic`, `InvalidParameter`, ...
    #[serde(rename = "ErrorCode")]
    pub code: String,
    /// What went wrong.
    #[serde(rename = "ErrorMessage", default)]
    pub message: String,
}

/// The field types of a TUPLE topic.
pub const FIELD_TYPES: &[&str] = &[
    "tinyint",
    "smallint",
    "integer",
    "bigint",
    "string",
    "boolean",
    "timestamp",
    "float",
    "double",
    "decimal",
];

/// A field of a record schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Name.
    pub name: String,
    /// One of [`FIELD_TYPES`] (any case on the wire).
    #[serde(rename = "type")]
    pub ty: String,
    /// Comment.
    #[serde(default)]
    pub comment: String,
    /// NOT NULL.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notnull: bool,
}

/// A TUPLE topic's schema (sent as a JSON string inside the topic's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordSchema {
    /// Fields in record order.
    pub fields: Vec<Field>,
}

/// Create a topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTopic {
    /// Shards.
    #[serde(rename = "ShardCount")]
    pub shard_count: i64,
    /// Days records are kept.
    #[serde(rename = "Lifecycle")]
    pub lifecycle: i64,
    /// `TUPLE` or `BLOB`.
    #[serde(rename = "RecordType")]
    pub record_type: String,
    /// Comment.
    #[serde(rename = "Comment", default)]
    pub comment: String,
    /// The schema as a JSON string (TUPLE).
    #[serde(
        rename = "RecordSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub record_schema: Option<String>,
    /// `extend` or `split`.
    #[serde(
        rename = "ExpandMode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expand_mode: Option<String>,
}

/// A topic as `GET` answers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Topic {
    /// Shards it was created with.
    #[serde(rename = "ShardCount")]
    pub shard_count: i64,
    /// Days records are kept.
    #[serde(rename = "Lifecycle")]
    pub lifecycle: i64,
    /// `TUPLE` or `BLOB`.
    #[serde(rename = "RecordType")]
    pub record_type: String,
    /// The schema as a JSON string (TUPLE).
    #[serde(
        rename = "RecordSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub record_schema: Option<String>,
    /// Comment.
    #[serde(rename = "Comment", default)]
    pub comment: String,
    /// Seconds since the epoch.
    #[serde(rename = "CreateTime", default)]
    pub create_time: i64,
    /// Seconds since the epoch.
    #[serde(rename = "LastModifyTime", default)]
    pub last_modify_time: i64,
}

/// One shard of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Its id (decimal).
    #[serde(rename = "ShardId")]
    pub shard_id: String,
    /// `ACTIVE`, `CLOSED`, `OPENING`, `CLOSING`.
    #[serde(rename = "State")]
    pub state: String,
    /// When it was closed (seconds), empty while active.
    #[serde(rename = "ClosedTime", default)]
    pub closed_time: String,
    /// First hash key it takes (32 hex digits).
    #[serde(rename = "BeginHashKey")]
    pub begin_hash_key: String,
    /// First hash key it does not take.
    #[serde(rename = "EndHashKey")]
    pub end_hash_key: String,
    /// The shards it was split or merged from.
    #[serde(rename = "ParentShardIds", default)]
    pub parent_shard_ids: Vec<String>,
    /// The shard left of it.
    #[serde(rename = "LeftShardId", default)]
    pub left_shard_id: String,
    /// The shard right of it.
    #[serde(rename = "RightShardId", default)]
    pub right_shard_id: String,
}

/// The answer to list shards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardList {
    /// The shards.
    #[serde(rename = "Shards")]
    pub shards: Vec<Shard>,
    /// `http1.1`.
    #[serde(rename = "Protocol", default)]
    pub protocol: String,
    /// Suggested poll interval, ms.
    #[serde(rename = "Interval", default)]
    pub interval: i64,
}

/// A record in a JSON put or get: TUPLE data is an array of strings (or nulls), BLOB data a
/// base64 string.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JsonRecord {
    /// The values.
    #[serde(rename = "Data")]
    pub data: serde_json::Value,
    /// Sequence (get).
    #[serde(rename = "Sequence", default)]
    pub sequence: i64,
    /// System time, ms (get).
    #[serde(rename = "SystemTime", default)]
    pub system_time: i64,
    /// Shard to put it in.
    #[serde(rename = "ShardId", default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// Partition key.
    #[serde(
        rename = "PartitionKey",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub partition_key: Option<String>,
    /// Hash key.
    #[serde(rename = "HashKey", default, skip_serializing_if = "Option::is_none")]
    pub hash_key: Option<String>,
    /// Attributes.
    #[serde(
        rename = "Attributes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub attributes: Option<std::collections::BTreeMap<String, String>>,
}

/// A record a put did not store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JsonFailed {
    /// Its index in the request.
    #[serde(rename = "Index")]
    pub index: i64,
    /// Error code.
    #[serde(rename = "ErrorCode")]
    pub code: String,
    /// Error message.
    #[serde(rename = "ErrorMessage")]
    pub message: String,
}

/// The answer to a JSON put.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PutAnswer {
    /// How many were not stored.
    #[serde(rename = "FailedRecordCount")]
    pub failed_count: i64,
    /// Which.
    #[serde(rename = "FailedRecords")]
    pub failed: Vec<JsonFailed>,
}

/// The 128-bit hash key space a topic's shards divide, as 32 upper-case hex digits.
pub fn hash_key_text(k: u128) -> String {
    format!("{k:032X}")
}

/// A hash key from its text.
pub fn parse_hash_key(s: &str) -> Option<u128> {
    u128::from_str_radix(s, 16).ok()
}
