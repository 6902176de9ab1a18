//! What the server keeps, in memory and on disk under its data directory:
//!
//! - `meta.json`: projects, topics (type, schema, lifecycle) and shards (hash-key ranges,
//!   states, parents), rewritten whole (temporary file, fsync, rename) on every change;
//! - `records/<project>/<topic>/<shard>.log`: each shard's records, appended as
//!   `u32 BE length | protobuf RecordEntry` with sequence and system time set, and synced
//!   before a put is answered. A torn tail (a crash mid-append) is cut off at start.
//!
//! So an answered put survives a restart, and a restart keeps every project, topic and shard.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use serde::{Deserialize, Serialize};
use sluice_datahub_protocol::api::{self, RecordSchema};
use sluice_datahub_protocol::pb;

/// A refused call: HTTP status, error code, message.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

pub fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardMeta {
    pub id: u32,
    pub active: bool,
    pub closed_time: i64,
    pub begin: u128,
    pub end: u128,
    pub parents: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicMeta {
    pub record_type: String,
    pub schema: Option<RecordSchema>,
    pub shard_count: i64,
    pub lifecycle: i64,
    pub comment: String,
    pub create_time: i64,
    pub modify_time: i64,
    pub shards: Vec<ShardMeta>,
}

impl TopicMeta {
    pub fn is_tuple(&self) -> bool {
        self.record_type == "TUPLE"
    }

    pub fn shard(&self, id: &str) -> Result<&ShardMeta, Refusal> {
        id.parse::<u32>()
            .ok()
            .and_then(|n| self.shards.iter().find(|s| s.id == n))
            .ok_or_else(|| refuse(404, "NoSuchShard", format!("ShardId {id} does not exist")))
    }

    /// The active shard whose range holds `key`.
    pub fn shard_for(&self, key: u128) -> Option<u32> {
        self.shards
            .iter()
            .find(|s| s.active && s.begin <= key && (key < s.end || s.end == u128::MAX))
            .map(|s| s.id)
    }

    pub fn shard_json(&self, s: &ShardMeta) -> api::Shard {
        let neighbour = |at: u128, left: bool| {
            self.shards
                .iter()
                .find(|o| o.active == s.active && if left { o.end == at } else { o.begin == at })
                .map(|o| o.id.to_string())
                .unwrap_or_default()
        };
        api::Shard {
            shard_id: s.id.to_string(),
            state: if s.active { "ACTIVE" } else { "CLOSED" }.into(),
            closed_time: if s.active {
                String::new()
            } else {
                s.closed_time.to_string()
            },
            begin_hash_key: api::hash_key_text(s.begin),
            end_hash_key: api::hash_key_text(s.end),
            parent_shard_ids: s.parents.iter().map(|p| p.to_string()).collect(),
            left_shard_id: neighbour(s.begin, true),
            right_shard_id: neighbour(s.end, false),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectMeta {
    pub comment: String,
    pub create_time: i64,
    pub modify_time: i64,
    pub topics: BTreeMap<String, TopicMeta>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Meta {
    projects: BTreeMap<String, ProjectMeta>,
}

/// One stored record.
#[derive(Debug, Clone)]
pub struct Stored {
    pub system_time: i64,
    pub attributes: Vec<(String, String)>,
    /// TUPLE: each field's text, None for NULL; BLOB: one field with the bytes.
    pub data: Vec<Option<Vec<u8>>>,
}

type ShardKey = (String, String, u32);

pub struct Store {
    dir: PathBuf,
    meta: Meta,
    records: HashMap<ShardKey, Vec<Stored>>,
    files: HashMap<ShardKey, File>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    refuse(500, "InternalServerError", e.to_string())
}

impl Store {
    /// Opens (or creates) the store in `dir`, reading back every shard's records.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("records"))?;
        let meta: Meta = match std::fs::read(dir.join("meta.json")) {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Meta::default(),
            Err(e) => return Err(e.into()),
        };
        let mut store = Store {
            dir: dir.to_path_buf(),
            meta,
            records: HashMap::new(),
            files: HashMap::new(),
        };
        let shards: Vec<ShardKey> = store
            .meta
            .projects
            .iter()
            .flat_map(|(p, pm)| {
                pm.topics.iter().flat_map(move |(t, tm)| {
                    tm.shards.iter().map(move |s| (p.clone(), t.clone(), s.id))
                })
            })
            .collect();
        for key in shards {
            let path = store.log_path(&key);
            let recs = read_log(&path)?;
            store.records.insert(key, recs);
        }
        Ok(store)
    }

    fn log_path(&self, (p, t, s): &ShardKey) -> PathBuf {
        self.dir
            .join("records")
            .join(p)
            .join(t)
            .join(format!("{s}.log"))
    }

    fn save_meta(&self) -> Result<(), Refusal> {
        let tmp = self.dir.join("meta.json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.meta).map_err(internal)?;
        let mut f = File::create(&tmp).map_err(internal)?;
        f.write_all(&bytes).map_err(internal)?;
        f.sync_all().map_err(internal)?;
        std::fs::rename(&tmp, self.dir.join("meta.json")).map_err(internal)?;
        Ok(())
    }

    pub fn project_names(&self) -> Vec<String> {
        self.meta.projects.keys().cloned().collect()
    }

    pub fn project(&self, p: &str) -> Result<&ProjectMeta, Refusal> {
        self.meta.projects.get(p).ok_or_else(|| {
            refuse(
                404,
                "NoSuchProject",
                format!("The specified project {p} does not exist."),
            )
        })
    }

    pub fn create_project(&mut self, p: &str, comment: String) -> Result<(), Refusal> {
        if !valid_name(p, 3, 32) {
            return Err(refuse(
                400,
                "InvalidParameter",
                format!("project name {p:?}: starts with a letter, holds [a-zA-Z0-9_], 3 to 32 characters"),
            ));
        }
        if self.meta.projects.contains_key(p) {
            return Err(refuse(
                409,
                "ProjectAlreadyExist",
                format!("The project {p} already exists."),
            ));
        }
        let now = now_ms() / 1000;
        self.meta.projects.insert(
            p.to_string(),
            ProjectMeta {
                comment,
                create_time: now,
                modify_time: now,
                topics: BTreeMap::new(),
            },
        );
        self.save_meta()
    }

    pub fn delete_project(&mut self, p: &str) -> Result<(), Refusal> {
        if !self.project(p)?.topics.is_empty() {
            return Err(refuse(
                400,
                "InvalidOperation",
                format!("project {p} still has topics"),
            ));
        }
        self.meta.projects.remove(p);
        self.save_meta()
    }

    pub fn topic(&self, p: &str, t: &str) -> Result<&TopicMeta, Refusal> {
        self.project(p)?.topics.get(t).ok_or_else(|| {
            refuse(
                404,
                "NoSuchTopic",
                format!("The specified topic {t} does not exist."),
            )
        })
    }

    fn topic_mut(&mut self, p: &str, t: &str) -> Result<&mut TopicMeta, Refusal> {
        self.topic(p, t)?;
        self.meta
            .projects
            .get_mut(p)
            .and_then(|pm| pm.topics.get_mut(t))
            .ok_or_else(|| refuse(404, "NoSuchTopic", t.to_string()))
    }

    pub fn create_topic(&mut self, p: &str, t: &str, req: api::CreateTopic) -> Result<(), Refusal> {
        self.project(p)?;
        if !valid_name(t, 1, 128) {
            return Err(refuse(
                400,
                "InvalidParameter",
                format!("topic name {t:?}: starts with a letter, holds [a-zA-Z0-9_], 1 to 128 characters"),
            ));
        }
        if self.project(p)?.topics.contains_key(t) {
            return Err(refuse(
                409,
                "TopicAlreadyExist",
                format!("The topic {t} already exists."),
            ));
        }
        if !(1..=256).contains(&req.shard_count) {
            return Err(refuse(
                400,
                "InvalidParameter",
                "ShardCount must be 1 to 256",
            ));
        }
        if !(1..=7).contains(&req.lifecycle) {
            return Err(refuse(
                400,
                "InvalidParameter",
                "Lifecycle must be 1 to 7 days",
            ));
        }
        let schema = match req.record_type.as_str() {
            "TUPLE" => {
                let text = req.record_schema.as_deref().ok_or_else(|| {
                    refuse(400, "InvalidSchema", "a TUPLE topic needs RecordSchema")
                })?;
                let mut s: RecordSchema = serde_json::from_str(text)
                    .map_err(|e| refuse(400, "InvalidSchema", format!("RecordSchema: {e}")))?;
                check_schema(&mut s)?;
                Some(s)
            }
            "BLOB" => None,
            other => {
                return Err(refuse(
                    400,
                    "InvalidParameter",
                    format!("RecordType {other:?}: TUPLE or BLOB"),
                ))
            }
        };
        let n = req.shard_count as u128;
        let step = u128::MAX / n;
        let shards = (0..req.shard_count as u32)
            .map(|i| ShardMeta {
                id: i,
                active: true,
                closed_time: 0,
                begin: step * i as u128,
                end: if i as u128 == n - 1 {
                    u128::MAX
                } else {
                    step * (i as u128 + 1)
                },
                parents: Vec::new(),
            })
            .collect::<Vec<_>>();
        let now = now_ms() / 1000;
        for s in &shards {
            self.records.insert((p.into(), t.into(), s.id), Vec::new());
        }
        if let Some(pm) = self.meta.projects.get_mut(p) {
            pm.topics.insert(
                t.to_string(),
                TopicMeta {
                    record_type: req.record_type,
                    schema,
                    shard_count: req.shard_count,
                    lifecycle: req.lifecycle,
                    comment: req.comment,
                    create_time: now,
                    modify_time: now,
                    shards,
                },
            );
        }
        self.save_meta()
    }

    pub fn delete_topic(&mut self, p: &str, t: &str) -> Result<(), Refusal> {
        self.topic(p, t)?;
        if let Some(pm) = self.meta.projects.get_mut(p) {
            pm.topics.remove(t);
        }
        self.records.retain(|(rp, rt, _), _| !(rp == p && rt == t));
        self.files.retain(|(rp, rt, _), _| !(rp == p && rt == t));
        let _ = std::fs::remove_dir_all(self.dir.join("records").join(p).join(t));
        self.save_meta()
    }

    pub fn append_field(&mut self, p: &str, t: &str, name: &str, ty: &str) -> Result<(), Refusal> {
        let topic = self.topic_mut(p, t)?;
        let Some(schema) = topic.schema.as_mut() else {
            return Err(refuse(
                400,
                "InvalidOperation",
                "a BLOB topic has no fields",
            ));
        };
        if schema
            .fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(name))
        {
            return Err(refuse(
                400,
                "InvalidParameter",
                format!("field {name} already exists"),
            ));
        }
        schema.fields.push(api::Field {
            name: name.to_string(),
            ty: ty.to_ascii_lowercase(),
            comment: String::new(),
            notnull: false,
        });
        check_schema(schema)?;
        topic.modify_time = now_ms() / 1000;
        self.save_meta()
    }

    /// Splits active shard `id` at `key`: it closes, and two new shards take its halves.
    pub fn split(
        &mut self,
        p: &str,
        t: &str,
        id: &str,
        key: u128,
    ) -> Result<Vec<api::Shard>, Refusal> {
        let topic = self.topic_mut(p, t)?;
        let old = topic.shard(id)?.clone();
        if !old.active {
            return Err(refuse(
                400,
                "InvalidShardOperation",
                format!("shard {id} is closed"),
            ));
        }
        if key <= old.begin || key >= old.end {
            return Err(refuse(
                400,
                "InvalidParameter",
                "SplitKey must lie inside the shard's range",
            ));
        }
        let next = topic.shards.iter().map(|s| s.id).max().unwrap_or(0) + 1;
        let now = now_ms() / 1000;
        for s in topic.shards.iter_mut().filter(|s| s.id == old.id) {
            s.active = false;
            s.closed_time = now;
        }
        let halves = [
            ShardMeta {
                id: next,
                active: true,
                closed_time: 0,
                begin: old.begin,
                end: key,
                parents: vec![old.id],
            },
            ShardMeta {
                id: next + 1,
                active: true,
                closed_time: 0,
                begin: key,
                end: old.end,
                parents: vec![old.id],
            },
        ];
        topic.shards.extend(halves.iter().cloned());
        let out = halves.iter().map(|s| topic.shard_json(s)).collect();
        for s in &halves {
            self.records.insert((p.into(), t.into(), s.id), Vec::new());
        }
        self.files.remove(&(p.to_string(), t.to_string(), old.id));
        self.save_meta()?;
        Ok(out)
    }

    /// Merges active shard `id` with its right neighbour `adj`.
    pub fn merge(&mut self, p: &str, t: &str, id: &str, adj: &str) -> Result<api::Shard, Refusal> {
        let topic = self.topic_mut(p, t)?;
        let (a, b) = (topic.shard(id)?.clone(), topic.shard(adj)?.clone());
        if !a.active || !b.active {
            return Err(refuse(
                400,
                "InvalidShardOperation",
                "both shards must be active",
            ));
        }
        let (left, right) = if a.end == b.begin {
            (a, b)
        } else if b.end == a.begin {
            (b, a)
        } else {
            return Err(refuse(
                400,
                "InvalidParameter",
                format!("shards {id} and {adj} are not adjacent"),
            ));
        };
        let next = topic.shards.iter().map(|s| s.id).max().unwrap_or(0) + 1;
        let now = now_ms() / 1000;
        for s in topic
            .shards
            .iter_mut()
            .filter(|s| s.id == left.id || s.id == right.id)
        {
            s.active = false;
            s.closed_time = now;
        }
        let merged = ShardMeta {
            id: next,
            active: true,
            closed_time: 0,
            begin: left.begin,
            end: right.end,
            parents: vec![left.id, right.id],
        };
        topic.shards.push(merged.clone());
        let out = topic.shard_json(&merged);
        self.records.insert((p.into(), t.into(), next), Vec::new());
        self.save_meta()?;
        Ok(out)
    }

    pub fn records(&self, p: &str, t: &str, shard: u32) -> &[Stored] {
        self.records
            .get(&(p.to_string(), t.to_string(), shard))
            .map_or(&[], |v| v.as_slice())
    }

    /// Appends records to shards (all of one topic) and syncs each file before returning.
    pub fn append(&mut self, p: &str, t: &str, batch: Vec<(u32, Stored)>) -> Result<(), Refusal> {
        let mut touched: Vec<u32> = Vec::new();
        let mut bytes: HashMap<u32, Vec<u8>> = HashMap::new();
        let mut next: HashMap<u32, i64> = HashMap::new();
        for (shard, rec) in &batch {
            let key = (p.to_string(), t.to_string(), *shard);
            let seq = next
                .entry(*shard)
                .or_insert_with(|| self.records.get(&key).map_or(0, |v| v.len()) as i64);
            let entry = entry_of(rec, *seq);
            *seq += 1;
            let buf = bytes.entry(*shard).or_default();
            let enc = entry.encode_to_vec();
            buf.extend_from_slice(&(enc.len() as u32).to_be_bytes());
            buf.extend_from_slice(&enc);
            if !touched.contains(shard) {
                touched.push(*shard);
            }
        }
        for shard in &touched {
            let key = (p.to_string(), t.to_string(), *shard);
            if !self.files.contains_key(&key) {
                let path = self.log_path(&key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(internal)?;
                }
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(internal)?;
                self.files.insert(key.clone(), f);
            }
            if let (Some(f), Some(b)) = (self.files.get_mut(&key), bytes.get(shard)) {
                f.write_all(b).map_err(internal)?;
                f.sync_data().map_err(internal)?;
            }
        }
        for (shard, rec) in batch {
            self.records
                .entry((p.to_string(), t.to_string(), shard))
                .or_default()
                .push(rec);
        }
        Ok(())
    }
}

pub fn entry_of(rec: &Stored, seq: i64) -> pb::RecordEntry {
    pb::RecordEntry {
        sequence: Some(seq),
        system_time: Some(rec.system_time),
        attributes: (!rec.attributes.is_empty()).then(|| pb::RecordAttributes {
            attributes: rec
                .attributes
                .iter()
                .map(|(k, v)| pb::StringPair {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        }),
        data: pb::RecordData {
            data: rec
                .data
                .iter()
                .map(|v| pb::FieldData { value: v.clone() })
                .collect(),
        },
        ..Default::default()
    }
}

fn read_log(path: &Path) -> anyhow::Result<Vec<Stored>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    }
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 4 <= bytes.len() {
        let len =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            break;
        };
        let Ok(e) = pb::RecordEntry::decode(body) else {
            break;
        };
        out.push(Stored {
            system_time: e.system_time.unwrap_or(0),
            attributes: e
                .attributes
                .map(|a| a.attributes.into_iter().map(|p| (p.key, p.value)).collect())
                .unwrap_or_default(),
            data: e.data.data.into_iter().map(|f| f.value).collect(),
        });
        at += 4 + len;
    }
    if at < bytes.len() {
        // A torn append: the put was never answered, so cut it off.
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(at as u64)?;
        f.sync_all()?;
    }
    Ok(out)
}

/// DataHub names: a letter, then letters, digits and `_`.
pub fn valid_name(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_schema(s: &mut RecordSchema) -> Result<(), Refusal> {
    if s.fields.is_empty() {
        return Err(refuse(400, "InvalidSchema", "a record schema needs fields"));
    }
    let mut seen = std::collections::HashSet::new();
    for f in &mut s.fields {
        f.ty = f.ty.to_ascii_lowercase();
        if !api::FIELD_TYPES.contains(&f.ty.as_str()) {
            return Err(refuse(
                400,
                "InvalidSchema",
                format!("field {}: unknown type {}", f.name, f.ty),
            ));
        }
        if !seen.insert(f.name.to_ascii_lowercase()) {
            return Err(refuse(
                400,
                "InvalidSchema",
                format!("field {} appears twice", f.name),
            ));
        }
    }
    Ok(())
}

/// Why `text` is not a value of DataHub type `ty`, if it is not.
pub fn value_problem(ty: &str, text: &str) -> Option<String> {
    let ok = match ty {
        "tinyint" => text.parse::<i8>().is_ok(),
        "smallint" => text.parse::<i16>().is_ok(),
        "integer" => text.parse::<i32>().is_ok(),
        "bigint" | "timestamp" => text.parse::<i64>().is_ok(),
        "boolean" => matches!(text.to_ascii_lowercase().as_str(), "true" | "false"),
        "float" | "double" => text.parse::<f64>().is_ok(),
        "decimal" => {
            let t = text.strip_prefix('-').unwrap_or(text);
            let (i, f) = t.split_once('.').unwrap_or((t, ""));
            !(i.is_empty() && f.is_empty())
                && i.chars().all(|c| c.is_ascii_digit())
                && f.chars().all(|c| c.is_ascii_digit())
        }
        _ => true,
    };
    (!ok).then(|| format!("{text:?} is not a {ty}"))
}
