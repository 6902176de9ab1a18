//! What every message-queue destination (Kafka, RocketMQ, DataHub BLOB topics) shares, free
//! of any transport: which topic a change goes to, its message key, the partition (queue,
//! shard) it lands in, the headers (user properties) that describe it, when an update must be
//! split into a delete of the old key and an insert of the new one, and (`state`) how a
//! table's latest state is rebuilt from its messages for verification.
//!
//! Invariants:
//! - Every change of one key lands in one partition of its topic, so per-key order holds for a
//!   consumer that reads partitions independently; an update that would move its key (or its
//!   partition) is split ([`Routing::moves_key`]) so both keys keep that order.
//! - Partitions are chosen here, not by a client library, with Kafka's default partitioner
//!   ([`partition::pick`]), so a consumer can predict where a key lands on every transport.
//! - A batch is shaped whole before anything is sent: a change no format can encode fails the
//!   batch before its first message leaves.
#![deny(missing_docs)]

pub mod config;
pub mod partition;
pub mod state;
pub mod tickets;

use std::borrow::Cow;
use std::collections::HashMap;

use sluice_core::sink::{DeliveryItem, SinkError};
use sluice_core::{Event, RowChange, TableId, TableSpec, Value};
use sluice_format::{Change, Format, Record, SourceInfo};

pub use partition::{murmur2, pick};

/// How changes are spread over a topic's partitions (Kafka partitions, RocketMQ queues,
/// DataHub shards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionMode {
    /// Everything in partition 0: whole transactions in commit order.
    One,
    /// By primary-key hash (or `objects.sharding` columns): per-key order.
    Hash,
    /// By table-name hash: per-table order.
    Table,
}

impl PartitionMode {
    /// Parses `one`, `hash` or `table`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "one" => PartitionMode::One,
            "hash" => PartitionMode::Hash,
            "table" => PartitionMode::Table,
            _ => return None,
        })
    }
}

/// Where each table's changes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicMap {
    /// A template with `{db}` and `{table}` (names after rename).
    Template(String),
    /// One topic for everything.
    Single(String),
    /// Explicit `db.table` -> topic; tables not listed use the fallback template.
    Explicit(HashMap<String, String>, String),
}

impl TopicMap {
    /// The topic of a table.
    pub fn topic(&self, t: &TableId) -> String {
        let fill = |tpl: &str| tpl.replace("{db}", &t.db).replace("{table}", &t.table);
        match self {
            TopicMap::Template(tpl) => fill(tpl),
            TopicMap::Single(s) => s.clone(),
            TopicMap::Explicit(m, fallback) => m
                .get(&format!("{}.{}", t.db, t.table))
                .cloned()
                .unwrap_or_else(|| fill(fallback)),
        }
    }
}

/// The routing settings every message-queue destination has.
#[derive(Debug, Clone)]
pub struct Routing {
    /// Topic mapping.
    pub topics: TopicMap,
    /// Topic for heartbeats and DDL of no known table (None: those are not sent).
    pub heartbeat_topic: Option<String>,
    /// Partition mode.
    pub mode: PartitionMode,
    /// Per table (destination name): columns whose values pick the partition in `hash` mode
    /// instead of the key (the message key stays the key).
    pub sharding: HashMap<TableId, Vec<String>>,
}

impl Routing {
    /// The topic of a change; None when it has none (a heartbeat without a heartbeat topic).
    pub fn topic_of(&self, e: &Event) -> Option<String> {
        match e {
            Event::Row(r) => Some(self.topics.topic(&r.table.id)),
            Event::Ddl(d) => match &d.table {
                Some(t) => Some(self.topics.topic(t)),
                None => self.heartbeat_topic.clone(),
            },
            Event::Heartbeat { .. } => self.heartbeat_topic.clone(),
            _ => None,
        }
    }

    /// Every topic the schema step checks or creates for `tables`, sorted, once each.
    pub fn topics(&self, tables: &[TableSpec]) -> Vec<String> {
        let mut topics: Vec<String> = tables.iter().map(|t| self.topics.topic(&t.dest)).collect();
        topics.extend(self.heartbeat_topic.clone());
        topics.sort();
        topics.dedup();
        topics
    }

