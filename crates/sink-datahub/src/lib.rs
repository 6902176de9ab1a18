//! The DataHub destination: TUPLE topics (one field per column, plus change metadata columns)
//! made from the source tables, or BLOB topics carrying any message format; records put to the
//! shard whose hash-key range holds the change's key.
//!
//! Invariants:
//! - Per-key order: a change's shard is the active shard whose hash-key range holds its key's
//!   hash (`sluice-mq`'s partition hash, scaled to 128 bits), and each shard's puts leave one
//!   at a time from one writer thread, in batch order. After a split or merge the key's new
//!   shard is a child of its old one, which a DataHub reader reads first.
//! - A batch is acknowledged only when every record of it was stored. Records a put reports
//!   as failed are put again, in order, together with every later record of the same key in
//!   that put, so the newest record of each key is always the last one stored; a failure
//!   that retrying cannot mend fails the batch. Once a put fails, no writer sends a later
//!   batch until the pipeline has collected every batch in flight and sends them again.
//! - A record over 1 MB is refused before anything of its batch is sent, naming table, key
//!   and position.
#![deny(missing_docs)]

mod client;
mod config;
mod types;
pub mod verify;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use sluice_core::sink::{DeliveryItem, Sink, SinkError};
use sluice_core::{Event, Op, RowChange, TableId, TableSchema, TableSpec};
use sluice_datahub_protocol::api::{self, Field, RecordSchema};
use sluice_datahub_protocol::pb;
use sluice_format::SourceInfo;
use sluice_mq::tickets::{batch_error, Failure, Tracker};
use sluice_mq::Shaper;

pub use client::{Account, CallError, Client, Protocol};
pub use config::{
    checked_topic, topic_problem, DatahubConfig, DatahubSettings, MetaNames, RawDatahub, RecordType,
};

/// DataHub's limit on one record.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// What one put may carry (the limit is 4 MB; room is left for framing).
const MAX_PUT_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;

/// One record for a shard.
struct Out {
    index: usize,
    key: Vec<u8>,
    entry: pb::RecordEntry,
    bytes: usize,
}

/// The records of one batch for one shard, in batch order.
struct Job {
    ticket: u64,
    topic: String,
    shard: String,
    tuple: bool,
    records: Vec<Out>,
}

/// What a TUPLE field is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Op,
    CommitTime,
    Sequence,
    Image,
    Shard,
    Column(usize),
    /// A field no column of this schema has (dropped at the source): NULL.
    Missing,
}

/// A row schema (kept, so that its address stays its own) and where each field of a topic
/// comes from for its rows.
type Layout = (Arc<TableSchema>, Arc<Vec<Source>>);

struct TopicState {
    /// The topic's fields (TUPLE), in record order.
    fields: Vec<Field>,
    /// Active shards: id, first hash key, end hash key.
    shards: Vec<(String, u128, u128)>,
}

/// The DataHub destination.
pub struct DatahubSink {
    cfg: DatahubConfig,
    shaper: Option<Shaper>,
    client: Client,
    topics: HashMap<String, TopicState>,
    /// Field sources per row schema and topic (the schema is kept, so its address stays its
    /// own).
    layouts: HashMap<(usize, String), Layout>,
    /// Sharded parts: each physical table's schema renamed to its logical table.
    renamed: HashMap<usize, (Arc<TableSchema>, Arc<TableSchema>)>,
    workers: Vec<mpsc::Sender<Job>>,
    tracker: Arc<Tracker>,
    halted: Arc<AtomicBool>,
    project_checked: bool,
    next_ticket: u64,
    acked_bytes: u64,
}

fn call_error(e: CallError, what: &str) -> SinkError {
    match &e {
        CallError::Answer { status: 401, .. } => SinkError::Rejected(format!(
            "datahub refused {what}: {e}; check destination.access_id and access_key"
        )),
        CallError::Answer { status: 403, .. } => SinkError::Rejected(format!(
            "datahub refused {what}: {e}; the account lacks the permission"
        )),
        _ if e.is_transient() => SinkError::Unavailable(format!("datahub: {what}: {e}")),
        _ => SinkError::Rejected(format!("datahub refused {what}: {e}")),
    }
}

