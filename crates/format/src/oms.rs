//! OMS Default JSON (and DefaultExtendColumnType): `prevStruct`, `postStruct`, `allMetaData`,
//! `recordType`. Values are strings in MySQL's text form, binary values base64, NULL as null.

use serde_json::{json, Map, Value as Json};
use sluice_core::{Op, RowChange, Value};

use crate::text::{value_text, BytesAs};
use crate::{ddl_kind, key_parts, to_bytes, Change, Format, FormatError, Record};

pub(crate) struct Oms {
    pub(crate) extended: bool,
}

fn image(row: &RowChange, values: &[Value]) -> Json {
    let mut m = Map::new();
    for (col, v) in row.table.columns.iter().zip(values) {
        if *v == Value::Unavailable {
            continue;
        }
        let text = value_text(v, BytesAs::Base64).map_or(Json::Null, Json::String);
        m.insert(col.name.clone(), text);
    }
    Json::Object(m)
}

fn joined<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    parts.collect::<Vec<_>>().join("\u{1}")
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
        let mut meta = Map::new();
        let (prev, post, record_type) = match rec.change {
            Change::Row(row) | Change::Snapshot(row) => {
                let snapshot = matches!(rec.change, Change::Snapshot(_));
                let key_image = row
                    .after
                    .as_deref()
                    .or(row.before.as_deref())
                    .unwrap_or(&[]);
                let keys = key_parts(row, key_image);
                let key_names = joined(keys.iter().map(|(n, _)| *n));
                let key_values: Vec<String> = keys
                    .iter()
                    .map(|(_, v)| value_text(v, BytesAs::Base64).unwrap_or_default())
                    .collect();
                let key_value = key_values.join("\u{1}");
                let secs = (row.ts_ms / 1000).to_string();
                // Full sync: OMS puts the primary-key value where incremental puts the time.
                let checkpoint = if snapshot {
                    key_value.clone()
                } else {
                    secs.clone()
                };
                meta.insert("checkpoint".into(), json!(checkpoint));
                meta.insert("record_primary_key".into(), json!(key_names));
                meta.insert("record_primary_value".into(), json!(key_value));
                meta.insert("source_identity".into(), json!(src.name));
                meta.insert("dbType".into(), json!(src.db_type.oms_name()));
                if let Some(s) = rec.sequence {
                    meta.insert("storeDataSequence".into(), json!(s));
                }
                meta.insert("table_name".into(), json!(row.table.id.table));
                meta.insert("db".into(), json!(row.table.id.db));
                meta.insert("timestamp".into(), json!(secs));
                // The halves of a split key change are two messages of one source change.
                let half = rec
                    .key_change
                    .map(|k| format!("/{}", k.as_str()))
                    .unwrap_or_default();
                meta.insert(
                    "uniqueId".into(),
                    json!(format!("{}/{}{half}", row.txn, row.seq)),
                );
                meta.insert("transId".into(), json!(row.txn));
                meta.insert("ddlType".into(), Json::Null);
                if self.extended {
                    let types: Map<String, Json> = row
                        .table
                        .columns
                        .iter()
                        .map(|c| (c.name.clone(), json!(c.sql_type)))
                        .collect();
                    meta.insert("__light_type".into(), Json::Object(types));
                }
                let prev = row.before.as_deref().map(|b| image(row, b));
                let post = row.after.as_deref().map(|a| image(row, a));
                let kind = match (snapshot, row.op) {
                    (true, _) => "ROW",
                    (false, Op::Insert) => "INSERT",
                    (false, Op::Update) => "UPDATE",
                    (false, Op::Delete) => "DELETE",
                };
                (prev, post, kind)
            }
            Change::Ddl(d) => {
                let secs = (d.ts_ms / 1000).to_string();
                let (db, table) = match &d.table {
                    Some(t) => (t.db.clone(), t.table.clone()),
                    None => (d.db.clone(), String::new()),
                };
                meta.insert("checkpoint".into(), json!(secs));
                meta.insert("record_primary_key".into(), json!(""));
                meta.insert("record_primary_value".into(), json!(""));
                meta.insert("source_identity".into(), json!(src.name));
                meta.insert("dbType".into(), json!(src.db_type.oms_name()));
                if let Some(s) = rec.sequence {
                    meta.insert("storeDataSequence".into(), json!(s));
                }
                meta.insert("table_name".into(), json!(table));
                meta.insert("db".into(), json!(db));
                meta.insert("timestamp".into(), json!(secs));
                meta.insert("uniqueId".into(), json!(format!("{}/{}", d.txn, d.seq)));
                meta.insert("transId".into(), json!(d.txn));
                meta.insert("ddlType".into(), json!(ddl_kind(&d.sql)));
                (None, Some(json!({ "ddl": d.sql })), "DDL")
            }
            Change::Heartbeat { ts_ms, .. } => {
                let secs = (ts_ms / 1000).to_string();
                meta.insert("checkpoint".into(), json!(secs));
                meta.insert("source_identity".into(), json!(src.name));
                meta.insert("dbType".into(), json!(src.db_type.oms_name()));
                meta.insert("timestamp".into(), json!(secs));
                (None, None, "HEARTBEAT")
            }
        };
        to_bytes(json!({
            "prevStruct": prev,
            "postStruct": post,
            "allMetaData": meta,
            "recordType": record_type,
        }))
    }
}