    /// Whether an update must be delivered as a delete of the old key and an insert of the
    /// new one: its message key changes (a key update), or in `hash` mode with sharding
    /// columns, its partition value changes. Sent as one message it would land in the new
    /// key's partition only, and a consumer of the old key's partition could apply earlier
    /// changes of the old key after it, bringing the old row back; a compacted topic would
    /// also keep the old key.
    pub fn moves_key(&self, r: &RowChange) -> Result<bool, SinkError> {
        let (Some(before), Some(after)) = (r.before.as_deref(), r.after.as_deref()) else {
            return Ok(false);
        };
        if image_key(r, before) != image_key(r, after) {
            return Ok(true);
        }
        match (self.mode, self.sharding.get(&r.table.id)) {
            (PartitionMode::Hash, Some(cols)) => {
                Ok(sharding_key(r, before, cols)? != sharding_key(r, after, cols)?)
            }
            _ => Ok(false),
        }
    }

    /// The partition of a change with message key `key` in a topic of `partitions`.
    pub fn partition(&self, e: &Event, key: &[u8], partitions: i32) -> Result<i32, SinkError> {
        Ok(match (self.mode, e) {
            (PartitionMode::One, _) => 0,
            (PartitionMode::Table, Event::Row(r)) => pick(
                format!("{}.{}", r.table.id.db, r.table.id.table).as_bytes(),
                partitions,
            ),
            (PartitionMode::Hash, Event::Row(r)) => match self.sharding.get(&r.table.id) {
                Some(cols) => pick(&sharding_key(r, image_of(r), cols)?, partitions),
                None => pick(key, partitions),
            },
            // DDL keyed by its table name; heartbeats (empty key) in partition 0.
            _ => pick(key, partitions),
        })
    }
}

/// The values of a table's sharding columns in `image`, joined like a key.
fn sharding_key(r: &RowChange, image: &[Value], cols: &[String]) -> Result<Vec<u8>, SinkError> {
    let mut parts = Vec::with_capacity(cols.len());
    for c in cols {
        let i = r
            .table
            .columns
            .iter()
            .position(|col| col.name.eq_ignore_ascii_case(c))
            .ok_or_else(|| {
                SinkError::Rejected(format!(
                    "sharding column {c} of {} is gone (dropped by a DDL?); change objects.sharding",
                    r.table.id
                ))
            })?;
        parts.push(
            image
                .get(i)
                .and_then(|v| {
                    sluice_format::text::value_text(v, sluice_format::text::BytesAs::Base64)
                })
                .unwrap_or_default(),
        );
    }
    Ok(parts.join("\u{1}").into_bytes())
}

/// The image a row's message is keyed and partitioned by: the after image, or the before
/// image of a delete.
fn image_of(r: &RowChange) -> &[Value] {
    r.after.as_deref().or(r.before.as_deref()).unwrap_or(&[])
}

/// The message key of `image`: the key values in MySQL text form joined by `\u0001`. The key
/// is the primary key, or the `objects.keys` columns of a table without one (routing puts them
/// in the schema's key); all columns only when a table has neither.
fn image_key(r: &RowChange, image: &[Value]) -> Vec<u8> {
    let idx: Vec<usize> = if r.table.primary_key.is_empty() {
        (0..image.len()).collect()
    } else {
        r.table.primary_key.clone()
    };
    let parts: Vec<String> = idx
        .iter()
        .filter_map(|&i| image.get(i))
        .map(|v| {
            sluice_format::text::value_text(v, sluice_format::text::BytesAs::Base64)
                .unwrap_or_default()
        })
        .collect();
    parts.join("\u{1}").into_bytes()
}

/// Message key: a row's key; the table name (`db.table`) for DDL; empty for heartbeats.
pub fn key_of(e: &Event) -> Vec<u8> {
    match e {
        Event::Row(r) => image_key(r, image_of(r)),
        Event::Ddl(d) => d
            .table
            .as_ref()
            .map(|t| format!("{}.{}", t.db, t.table))
            .unwrap_or_default()
            .into_bytes(),
        _ => Vec::new(),
    }
}

/// A change for an error message: its table (or database) and position.
pub fn describe(e: &Event) -> (String, String) {
    match e {
        Event::Row(r) => (r.table.id.to_string(), r.pos.to_string()),
        Event::Ddl(d) => (d.db.clone(), d.pos.to_string()),
        Event::Heartbeat { pos, .. } => (String::new(), pos.to_string()),
        _ => (String::new(), String::new()),
    }
}

/// A key for an error message (its parts joined by `,`).
pub fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\u{1}', ",")
}