impl DatahubSink {
    /// A sink for `cfg`; `format` builds BLOB records.
    pub fn new(
        cfg: DatahubConfig,
        format: Option<Box<dyn sluice_format::Format>>,
        source: SourceInfo,
    ) -> Result<Self, SinkError> {
        let shaper = match (cfg.record_type, format) {
            (RecordType::Blob, Some(f)) => Some(Shaper::new(cfg.routing.clone(), f, source)),
            (RecordType::Blob, None) => {
                return Err(SinkError::Config(
                    "a BLOB destination needs a format".into(),
                ))
            }
            (RecordType::Tuple, _) => None,
        };
        let client = Client::new(
            cfg.account.clone(),
            cfg.protocol,
            cfg.compression,
            cfg.timeout,
        );
        let tracker = Arc::new(Tracker::default());
        let halted = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(cfg.writers);
        for n in 0..cfg.writers {
            let (tx, rx) = mpsc::channel::<Job>();
            let c = Client::new(
                cfg.account.clone(),
                cfg.protocol,
                cfg.compression,
                cfg.timeout,
            );
            let (t, h, project) = (tracker.clone(), halted.clone(), cfg.project.clone());
            let per_put = cfg.batch_records;
            std::thread::Builder::new()
                .name(format!("sluice-datahub-{n}"))
                .spawn(move || writer::writer(c, project, per_put, rx, t, h))
                .map_err(|e| SinkError::Config(format!("writer thread: {e}")))?;
            workers.push(tx);
        }
        Ok(Self {
            cfg,
            shaper,
            client,
            topics: HashMap::new(),
            layouts: HashMap::new(),
            renamed: HashMap::new(),
            workers,
            tracker,
            halted,
            project_checked: false,
            next_ticket: 0,
            acked_bytes: 0,
        })
    }

    fn check_project(&mut self) -> Result<(), SinkError> {
        if self.project_checked {
            return Ok(());
        }
        let p = &self.cfg.project;
        let exists = self
            .client
            .project_exists(p)
            .map_err(|e| call_error(e, &format!("the project {p}")))?;
        if !exists {
            if !self.cfg.create_topics {
                return Err(SinkError::Config(format!(
                    "datahub project {p} does not exist at {}; create it, or set destination.create_topics: true",
                    self.client.endpoint()
                )));
            }
            self.client
                .create_project(p)
                .map_err(|e| call_error(e, &format!("creating the project {p}")))?;
            tracing::info!("datahub: created project {p}");
        }
        self.project_checked = true;
        Ok(())
    }

    /// The metadata fields every TUPLE topic starts with.
    fn meta_fields(&self) -> Vec<Field> {
        let m = &self.cfg.meta;
        let mut out = Vec::new();
        let mut add = |name: &str, ty: &str| {
            if !name.is_empty() {
                out.push(Field {
                    name: name.to_string(),
                    ty: ty.to_string(),
                    comment: "sluice change metadata".into(),
                    notnull: false,
                });
            }
        };
        add(&m.op, "string");
        add(&m.commit_time, "timestamp");
        add(&m.sequence, "bigint");
        add(&m.image, "string");
        if self.cfg.shard.is_some() {
            add(&m.shard, "string");
        }
        out
    }

