//! Subjects, versions, ids and compatibility levels, kept in one JSON file.
//!
//! Invariants: an id names one schema for ever (ids count up from 1 and are never reused); a
//! subject's versions count up from 1; the same schema (same JSON, key order aside) has one id
//! whatever the subject; the file is written whole to a temporary name and renamed, so a crash
//! leaves the old state or the new one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

const LEVELS: &[&str] = &[
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
];

/// A refused request: HTTP status, Confluent error code, message.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub code: i64,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Data {
    /// Schema text by id - 1.
    schemas: Vec<String>,
    /// Each subject's versions: the ids, version n at n - 1.
    subjects: BTreeMap<String, Vec<u32>>,
    global: Option<String>,
    levels: BTreeMap<String, String>,
}

pub struct Store {
    path: PathBuf,
    data: Data,
}

/// The schema's JSON with keys sorted: what identity is decided on.
fn normalized(text: &str) -> Result<String, Refusal> {
    let v: Json = serde_json::from_str(text)
        .map_err(|e| Refusal::new(422, 42201, format!("Invalid schema: not JSON: {e}")))?;
    Ok(v.to_string())
}

fn parse(text: &str) -> Result<Schema, Refusal> {
    Schema::parse_str(text).map_err(|e| Refusal::new(422, 42201, format!("Invalid schema: {e}")))
}

/// Removes logical-type annotations (`logicalType`, `precision`, `scale`) everywhere.
fn strip_logical(v: &mut Json) {
    match v {
        Json::Object(m) => {
            if m.remove("logicalType").is_some() {
                m.remove("precision");
                m.remove("scale");
            }
            m.values_mut().for_each(strip_logical);
        }
        Json::Array(a) => a.iter_mut().for_each(strip_logical),
        _ => {}
    }
}

/// The schema compatibility is decided on: without logical-type annotations, since Avro's
/// resolution rules match writer and reader by their underlying types (and apache-avro 0.21's
/// checker refuses a union holding a decimal even against itself).
fn for_compatibility(text: &str) -> Result<Schema, Refusal> {
    let mut v: Json = serde_json::from_str(text)
        .map_err(|e| Refusal::new(422, 42201, format!("Invalid schema: not JSON: {e}")))?;
    strip_logical(&mut v);
    parse(&v.to_string())
}

