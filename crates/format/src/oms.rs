//! OMS Default JSON (and DefaultExtendColumnType): `prevStruct`, `postStruct`, `allMetaData`,
//! `recordType`. Values are strings in MySQL's text form, binary values base64, NULL as null.
//!
//! The message is serialized straight from borrowed structs (no `serde_json::Value` tree: this
//! runs once per row delivered). Keys come in the byte order of their names, as a JSON map
//! sorted by key writes them; the unit tests hold the bytes equal to that map's.

use serde::ser::{Serialize, SerializeMap, Serializer};
use sluice_core::{Op, RowChange, Value};

use crate::text::{value_text, BytesAs};
use crate::{ddl_kind, key_parts, Change, Format, FormatError, Record};

pub(crate) struct Oms {
    pub(crate) extended: bool,
}

/// A row image: column name -> text (null for NULL), columns the source did not log left out.
struct Image<'a> {
    row: &'a RowChange,
    values: &'a [Value],
}

/// The indexes of a table's columns in the byte order of their names.
fn by_name(row: &RowChange) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.table.columns.len()).collect();
    idx.sort_by(|&a, &b| row.table.columns[a].name.cmp(&row.table.columns[b].name));
    idx
}

impl Serialize for Image<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for i in by_name(self.row) {
            let (Some(col), Some(v)) = (self.row.table.columns.get(i), self.values.get(i)) else {
                continue;
            };
            if *v == Value::Unavailable {
                continue;
            }
            m.serialize_entry(&col.name, &value_text(v, BytesAs::Base64))?;
        }
        m.end()
    }
}

/// `__light_type` of the extended format: column name -> SQL type.
struct LightTypes<'a>(&'a RowChange);

impl Serialize for LightTypes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for i in by_name(self.0) {
            let c = &self.0.table.columns[i];
            m.serialize_entry(&c.name, &c.sql_type)?;
        }
        m.end()
    }
}

/// `allMetaData`, its fields in name order (`__light_type` sorts first, `dbType` after `db`).
#[derive(serde::Serialize)]
struct Meta<'a> {
    #[serde(rename = "__light_type", skip_serializing_if = "Option::is_none")]
    light_type: Option<LightTypes<'a>>,
    checkpoint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    db: Option<&'a str>,
    #[serde(rename = "dbType")]
    db_type: &'a str,
    /// Some(None) is `null` (rows); None leaves the field out (heartbeats).
    #[serde(rename = "ddlType", skip_serializing_if = "Option::is_none")]
    ddl_type: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_primary_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_primary_value: Option<&'a str>,
    source_identity: &'a str,
    #[serde(rename = "storeDataSequence", skip_serializing_if = "Option::is_none")]
    store_data_sequence: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    table_name: Option<&'a str>,
    timestamp: &'a str,
    #[serde(rename = "transId", skip_serializing_if = "Option::is_none")]
    trans_id: Option<&'a str>,
    #[serde(rename = "uniqueId", skip_serializing_if = "Option::is_none")]
    unique_id: Option<&'a str>,
}

/// A DDL message's post image.
#[derive(serde::Serialize)]
struct DdlImage<'a> {
    ddl: &'a str,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Post<'a> {
    Row(Image<'a>),
    Ddl(DdlImage<'a>),
}

/// The message, its fields in name order.
#[derive(serde::Serialize)]
struct Message<'a> {
    #[serde(rename = "allMetaData")]
    meta: Meta<'a>,
    #[serde(rename = "postStruct")]
    post: Option<Post<'a>>,
    #[serde(rename = "prevStruct")]
    prev: Option<Image<'a>>,
    #[serde(rename = "recordType")]
    record_type: &'a str,
}

fn write(m: &Message<'_>) -> Result<Option<Vec<u8>>, FormatError> {
    // Sized for a typical message at once (growing from serde_json's default copies it thrice).
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, m)
        .map(|()| Some(out))
        .map_err(|e| FormatError::definite("json", e.to_string()))
}

