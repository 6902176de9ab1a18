//! The Kafka destination. Schema sync creates (or checks) the mapped topics; delivery sends a
//! batch of formatted changes and returns only when every one of them was acknowledged by the
//! broker (`acks=all`, idempotent producer), so the checkpoint never passes an unacknowledged
//! change.
//!
//! Partitioning is computed here, not by librdkafka, so consumers can predict it:
//! `partition = (murmur2(bytes) & 0x7fffffff) % partitions` — Kafka's own default partitioner —
//! over the message key (mode `hash`) or over `db.table` (mode `table`); mode `one` uses
//! partition 0.
#![deny(missing_docs)]

mod partition;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use sluice_core::sink::{DeliveryItem, Sink, SinkError};
use sluice_core::{Event, Secret, TableId, TableSpec};
use sluice_format::{Change, Format, Record, SourceInfo};

pub use partition::murmur2;

/// How changes are spread over a topic's partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionMode {
    /// Everything in partition 0: whole transactions in commit order.
    One,
    /// By primary-key hash: per-key order.
    Hash,
    /// By table-name hash: per-table order.
    Table,
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

/// Kafka destination settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic mapping.
    pub topics: TopicMap,
    /// Topic used for heartbeats and DDL of no known table (None: not sent).
    pub heartbeat_topic: Option<String>,
    /// Partitions for topics Sluice creates.
    pub partitions: i32,
    /// Replication factor for topics Sluice creates.
    pub replication_factor: i32,
    /// Partition mode.
    pub mode: PartitionMode,
    /// `compression.type`: none, gzip, snappy, lz4, zstd.
    pub compression: String,
    /// `linger.ms`.
    pub linger_ms: u32,
    /// `batch.size` in bytes.
    pub batch_bytes: u32,
    /// Extra librdkafka properties (security: `security.protocol`, `sasl.*`, `ssl.*`). Any of
    /// them may be a secret (`sasl.password`), so every value prints redacted.
    pub properties: Vec<(String, Secret)>,
    /// Per table (destination name): columns whose values pick the partition in `hash` mode
    /// instead of the primary key (the message key stays the primary key).
    pub sharding: HashMap<TableId, Vec<String>>,
}

impl KafkaConfig {
    /// Whether an update must reach Kafka as a delete of the old key and an insert of the new
    /// one: its message key changes (a primary-key update; any update of a table without a
    /// key, whose key is the whole row), or in `hash` mode with sharding columns, its
    /// partition value changes. Sent as one message, it would land in the new key's partition
    /// only, and a consumer of the old key's partition could apply earlier changes of the old
    /// key after it, bringing the old row back; a compacted topic would also keep the old key.
    pub fn moves_key(&self, r: &sluice_core::RowChange) -> Result<bool, SinkError> {
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
}

/// Delivery outcomes of one batch in flight.
#[derive(Default)]
struct Outcome {
    acked: usize,
    failed: Vec<(usize, KafkaError)>,
}

/// Outcomes of every batch in flight, by ticket.
type Outcomes = HashMap<u64, Outcome>;

struct Ctx {
    outcomes: Arc<Mutex<Outcomes>>,
    broker_down: Arc<Mutex<Option<Instant>>>,
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        // All brokers down: remember since when, for status; librdkafka keeps retrying.
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        ) {
            if let Ok(mut d) = self.broker_down.lock() {
                d.get_or_insert_with(Instant::now);
            }
        }
        tracing::warn!("kafka: {error}: {reason}");
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<(u64, usize)>;
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (ticket, index) = *opaque;
        let Ok(mut all) = self.outcomes.lock() else {
            return;
        };
        let o = all.entry(ticket).or_default();
        match result {
            Ok(_) => o.acked += 1,
            Err((e, _)) => o.failed.push((index, e.clone())),
        }
        if let Ok(mut d) = self.broker_down.lock() {
            *d = None;
        }
    }
}