fn subject_missing(subject: &str) -> Refusal {
    Refusal::new(404, 40401, format!("Subject '{subject}' not found."))
}

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let data = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            path: path.to_path_buf(),
            data,
        })
    }

    fn save(&self) -> Result<(), Refusal> {
        let tmp = self.path.with_extension("tmp");
        let bytes =
            serde_json::to_vec(&self.data).map_err(|e| Refusal::new(500, 50001, e.to_string()))?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| Refusal::new(500, 50001, format!("{}: {e}", self.path.display())))
    }

    pub fn subjects(&self) -> Vec<&String> {
        self.data.subjects.keys().collect()
    }

    pub fn level(&self, subject: Option<&str>) -> String {
        subject
            .and_then(|s| self.data.levels.get(s).cloned())
            .or_else(|| self.data.global.clone())
            .unwrap_or_else(|| "BACKWARD".into())
    }

    pub fn subject_level(&self, subject: &str) -> Option<String> {
        self.data.levels.get(subject).cloned()
    }

    pub fn set_level(&mut self, subject: Option<&str>, level: &str) -> Result<(), Refusal> {
        if !LEVELS.contains(&level) {
            return Err(Refusal::new(
                422,
                42203,
                format!(
                    "Invalid compatibility level {level}; use one of {}",
                    LEVELS.join(", ")
                ),
            ));
        }
        match subject {
            Some(s) => {
                self.data.levels.insert(s.to_string(), level.to_string());
            }
            None => self.data.global = Some(level.to_string()),
        }
        self.save()
    }

    fn text(&self, id: u32) -> Option<&String> {
        self.data.schemas.get((id as usize).checked_sub(1)?)
    }

    pub fn schema(&self, id: u32) -> Result<String, Refusal> {
        self.text(id)
            .cloned()
            .ok_or_else(|| Refusal::new(404, 40403, format!("Schema {id} not found")))
    }

    pub fn uses(&self, id: u32) -> Result<Vec<Json>, Refusal> {
        self.schema(id)?;
        Ok(self
            .data
            .subjects
            .iter()
            .flat_map(|(s, ids)| {
                ids.iter()
                    .enumerate()
                    .filter(move |(_, i)| **i == id)
                    .map(move |(v, _)| json!({"subject": s, "version": v + 1}))
            })
            .collect())
    }

    pub fn versions(&self, subject: &str) -> Result<Vec<usize>, Refusal> {
        let ids = self
            .data
            .subjects
            .get(subject)
            .ok_or_else(|| subject_missing(subject))?;
        Ok((1..=ids.len()).collect())
    }

    fn version_index(&self, subject: &str, version: &str) -> Result<usize, Refusal> {
        let ids = self
            .data
            .subjects
            .get(subject)
            .ok_or_else(|| subject_missing(subject))?;
        let n = match version {
            "latest" | "-1" => ids.len(),
            v => v
                .parse::<usize>()
                .map_err(|_| Refusal::new(422, 42202, format!("Invalid version {v}")))?,
        };
        if n == 0 || n > ids.len() {
            return Err(Refusal::new(
                404,
                40402,
                format!("Version {version} not found."),
            ));
        }
        Ok(n - 1)
    }

    fn described(&self, subject: &str, index: usize) -> Json {
        let id = self
            .data
            .subjects
            .get(subject)
            .and_then(|v| v.get(index))
            .copied()
            .unwrap_or(0);
        json!({
            "subject": subject,
            "version": index + 1,
            "id": id,
            "schema": self.text(id).cloned().unwrap_or_default(),
        })
    }

    pub fn version(&self, subject: &str, version: &str) -> Result<Json, Refusal> {
        let i = self.version_index(subject, version)?;
        Ok(self.described(subject, i))
    }

    pub fn lookup(&self, subject: &str, schema: &str) -> Result<Json, Refusal> {
        let want = normalized(schema)?;
        let ids = self
            .data
            .subjects
            .get(subject)
            .ok_or_else(|| subject_missing(subject))?;
        ids.iter()
            .position(|id| self.text(*id) == Some(&want))
            .map(|i| self.described(subject, i))
            .ok_or_else(|| Refusal::new(404, 40403, "Schema not found"))
    }

    pub fn delete_subject(&mut self, subject: &str) -> Result<Vec<usize>, Refusal> {
        let ids = self
            .data
            .subjects
            .remove(subject)
            .ok_or_else(|| subject_missing(subject))?;
        self.data.levels.remove(subject);
        self.save()?;
        Ok((1..=ids.len()).collect())
    }

    /// Why `schema` breaks `subject`'s level against its versions up to `version` (empty when
    /// it does not).
    pub fn check(
        &self,
        subject: &str,
        version: &str,
        schema: &str,
    ) -> Result<Vec<String>, Refusal> {
        parse(schema)?;
        let new = for_compatibility(schema)?;
        let upto = match self.data.subjects.get(subject) {
            None => return Ok(Vec::new()),
            Some(_) => self.version_index(subject, version)?,
        };
        self.breaks(subject, &new, upto)
    }

    fn breaks(&self, subject: &str, new: &Schema, upto: usize) -> Result<Vec<String>, Refusal> {
        let level = self.level(Some(subject));
        let ids = self.data.subjects.get(subject).cloned().unwrap_or_default();
        let against: Vec<u32> = match level.as_str() {
            "NONE" => return Ok(Vec::new()),
            l if l.ends_with("_TRANSITIVE") => ids.iter().take(upto + 1).copied().collect(),
            _ => ids.get(upto).copied().into_iter().collect(),
        };
        let mut why = Vec::new();
        for id in against {
            let old = for_compatibility(self.text(id).map_or("null", String::as_str))?;
            let backward = level.starts_with("BACKWARD") || level.starts_with("FULL");
            let forward = level.starts_with("FORWARD") || level.starts_with("FULL");
            if backward {
                if let Err(e) = SchemaCompatibility::can_read(&old, new) {
                    why.push(format!(
                        "{level}: the new schema cannot read data written with schema id {id}: {e}"
                    ));
                }
            }
            if forward {
                if let Err(e) = SchemaCompatibility::can_read(new, &old) {
                    why.push(format!(
                        "{level}: schema id {id} cannot read data written with the new schema: {e}"
                    ));
                }
            }
        }
        Ok(why)
    }

    /// Registers `schema` under `subject`: its id (the existing one when the subject already
    /// has it, or any subject registered the same schema).
    pub fn register(&mut self, subject: &str, schema: &str) -> Result<u32, Refusal> {
        parse(schema)?;
        let parsed = for_compatibility(schema)?;
        let text = normalized(schema)?;
        let existing = self
            .data
            .schemas
            .iter()
            .position(|s| *s == text)
            .map(|i| i as u32 + 1);
        if let (Some(id), Some(ids)) = (existing, self.data.subjects.get(subject)) {
            if ids.contains(&id) {
                return Ok(id);
            }
        }
        if let Some(ids) = self.data.subjects.get(subject) {
            if !ids.is_empty() {
                let why = self.breaks(subject, &parsed, ids.len() - 1)?;
                if !why.is_empty() {
                    // The log keeps what was refused, for whoever reads why.
                    eprintln!("refused for {subject}: {text}");
                    return Err(Refusal::new(
                        409,
                        409,
                        format!(
                            "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                            why.join("; ")
                        ),
                    ));
                }
            }
        }
        let id = match existing {
            Some(id) => id,
            None => {
                self.data.schemas.push(text);
                self.data.schemas.len() as u32
            }
        };
        self.data
            .subjects
            .entry(subject.to_string())
            .or_default()
            .push(id);
        self.save()?;
        Ok(id)
    }
}