    /// Checks (or creates) `topic`: `expected` are the TUPLE fields Sluice writes for its
    /// table (None for BLOB topics). Caches its fields and active shards.
    fn ensure(
        &mut self,
        topic: &str,
        table: &TableId,
        expected: Option<Vec<Field>>,
    ) -> Result<(), SinkError> {
        if self.topics.contains_key(topic) {
            return Ok(());
        }
        self.check_project()?;
        let p = self.cfg.project.clone();
        let tuple = expected.is_some();
        let mut found = self
            .client
            .topic(&p, topic)
            .map_err(|e| call_error(e, &format!("topic {topic}")))?;
        if found.is_none() {
            if !self.cfg.create_topics {
                return Err(SinkError::Config(format!(
                    "datahub topic {topic} (table {table}) does not exist in project {p}; create it, or set destination.create_topics: true"
                )));
            }
            let req = api::CreateTopic {
                shard_count: self.cfg.shard_count,
                lifecycle: self.cfg.lifecycle,
                record_type: if tuple { "TUPLE" } else { "BLOB" }.into(),
                comment: format!("Sluice: {table}"),
                record_schema: expected.as_ref().map(|f| {
                    serde_json::to_string(&RecordSchema { fields: f.clone() }).unwrap_or_default()
                }),
                expand_mode: None,
            };
            self.client
                .create_topic(&p, topic, &req)
                .map_err(|e| call_error(e, &format!("creating topic {topic} for table {table}")))?;
            tracing::info!(
                "datahub: created {} topic {topic} for {table} with {} shards",
                req.record_type,
                req.shard_count
            );
            found = self
                .client
                .topic(&p, topic)
                .map_err(|e| call_error(e, &format!("topic {topic}")))?;
        }
        let Some(t) = found else {
            return Err(SinkError::Unavailable(format!(
                "datahub topic {topic} vanished while it was created"
            )));
        };
        let want = if tuple { "TUPLE" } else { "BLOB" };
        if !t.record_type.eq_ignore_ascii_case(want) {
            return Err(SinkError::Config(format!(
                "datahub topic {topic} (table {table}) is a {} topic; this destination writes {want} records (destination.record_type)",
                t.record_type
            )));
        }
        let fields = match expected {
            Some(expected) => {
                let have = client::schema_of(&t).unwrap_or_default().fields;
                for f in &expected {
                    match have.iter().find(|h| h.name.eq_ignore_ascii_case(&f.name)) {
                        Some(h) if h.ty.eq_ignore_ascii_case(&f.ty) => {}
                        Some(h) => {
                            return Err(SinkError::Config(format!(
                                "datahub topic {topic}: field {} is {}, but Sluice writes column {} of table {table} as {} (docs/DATAHUB.md, type map); change the topic or exclude the column",
                                h.name, h.ty, f.name, f.ty
                            )))
                        }
                        None if self.cfg.append_fields => {
                            self.client
                                .append_field(&p, topic, &f.name, &f.ty)
                                .map_err(|e| call_error(e, &format!("appending field {} to topic {topic}", f.name)))?;
                        }
                        None => {
                            return Err(SinkError::Config(format!(
                                "datahub topic {topic} has no field {} ({}) for table {table} (a column added at the source?); a DataHub topic only gains fields at its end: set destination.schema_evolution: append, or exclude the column",
                                f.name, f.ty
                            )))
                        }
                    }
                }
                client::schema_of(
                    &self
                        .client
                        .topic(&p, topic)
                        .map_err(|e| call_error(e, &format!("topic {topic}")))?
                        .unwrap_or(t),
                )
                .unwrap_or_default()
                .fields
            }
            None => Vec::new(),
        };
        let shards = self.active_shards(topic)?;
        self.topics
            .insert(topic.to_string(), TopicState { fields, shards });
        Ok(())
    }

    fn active_shards(&self, topic: &str) -> Result<Vec<(String, u128, u128)>, SinkError> {
        let list = self
            .client
            .shards(&self.cfg.project, topic)
            .map_err(|e| call_error(e, &format!("the shards of topic {topic}")))?;
        let mut out: Vec<(String, u128, u128)> = list
            .into_iter()
            .filter(|s| s.state == "ACTIVE")
            .filter_map(|s| {
                Some((
                    s.shard_id,
                    api::parse_hash_key(&s.begin_hash_key)?,
                    api::parse_hash_key(&s.end_hash_key)?,
                ))
            })
            .collect();
        out.sort_by_key(|s| s.1);
        if out.is_empty() {
            return Err(SinkError::Unavailable(format!(
                "datahub topic {topic} has no active shard yet"
            )));
        }
        Ok(out)
    }

