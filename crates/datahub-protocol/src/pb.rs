//! The protobuf messages of DataHub's record calls (proto2, `datahub_record_proto`), written
//! with prost's derive so that no protoc is needed to build.
//!
//! A `FieldData` without a value is a NULL; every present value is the UTF-8 text of the value
//! (as in JSON mode), or the raw bytes of a BLOB record's single field.

/// A record attribute.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringPair {
    /// Name.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, required, tag = "2")]
    pub value: String,
}

/// One field of a record; no value is NULL.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldData {
    /// The value's text (TUPLE) or bytes (BLOB).
    #[prost(bytes = "vec", optional, tag = "1")]
    pub value: Option<Vec<u8>>,
}

/// A record's attributes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RecordAttributes {
    /// Name/value pairs.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<StringPair>,
}

/// A record's fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RecordData {
    /// One per schema field (TUPLE), or one holding the bytes (BLOB).
    #[prost(message, repeated, tag = "1")]
    pub data: Vec<FieldData>,
}

/// A record as put or read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RecordEntry {
    /// Shard to put it in (put to any shard).
    #[prost(string, optional, tag = "1")]
    pub shard_id: Option<String>,
    /// Hash key choosing the shard (128-bit hex).
    #[prost(string, optional, tag = "2")]
    pub hash_key: Option<String>,
    /// Partition key (hashed to choose the shard).
    #[prost(string, optional, tag = "3")]
    pub partition_key: Option<String>,
    /// Its cursor (read).
    #[prost(string, optional, tag = "4")]
    pub cursor: Option<String>,
    /// The cursor after it (read).
    #[prost(string, optional, tag = "5")]
    pub next_cursor: Option<String>,
    /// Its sequence in the shard (read).
    #[prost(int64, optional, tag = "6")]
    pub sequence: Option<i64>,
    /// When the server stored it, in ms (read).
    #[prost(int64, optional, tag = "7")]
    pub system_time: Option<i64>,
    /// Attributes.
    #[prost(message, optional, tag = "8")]
    pub attributes: Option<RecordAttributes>,
    /// The fields.
    #[prost(message, required, tag = "9")]
    pub data: RecordData,
}

/// Put records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRecordsRequest {
    /// The records, in order.
    #[prost(message, repeated, tag = "1")]
    pub records: Vec<RecordEntry>,
}

/// A record a put did not store.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FailedRecord {
    /// Its index in the request.
    #[prost(int32, required, tag = "1")]
    pub index: i32,
    /// Why (an error code).
    #[prost(string, optional, tag = "2")]
    pub error_code: Option<String>,
    /// Why (text).
    #[prost(string, optional, tag = "3")]
    pub error_message: Option<String>,
}

/// The answer to a put.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRecordsResponse {
    /// How many were not stored.
    #[prost(int32, optional, tag = "1")]
    pub failed_count: Option<i32>,
    /// Which, and why.
    #[prost(message, repeated, tag = "2")]
    pub failed_records: Vec<FailedRecord>,
}

/// Get records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRecordsRequest {
    /// Where to start.
    #[prost(string, required, tag = "1")]
    pub cursor: String,
    /// At most this many.
    #[prost(int32, optional, tag = "2", default = "1")]
    pub limit: Option<i32>,
}

/// The answer to a get.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRecordsResponse {
    /// Where the next get starts.
    #[prost(string, required, tag = "1")]
    pub next_cursor: String,
    /// How many records follow.
    #[prost(int32, required, tag = "2")]
    pub record_count: i32,
    /// Sequence of the first.
    #[prost(int64, optional, tag = "3")]
    pub start_sequence: Option<i64>,
    /// The records.
    #[prost(message, repeated, tag = "4")]
    pub records: Vec<RecordEntry>,
}

/// A binary (BATCH mode) record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BinaryRecordEntry {
    /// Its cursor.
    #[prost(string, optional, tag = "1")]
    pub cursor: Option<String>,
    /// The cursor after it.
    #[prost(string, optional, tag = "2")]
    pub next_cursor: Option<String>,
    /// Its sequence.
    #[prost(int64, optional, tag = "3")]
    pub sequence: Option<i64>,
    /// When stored, in ms.
    #[prost(int64, optional, tag = "4")]
    pub system_time: Option<i64>,
    /// Serial.
    #[prost(uint32, optional, tag = "5")]
    pub serial: Option<u32>,
    /// The batch bytes.
    #[prost(bytes = "vec", optional, tag = "6")]
    pub data: Option<Vec<u8>>,
}

/// Put binary records (BATCH mode).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutBinaryRecordsRequest {
    /// The records.
    #[prost(message, repeated, tag = "1")]
    pub records: Vec<BinaryRecordEntry>,
}