/// The headers (Kafka headers, RocketMQ user properties) that describe a change:
/// `sluice.op` (insert, update, delete, snapshot, ddl, heartbeat), `sluice.db`,
/// `sluice.table`, `sluice.position`, `sluice.sequence`, and `sluice.key_change` (old, new)
/// on the halves of a split key change.
pub fn headers(item: &DeliveryItem) -> Vec<(&'static str, Cow<'_, str>)> {
    let (op, db, table, pos): (&str, &str, &str, String) = match &item.event {
        Event::Row(r) => (
            if item.snapshot {
                "snapshot"
            } else {
                r.op.as_str()
            },
            &r.table.id.db,
            &r.table.id.table,
            r.pos.to_string(),
        ),
        Event::Ddl(d) => (
            "ddl",
            &d.db,
            d.table.as_ref().map_or("", |t| t.table.as_str()),
            d.pos.to_string(),
        ),
        Event::Heartbeat { pos, .. } => ("heartbeat", "", "", pos.to_string()),
        _ => ("", "", "", String::new()),
    };
    let mut h = vec![
        ("sluice.op", Cow::Borrowed(op)),
        ("sluice.db", Cow::Borrowed(db)),
        ("sluice.table", Cow::Borrowed(table)),
        ("sluice.position", Cow::Owned(pos)),
        (
            "sluice.sequence",
            Cow::Owned(item.sequence.map(|s| s.to_string()).unwrap_or_default()),
        ),
    ];
    if let Some(k) = item.key_change {
        h.push(("sluice.key_change", Cow::Borrowed(k.as_str())));
    }
    h
}

/// One message ready for a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Index of its item in the batch (for headers and error messages).
    pub index: usize,
    /// Topic.
    pub topic: String,
    /// Partition (queue, shard) in that topic.
    pub partition: i32,
    /// Message key.
    pub key: Vec<u8>,
    /// Encoded payload.
    pub payload: Vec<u8>,
}

/// Turns batches into messages: routing plus a format plus the source's facts.
pub struct Shaper {
    routing: Routing,
    format: Box<dyn Format>,
    source: SourceInfo,
}

impl Shaper {
    /// A shaper writing `format`.
    pub fn new(routing: Routing, format: Box<dyn Format>, source: SourceInfo) -> Self {
        Self {
            routing,
            format,
            source,
        }
    }

    /// The routing settings.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The messages of a batch, in batch order. `partitions` gives a topic's partition count
    /// (the transport checks or creates the topic on first use). Items without a message
    /// (no topic, or nothing the format writes for them) are left out.
    pub fn shape(
        &self,
        items: &[DeliveryItem],
        partitions: &mut dyn FnMut(&str) -> Result<i32, SinkError>,
    ) -> Result<Vec<Message>, SinkError> {
        let mut out = Vec::with_capacity(items.len());
        // The topic of the last row's table: consecutive rows mostly share one schema `Arc`,
        // and filling a template per row costs more than the rest of the routing.
        let mut last: Option<(std::sync::Arc<sluice_core::TableSchema>, String)> = None;
        for (index, item) in items.iter().enumerate() {
            let topic = match (&item.event, &last) {
                (Event::Row(r), Some((t, topic))) if std::sync::Arc::ptr_eq(t, &r.table) => {
                    Some(topic.clone())
                }
                (Event::Row(r), _) => {
                    let topic = self.routing.topic_of(&item.event);
                    last = topic.clone().map(|t| (r.table.clone(), t));
                    topic
                }
                _ => self.routing.topic_of(&item.event),
            };
            let Some(topic) = topic else {
                continue;
            };
            let change = match &item.event {
                Event::Row(r) if item.snapshot => Change::Snapshot(r),
                Event::Row(r) => Change::Row(r),
                Event::Ddl(d) => Change::Ddl(d),
                Event::Heartbeat { pos, ts_ms } => Change::Heartbeat { pos, ts_ms: *ts_ms },
                _ => continue,
            };
            let rec = Record {
                change,
                source: &self.source,
                sequence: item.sequence,
                last_in_txn: item.last_in_txn,
                txn_number: item.txn_number,
                key_change: item.key_change,
            };
            let Some(encoded) = self.format.encode_message(&rec, &topic).map_err(|e| {
                let (t, p) = describe(&item.event);
                let text = format!("{t} at {p}: {e}");
                if e.transient {
                    SinkError::Unavailable(text)
                } else {
                    SinkError::Rejected(text)
                }
            })?
            else {
                continue;
            };
            let n = partitions(&topic)?;
            // The partition follows the event's own key, whatever bytes the format writes as
            // the message key (Avro encodes it), so every format spreads keys alike.
            let key = key_of(&item.event);
            let partition = self.routing.partition(&item.event, &key, n)?;
            out.push(Message {
                index,
                topic,
                partition,
                key: encoded.key.unwrap_or(key),
                payload: encoded.value,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