    /// The TUPLE fields Sluice writes for a table given by its definition.
    fn fields_of_def(&self, t: &TableSpec) -> Result<Vec<Field>, SinkError> {
        let mut fields = self.meta_fields();
        let Some(def) = &t.def else {
            return Err(SinkError::Config(format!(
                "no definition of {} for its TUPLE topic",
                t.dest
            )));
        };
        for c in &def.columns {
            if fields.iter().any(|f| f.name.eq_ignore_ascii_case(&c.name)) {
                return Err(SinkError::Config(format!(
                    "column {} of table {} has the name of a metadata column; rename it with destination.meta_columns",
                    c.name, t.dest
                )));
            }
            fields.push(Field {
                name: c.name.clone(),
                ty: types::of_sql(&c.column_type, c.json).into(),
                comment: String::new(),
                notnull: false,
            });
        }
        Ok(fields)
    }

    /// The TUPLE fields for a table given by a row's schema (a table created after the start).
    fn fields_of_schema(&self, s: &TableSchema) -> Vec<Field> {
        let mut fields = self.meta_fields();
        for c in &s.columns {
            fields.push(Field {
                name: c.name.clone(),
                ty: types::of(c).into(),
                comment: String::new(),
                notnull: false,
            });
        }
        fields
    }

    /// Where each field of `topic` comes from for rows of `schema`; a column the topic lacks
    /// is appended (schema_evolution: append) or stops the project.
    fn layout(
        &mut self,
        schema: &Arc<TableSchema>,
        topic: &str,
    ) -> Result<Arc<Vec<Source>>, SinkError> {
        let key = (Arc::as_ptr(schema) as usize, topic.to_string());
        if let Some((_, l)) = self.layouts.get(&key) {
            return Ok(l.clone());
        }
        let fields = self
            .topics
            .get(topic)
            .map(|t| t.fields.clone())
            .unwrap_or_default();
        for c in &schema.columns {
            let ty = types::of(c);
            match fields.iter().find(|f| f.name.eq_ignore_ascii_case(&c.name)) {
                Some(f) if f.ty.eq_ignore_ascii_case(ty) => {}
                Some(f) => {
                    return Err(SinkError::Rejected(format!(
                        "column {} of table {} is now {} (DataHub {ty}), but field {} of topic {topic} is {}; DataHub cannot change a field's type: create a new topic (topics) or exclude the column",
                        c.name, schema.id, c.sql_type, f.name, f.ty
                    )))
                }
                None if self.cfg.append_fields => {
                    self.client
                        .append_field(&self.cfg.project, topic, &c.name, ty)
                        .map_err(|e| call_error(e, &format!("appending field {} to topic {topic}", c.name)))?;
                    tracing::info!("datahub: appended field {} ({ty}) to topic {topic} for {}", c.name, schema.id);
                    if let Some(t) = self.topics.get_mut(topic) {
                        t.fields.push(Field { name: c.name.clone(), ty: ty.into(), comment: String::new(), notnull: false });
                    }
                }
                None => {
                    return Err(SinkError::Rejected(format!(
                        "table {} has column {} that topic {topic} lacks (added at the source?); a DataHub topic can only gain fields at its end: set destination.schema_evolution: append, or exclude the column",
                        schema.id, c.name
                    )))
                }
            }
        }
        let fields = self
            .topics
            .get(topic)
            .map(|t| t.fields.clone())
            .unwrap_or_default();
        let m = &self.cfg.meta;
        let sources: Vec<Source> = fields
            .iter()
            .map(|f| {
                let is = |n: &str| !n.is_empty() && f.name.eq_ignore_ascii_case(n);
                if is(&m.op) {
                    Source::Op
                } else if is(&m.commit_time) {
                    Source::CommitTime
                } else if is(&m.sequence) {
                    Source::Sequence
                } else if is(&m.image) {
                    Source::Image
                } else if is(&m.shard) && self.cfg.shard.is_some() {
                    Source::Shard
                } else {
                    schema
                        .columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(&f.name))
                        .map_or(Source::Missing, Source::Column)
                }
            })
            .collect();
        let sources = Arc::new(sources);
        self.layouts.insert(key, (schema.clone(), sources.clone()));
        Ok(sources)
    }

    /// For a part of a sharded project: rows of physical tables as rows of their logical table.
    fn renamed_items(&mut self, items: &[DeliveryItem]) -> Option<Vec<DeliveryItem>> {
        if self.cfg.merge.is_empty() {
            return None;
        }
        let mut out = items.to_vec();
        for it in &mut out {
            if let Event::Row(r) = &mut it.event {
                let ptr = Arc::as_ptr(&r.table) as usize;
                let renamed = match self.renamed.get(&ptr) {
                    Some((_, n)) => n.clone(),
                    None => {
                        let mut s = (*r.table).clone();
                        if let Some(l) = self.cfg.merge.get(&s.id) {
                            s.id = l.clone();
                        }
                        let n = Arc::new(s);
                        self.renamed.insert(ptr, (r.table.clone(), n.clone()));
                        n
                    }
                };
                r.table = renamed;
            }
        }
        Some(out)
    }

    fn shard_of(&self, topic: &str, hash: u128) -> Result<String, SinkError> {
        self.topics
            .get(topic)
            .and_then(|t| {
                t.shards
                    .iter()
                    .find(|(_, b, e)| *b <= hash && hash < *e)
                    .or_else(|| t.shards.last().filter(|(_, _, e)| *e == u128::MAX))
            })
            .map(|(id, ..)| id.clone())
            .ok_or_else(|| {
                SinkError::Unavailable(format!(
                    "datahub topic {topic}: no active shard holds hash key {hash:032X}"
                ))
            })
    }

    /// The TUPLE records of a batch.
    fn tuple_records(&mut self, items: &[DeliveryItem]) -> Result<Vec<(String, Out)>, SinkError> {
        let mut out = Vec::with_capacity(items.len() * 2);
        // The topic and layout of the last row's schema: consecutive rows mostly share one
        // schema `Arc`, and naming the topic per row costs more than the rest.
        let mut last: Option<(Arc<TableSchema>, String, Arc<Vec<Source>>)> = None;
        for (index, item) in items.iter().enumerate() {
            let Event::Row(r) = &item.event else { continue };
            let (topic, layout) = match &last {
                Some((s, t, l)) if Arc::ptr_eq(s, &r.table) => (t.clone(), l.clone()),
                _ => {
                    let topic = checked_topic(&self.cfg.routing.topics, &r.table.id)
                        .map_err(SinkError::Config)?;
                    if !self.topics.contains_key(&topic) {
                        let fields = self.fields_of_schema(&r.table);
                        self.ensure(&topic, &r.table.id, Some(fields))?;
                    }
                    let layout = self.layout(&r.table, &topic)?;
                    last = Some((r.table.clone(), topic.clone(), layout.clone()));
                    (topic, layout)
                }
            };
            let key = sluice_mq::key_of(&item.event);
            let part = self.cfg.routing.partition(&item.event, &key, i32::MAX)?;
            let shard = self.shard_of(&topic, (part as u128) << 97)?;
            let op = if item.snapshot {
                "snapshot"
            } else {
                r.op.as_str()
            };
            let mut images: Vec<(&[sluice_core::Value], &str)> = Vec::with_capacity(2);
            match (r.op, r.before.as_deref(), r.after.as_deref()) {
                (Op::Update, Some(b), Some(a)) => {
                    if self.cfg.before_image {
                        images.push((b, "B"));
                    }
                    images.push((a, "A"));
                }
                (_, _, Some(a)) => images.push((a, "A")),
                (_, Some(b), None) => images.push((b, "B")),
                (_, None, None) => continue,
            }
            for (image, flag) in images {
                let mut entry = self.tuple_entry(r, item, &layout, image, op, flag, &topic)?;
                // Each record names its shard (puts go to /shards).
                entry.shard_id = Some(shard.clone());
                let bytes = writer::entry_bytes(&entry);
                if bytes > MAX_RECORD_BYTES {
                    return Err(too_large(item, &key, bytes));
                }
                out.push((
                    format!("{topic}\u{0}{shard}"),
                    Out {
                        index,
                        key: key.clone(),
                        entry,
                        bytes,
                    },
                ));
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn tuple_entry(
        &self,
        r: &RowChange,
        item: &DeliveryItem,
        layout: &[Source],
        image: &[sluice_core::Value],
        op: &str,
        flag: &str,
        topic: &str,
    ) -> Result<pb::RecordEntry, SinkError> {
        let fields = self
            .topics
            .get(topic)
            .map(|t| t.fields.as_slice())
            .unwrap_or(&[]);
        let mut data = Vec::with_capacity(layout.len());
        for (i, s) in layout.iter().enumerate() {
            let v: Option<String> = match s {
                Source::Op => Some(op.to_string()),
                Source::CommitTime => (!item.snapshot).then(|| (r.ts_ms as i64 * 1000).to_string()),
                Source::Sequence => item.sequence.map(|s| s.to_string()),
                Source::Image => Some(flag.to_string()),
                Source::Shard => self.cfg.shard.clone(),
                Source::Missing => None,
                Source::Column(c) => {
                    let ty = fields.get(i).map_or("string", |f| f.ty.as_str());
                    match image.get(*c) {
                        // A before image (B: a delete, an update's old row) may hold only the
                        // key (a PostgreSQL table with REPLICA IDENTITY DEFAULT): the columns
                        // the source did not give are null there (docs/DATAHUB.md). An after
                        // image is always whole.
                        Some(sluice_core::Value::Unavailable) if flag == "B" => None,
                        Some(v) => types::text(v, ty).map_err(|why| {
                            SinkError::Rejected(format!(
                                "{} at {}: {why}; a TUPLE record is a whole row",
                                r.table.id, r.pos
                            ))
                        })?,
                        None => None,
                    }
                }
            };
            data.push(pb::FieldData {
                value: v.map(String::into_bytes),
            });
        }
        Ok(pb::RecordEntry {
            data: pb::RecordData { data },
            ..Default::default()
        })
    }

    /// The BLOB records of a batch.
    fn blob_records(&mut self, items: &[DeliveryItem]) -> Result<Vec<(String, Out)>, SinkError> {
        let Some(shaper) = self.shaper.take() else {
            return Err(SinkError::Config(
                "a BLOB destination needs a format".into(),
            ));
        };
        let result = (|| {
            let mut needed: Vec<(String, TableId)> = Vec::new();
            let msgs = shaper.shape(items, &mut |topic| {
                if !self.topics.contains_key(topic) && !needed.iter().any(|(t, _)| t == topic) {
                    needed.push((topic.to_string(), TableId::new("", topic)));
                }
                Ok(i32::MAX)
            })?;
            for (topic, table) in needed {
                if let Some(p) = topic_problem(&topic) {
                    return Err(SinkError::Config(format!("datahub topic: {p}")));
                }
                self.ensure(&topic, &table, None)?;
            }
            let mut out = Vec::with_capacity(msgs.len());
            for m in msgs {
                let item = &items[m.index];
                let shard = self.shard_of(&m.topic, (m.partition as u128) << 97)?;
                let mut attrs: Vec<pb::StringPair> = sluice_mq::headers(item)
                    .into_iter()
                    .map(|(k, v)| pb::StringPair {
                        key: k.to_string(),
                        value: v.into_owned(),
                    })
                    .collect();
                attrs.push(pb::StringPair {
                    key: "sluice.key".into(),
                    value: sluice_mq::key_text(&m.key),
                });
                let entry = pb::RecordEntry {
                    shard_id: Some(shard.clone()),
                    attributes: Some(pb::RecordAttributes { attributes: attrs }),
                    data: pb::RecordData {
                        data: vec![pb::FieldData {
                            value: Some(m.payload),
                        }],
                    },
                    ..Default::default()
                };
                let bytes = writer::entry_bytes(&entry);
                if bytes > MAX_RECORD_BYTES {
                    return Err(too_large(item, &m.key, bytes));
                }
                out.push((
                    format!("{}\u{0}{shard}", m.topic),
                    Out {
                        index: m.index,
                        key: m.key,
                        entry,
                        bytes,
                    },
                ));
            }
            Ok(out)
        })();
        self.shaper = Some(shaper);
        result
    }
}

fn too_large(item: &DeliveryItem, key: &[u8], bytes: usize) -> SinkError {
    let (t, p) = sluice_mq::describe(&item.event);
    SinkError::Rejected(format!(
        "the DataHub record of {t} (key {}) at {p} is {bytes} bytes; DataHub takes {MAX_RECORD_BYTES} per record; exclude the table or its large columns",
        sluice_mq::key_text(key)
    ))
}

impl Sink for DatahubSink {
    fn prepare(&mut self, tables: &[TableSpec]) -> Result<(), SinkError> {
        self.check_project()?;
        for t in tables {
            let topic =
                checked_topic(&self.cfg.routing.topics, &t.dest).map_err(SinkError::Config)?;
            let expected = match (self.cfg.record_type, &t.def) {
                (RecordType::Tuple, Some(_)) => Some(self.fields_of_def(t)?),
                // Not there yet at a start in the past: its topic is made from its first
                // rows' schema (created by the DDL that the stream replays).
                (RecordType::Tuple, None) => continue,
                (RecordType::Blob, _) => None,
            };
            self.ensure(&topic, &t.dest, expected)?;
        }
        if let (RecordType::Blob, Some(h)) = (
            self.cfg.record_type,
            self.cfg.routing.heartbeat_topic.clone(),
        ) {
            self.ensure(&h, &TableId::new("", &h), None)?;
        }
        Ok(())
    }

    fn send(&mut self, items: &[DeliveryItem]) -> Result<u64, SinkError> {
        if self.tracker.idle() && self.halted.swap(false, Ordering::SeqCst) {
            // Shards may have been split or merged: read them again.
            let topics: Vec<String> = self.topics.keys().cloned().collect();
            for t in topics {
                let shards = self.active_shards(&t)?;
                if let Some(s) = self.topics.get_mut(&t) {
                    s.shards = shards;
                }
            }
        }
        let renamed = self.renamed_items(items);
        let items = renamed.as_deref().unwrap_or(items);
        let records = match self.cfg.record_type {
            RecordType::Tuple => self.tuple_records(items)?,
            RecordType::Blob => self.blob_records(items)?,
        };
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let tuple = self.cfg.record_type == RecordType::Tuple;
        let mut jobs: Vec<Job> = Vec::new();
        let mut bytes = 0u64;
        for (lane, out) in records {
            bytes += (out.bytes + out.key.len()) as u64;
            let (topic, shard) = lane.split_once('\u{0}').unwrap_or((&lane, ""));
            match jobs
                .iter_mut()
                .find(|j| j.topic == topic && j.shard == shard)
            {
                Some(j) => j.records.push(out),
                None => jobs.push(Job {
                    ticket,
                    topic: topic.to_string(),
                    shard: shard.to_string(),
                    tuple,
                    records: vec![out],
                }),
            }
        }
        self.tracker.open(ticket, jobs.len(), bytes);
        for job in jobs {
            // A shard's puts always go through the same writer, so they leave in order.
            let w = writer::lane_hash(&job.topic, &job.shard) % self.workers.len().max(1);
            if let Err(mpsc::SendError(job)) = self.workers[w].send(job) {
                self.tracker.report(
                    job.ticket,
                    Err((0, Failure::Transient("datahub writer stopped".into()))),
                );
            }
        }
        Ok(ticket)
    }

    fn wait(&mut self, ticket: u64, items: &[DeliveryItem]) -> Result<(), SinkError> {
        let bytes = self
            .tracker
            .wait(ticket)?
            .map_err(|failed| batch_error("datahub", "store", items, failed))?;
        self.acked_bytes += bytes;
        Ok(())
    }

    fn acknowledged_bytes(&self) -> u64 {
        self.acked_bytes
    }
}