/// The Kafka destination.
pub struct KafkaSink {
    cfg: KafkaConfig,
    format: Box<dyn Format>,
    source: SourceInfo,
    producer: ThreadedProducer<Ctx>,
    admin: AdminClient<DefaultClientContext>,
    outcomes: Arc<Mutex<Outcomes>>,
    broker_down: Arc<Mutex<Option<Instant>>>,
    /// Partition count of each topic checked or created.
    topics: HashMap<String, i32>,
    rt: tokio::runtime::Runtime,
    notifier: Option<Notifier>,
    /// Next batch ticket, and how many messages (and payload bytes) each batch in flight sent.
    next_ticket: u64,
    sent: HashMap<u64, (usize, u64)>,
    /// Key and payload bytes of every acknowledged message.
    acked_bytes: u64,
}

/// Told of an outage in progress (`Some(text)`) and of its end (`None`), for status.
pub type Notifier = Box<dyn Fn(Option<&str>) + Send>;

fn kafka_err(what: &str) -> impl Fn(KafkaError) -> SinkError + '_ {
    move |e| SinkError::Unavailable(format!("kafka: {what}: {e}"))
}

impl KafkaSink {
    /// Connects (lazily: librdkafka connects on first use) with `cfg`, writing `format`.
    pub fn new(
        cfg: KafkaConfig,
        format: Box<dyn Format>,
        source: SourceInfo,
    ) -> Result<Self, SinkError> {
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", &cfg.brokers);
        for (k, v) in &cfg.properties {
            base.set(k, v.expose());
        }
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let broker_down = Arc::new(Mutex::new(None));
        let producer: ThreadedProducer<Ctx> = base
            .clone()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // Never give up on a message by time: a broker outage of any length is waited
            // out (the batch in flight bounds memory); only permanent errors fail.
            .set("message.timeout.ms", "0")
            .set("compression.type", &cfg.compression)
            .set("linger.ms", cfg.linger_ms.to_string())
            .set("batch.size", cfg.batch_bytes.to_string())
            .create_with_context(Ctx {
                outcomes: outcomes.clone(),
                broker_down: broker_down.clone(),
            })
            .map_err(|e| SinkError::Config(format!("kafka producer: {e}")))?;
        let admin = base
            .create()
            .map_err(|e| SinkError::Config(format!("kafka admin client: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SinkError::Config(format!("runtime: {e}")))?;
        Ok(Self {
            cfg,
            format,
            source,
            producer,
            admin,
            outcomes,
            broker_down,
            topics: HashMap::new(),
            rt,
            notifier: None,
            next_ticket: 0,
            sent: HashMap::new(),
            acked_bytes: 0,
        })
    }

    /// Installs the outage notifier (the pipeline records the note in the project's status).
    pub fn set_notifier(&mut self, n: Notifier) {
        self.notifier = Some(n);
    }

    /// Since when all brokers have been unreachable, if they are.
    pub fn outage_since(&self) -> Option<Instant> {
        self.broker_down.lock().ok().and_then(|d| *d)
    }

    /// Partition count of an existing topic, or None when it does not exist.
    fn existing_partitions(&self, topic: &str) -> Result<Option<i32>, SinkError> {
        let md = self
            .producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .map_err(kafka_err("read topic metadata"))?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as i32))
    }

    /// Creates `topic` unless it exists; records its partition count.
    pub fn ensure_topic(&mut self, topic: &str) -> Result<i32, SinkError> {
        if let Some(n) = self.topics.get(topic) {
            return Ok(*n);
        }
        let n = match self.existing_partitions(topic)? {
            Some(n) => {
                if self.cfg.mode != PartitionMode::One && n != self.cfg.partitions {
                    tracing::warn!(
                        "topic {topic} exists with {n} partitions (configured {}); hashing over its {n}",
                        self.cfg.partitions
                    );
                }
                n
            }
            None => {
                let new = NewTopic::new(
                    topic,
                    self.cfg.partitions,
                    TopicReplication::Fixed(self.cfg.replication_factor),
                );
                let results = self
                    .rt
                    .block_on(self.admin.create_topics(&[new], &AdminOptions::new()))
                    .map_err(kafka_err("create topics"))?;
                for r in results {
                    match r {
                        Ok(_) => {}
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((t, code)) => {
                            return Err(SinkError::Rejected(format!(
                                "kafka refused to create topic {t}: {code}; create it yourself \
                                 ({} partitions) or grant the CREATE permission",
                                self.cfg.partitions
                            )))
                        }
                    }
                }
                self.cfg.partitions
            }
        };
        self.topics.insert(topic.to_string(), n);
        Ok(n)
    }

    fn topic_of(&self, e: &Event) -> Option<String> {
        match e {
            Event::Row(r) => Some(self.cfg.topics.topic(&r.table.id)),
            Event::Ddl(d) => match &d.table {
                Some(t) => Some(self.cfg.topics.topic(t)),
                None => self.cfg.heartbeat_topic.clone(),
            },
            Event::Heartbeat { .. } => self.cfg.heartbeat_topic.clone(),
            _ => None,
        }
    }
}

/// The values of a table's sharding columns in `image`, joined like a key.
fn sharding_key(
    r: &sluice_core::RowChange,
    image: &[sluice_core::Value],
    cols: &[String],
) -> Result<Vec<u8>, SinkError> {
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
fn image_of(r: &sluice_core::RowChange) -> &[sluice_core::Value] {
    r.after.as_deref().or(r.before.as_deref()).unwrap_or(&[])
}

/// The message key of `image`: the key values in MySQL text form joined by `\u0001` (all
/// columns when the table has no primary key).
fn image_key(r: &sluice_core::RowChange, image: &[sluice_core::Value]) -> Vec<u8> {
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

/// Message key: a row's key ([`image_key`]); the table name for DDL; empty for heartbeats.
fn key_of(e: &Event) -> Vec<u8> {
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

fn describe(e: &Event) -> (String, String) {
    match e {
        Event::Row(r) => (r.table.id.to_string(), r.pos.to_string()),
        Event::Ddl(d) => (d.db.clone(), d.pos.to_string()),
        Event::Heartbeat { pos, .. } => (String::new(), pos.to_string()),
        _ => (String::new(), String::new()),
    }
}

/// A formatted message: item index, topic, partition, key, payload.
type Placed = (usize, String, i32, Vec<u8>, Vec<u8>);

/// Errors that retrying cannot fix.
fn permanent(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

impl Sink for KafkaSink {
    fn prepare(&mut self, tables: &[TableSpec]) -> Result<(), SinkError> {
        let mut topics: Vec<String> = tables
            .iter()
            .map(|t| self.cfg.topics.topic(&t.dest))
            .collect();
        if let Some(h) = &self.cfg.heartbeat_topic {
            topics.push(h.clone());
        }
        topics.sort();
        topics.dedup();
        for t in topics {
            self.ensure_topic(&t)?;
        }
        Ok(())
    }

    fn send(&mut self, items: &[DeliveryItem]) -> Result<u64, SinkError> {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        // Encode and place everything first: a bad record fails before anything is sent.
        let mut msgs: Vec<Placed> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(topic) = self.topic_of(&item.event) else {
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
            let Some(payload) = self
                .format
                .encode(&rec)
                .map_err(|e| SinkError::Rejected(e.to_string()))?
            else {
                continue;
            };
            let partitions = self.ensure_topic(&topic)?;
            let key = key_of(&item.event);
            let partition = match (self.cfg.mode, &item.event) {
                (PartitionMode::One, _) => 0,
                (PartitionMode::Table, Event::Row(r)) => partition::pick(
                    format!("{}.{}", r.table.id.db, r.table.id.table).as_bytes(),
                    partitions,
                ),
                (PartitionMode::Table, Event::Ddl(_)) => partition::pick(&key, partitions),
                (PartitionMode::Hash, Event::Row(r)) => match self.cfg.sharding.get(&r.table.id) {
                    Some(cols) => partition::pick(&sharding_key(r, image_of(r), cols)?, partitions),
                    None => partition::pick(&key, partitions),
                },
                (PartitionMode::Hash, _) => partition::pick(&key, partitions),
                _ => 0,
            };
            msgs.push((i, topic, partition, key, payload));
        }
        if let Ok(mut o) = self.outcomes.lock() {
            o.insert(ticket, Outcome::default());
        }
        let mut sent = 0usize;
        let mut bytes = 0u64;
        for (i, topic, partition, key, payload) in &msgs {
            let item = &items[*i];
            let (op, db, table, pos) = match &item.event {
                Event::Row(r) => (
                    if item.snapshot {
                        "snapshot"
                    } else {
                        r.op.as_str()
                    },
                    r.table.id.db.as_str(),
                    r.table.id.table.as_str(),
                    r.pos.to_string(),
                ),
                Event::Ddl(d) => (
                    "ddl",
                    d.db.as_str(),
                    d.table.as_ref().map_or("", |t| t.table.as_str()),
                    d.pos.to_string(),
                ),
                Event::Heartbeat { pos, .. } => ("heartbeat", "", "", pos.to_string()),
                _ => ("", "", "", String::new()),
            };
            let seq = item.sequence.map(|s| s.to_string()).unwrap_or_default();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "sluice.op",
                    value: Some(op),
                })
                .insert(Header {
                    key: "sluice.db",
                    value: Some(db),
                })
                .insert(Header {
                    key: "sluice.table",
                    value: Some(table),
                })
                .insert(Header {
                    key: "sluice.position",
                    value: Some(&pos),
                })
                .insert(Header {
                    key: "sluice.sequence",
                    value: Some(&seq),
                });
            // The halves of a split key change say which half they are.
            let headers = match item.key_change {
                Some(k) => headers.insert(Header {
                    key: "sluice.key_change",
                    value: Some(k.as_str()),
                }),
                None => headers,
            };
            let mut record = BaseRecord::with_opaque_to(topic, Box::new((ticket, *i)))
                .partition(*partition)
                .key(key)
                .payload(payload)
                .headers(headers);
            // The local queue is full: wait for deliveries to make room.
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => {
                        let (t, p) = describe(&item.event);
                        return Err(SinkError::Rejected(format!(
                            "kafka refused a message for {t} (key {}) at {p}: {e}",
                            String::from_utf8_lossy(key)
                        )));
                    }
                }
            }
            sent += 1;
            bytes += (key.len() + payload.len()) as u64;
        }
        self.sent.insert(ticket, (sent, bytes));
        Ok(ticket)
    }

    fn wait(&mut self, ticket: u64, items: &[DeliveryItem]) -> Result<(), SinkError> {
        let (sent, bytes) = self.sent.remove(&ticket).unwrap_or((0, 0));
        // Wait for every delivery report. librdkafka retries by itself through an outage
        // (no message timeout); meanwhile the outage is reported, once a second.
        let mut noted: Option<Instant> = None;
        let result = loop {
            let (acked, failed) = match self.outcomes.lock() {
                Ok(all) => all
                    .get(&ticket)
                    .map(|o| (o.acked, o.failed.clone()))
                    .unwrap_or_default(),
                Err(_) => {
                    return Err(SinkError::Unavailable(
                        "delivery bookkeeping poisoned".into(),
                    ))
                }
            };
            if let Some((i, e)) = failed.first() {
                let (t, p) = describe(&items[*i].event);
                let key = String::from_utf8_lossy(&key_of(&items[*i].event)).replace('\u{1}', ",");
                let msg = format!("kafka did not accept the change of {t} (key {key}) at {p}: {e}");
                break Err(if permanent(e) {
                    SinkError::Rejected(msg)
                } else {
                    SinkError::Unavailable(msg)
                });
            }
            if acked >= sent {
                break Ok(());
            }
            if let (Some(since), Some(n)) = (self.outage_since(), &self.notifier) {
                if since.elapsed() > Duration::from_secs(2)
                    && noted.is_none_or(|t| t.elapsed() > Duration::from_secs(1))
                {
                    let text = format!(
                        "kafka brokers unreachable for {} s; {} of {sent} messages of the batch acknowledged; waiting",
                        since.elapsed().as_secs(),
                        acked
                    );
                    tracing::warn!("{text}");
                    n(Some(&text));
                    noted = Some(Instant::now());
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if let (Some(_), Some(n)) = (noted, &self.notifier) {
            n(None);
        }
        if let Ok(mut all) = self.outcomes.lock() {
            all.remove(&ticket);
        }
        if result.is_ok() {
            self.acked_bytes += bytes;
        }
        result
    }

    fn acknowledged_bytes(&self) -> u64 {
        self.acked_bytes
    }
}