impl Format for Oms {
    fn name(&self) -> &'static str {
        if self.extended {
            "oms-extended"
        } else {
            "oms"
        }
    }

    fn encode(&self, rec: &Record<'_>) -> Result<Option<Vec<u8>>, FormatError> {
        let src = rec.source;
        let db_type = src.db_type.oms_name();
        match rec.change {
            Change::Row(row) | Change::Snapshot(row) => {
                let snapshot = matches!(rec.change, Change::Snapshot(_));
                let key_image = row
                    .after
                    .as_deref()
                    .or(row.before.as_deref())
                    .unwrap_or(&[]);
                let keys = key_parts(row, key_image);
                let key_names = keys
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join("\u{1}");
                let key_value = keys
                    .iter()
                    .map(|(_, v)| value_text(v, BytesAs::Base64).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\u{1}");
                let secs = (row.ts_ms / 1000).to_string();
                // The halves of a split key change are two messages of one source change.
                let unique_id = match rec.key_change {
                    Some(k) => format!("{}/{}/{}", row.txn, row.seq, k.as_str()),
                    None => format!("{}/{}", row.txn, row.seq),
                };
                let record_type = match (snapshot, row.op) {
                    (true, _) => "ROW",
                    (false, Op::Insert) => "INSERT",
                    (false, Op::Update) => "UPDATE",
                    (false, Op::Delete) => "DELETE",
                };
                write(&Message {
                    meta: Meta {
                        light_type: self.extended.then_some(LightTypes(row)),
                        // Full sync: OMS puts the primary-key value where incremental puts the
                        // time.
                        checkpoint: if snapshot { &key_value } else { &secs },
                        db: Some(&row.table.id.db),
                        db_type,
                        ddl_type: Some(None),
                        record_primary_key: Some(&key_names),
                        record_primary_value: Some(&key_value),
                        source_identity: &src.name,
                        store_data_sequence: rec.sequence,
                        table_name: Some(&row.table.id.table),
                        timestamp: &secs,
                        trans_id: Some(&row.txn),
                        unique_id: Some(&unique_id),
                    },
                    post: row
                        .after
                        .as_deref()
                        .map(|values| Post::Row(Image { row, values })),
                    prev: row.before.as_deref().map(|values| Image { row, values }),
                    record_type,
                })
            }
            Change::Ddl(d) => {
                let secs = (d.ts_ms / 1000).to_string();
                let (db, table) = match &d.table {
                    Some(t) => (t.db.as_str(), t.table.as_str()),
                    None => (d.db.as_str(), ""),
                };
                let kind = ddl_kind(&d.sql);
                let unique_id = format!("{}/{}", d.txn, d.seq);
                write(&Message {
                    meta: Meta {
                        light_type: None,
                        checkpoint: &secs,
                        db: Some(db),
                        db_type,
                        ddl_type: Some(Some(&kind)),
                        record_primary_key: Some(""),
                        record_primary_value: Some(""),
                        source_identity: &src.name,
                        store_data_sequence: rec.sequence,
                        table_name: Some(table),
                        timestamp: &secs,
                        trans_id: Some(&d.txn),
                        unique_id: Some(&unique_id),
                    },
                    post: Some(Post::Ddl(DdlImage { ddl: &d.sql })),
                    prev: None,
                    record_type: "DDL",
                })
            }
            Change::Heartbeat { ts_ms, .. } => {
                let secs = (ts_ms / 1000).to_string();
                write(&Message {
                    meta: Meta {
                        light_type: None,
                        checkpoint: &secs,
                        db: None,
                        db_type,
                        ddl_type: None,
                        record_primary_key: None,
                        record_primary_value: None,
                        source_identity: &src.name,
                        store_data_sequence: None,
                        table_name: None,
                        timestamp: &secs,
                        trans_id: None,
                        unique_id: None,
                    },
                    post: None,
                    prev: None,
                    record_type: "HEARTBEAT",
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
