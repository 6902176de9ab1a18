//! Maxwell's JSON: `database`, `table`, `type`, `ts` (seconds), `xid`, `commit` (on the last row
//! of a transaction), `data`, `old` (changed columns only). Values as Maxwell shows them: numbers
//! for integers and floats, strings for text and temporal values (TIMESTAMP in UTC), base64 for
//! binary, JSON documents inline, as their source text (key order and every digit kept);
//! DECIMAL as a string, to stay exact.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value as Json};
use sluice_core::render::value_to_json;
use sluice_core::{Op, Position, RowChange, Value};

use crate::text::timestamp_text;
use crate::{to_bytes, Change, Format, FormatError, Record};

pub(crate) struct Maxwell;

/// One value of an image: a JSON document goes in as its source text, unparsed (parsing would
/// sort its keys and round large numbers through f64).
enum Cell {
    Plain(Json),
    Raw(Box<RawValue>),
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Plain(j) => j.serialize(s),
            Cell::Raw(r) => r.serialize(s),
        }
    }
}

/// Column name -> value, in column order.
struct Image(Vec<(String, Cell)>);

impl Serialize for Image {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A row message: the fields, then `data` and `old`.
struct RowMessage {
    head: Map<String, Json>,
    data: Image,
    old: Option<Image>,
}

impl Serialize for RowMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in &self.head {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry("data", &self.data)?;
        if let Some(old) = &self.old {
            m.serialize_entry("old", old)?;
        }
        m.end()
    }
}

fn value(v: &Value) -> Cell {
    match v {
        Value::Timestamp {
            seconds,
            micros,
            fsp,
        } => Cell::Plain(Json::String(timestamp_text(*seconds, *micros, *fsp))),
        Value::Json(text) => match RawValue::from_string(text.clone()) {
            Ok(raw) => Cell::Raw(raw),
            Err(_) => Cell::Plain(Json::String(text.clone())),
        },
        other => Cell::Plain(value_to_json(other)),
    }
}

fn image(row: &RowChange, values: &[Value]) -> Image {
    Image(
        row.table
            .columns
            .iter()
            .zip(values)
            .filter(|(_, v)| **v != Value::Unavailable)
            .map(|(c, v)| (c.name.clone(), value(v)))
            .collect(),
    )
}

fn position(p: &Position) -> String {
    format!("{}:{}", p.file(), p.offset())
}

fn ddl_type(sql: &str) -> &'static str {
    let upper = sql.to_ascii_uppercase();
    let mut w = upper.split_whitespace();
    match (w.next().unwrap_or(""), w.next().unwrap_or("")) {
        ("CREATE", "DATABASE" | "SCHEMA") => "database-create",
        ("DROP", "DATABASE" | "SCHEMA") => "database-drop",
        ("ALTER", "DATABASE" | "SCHEMA") => "database-alter",
        ("CREATE", _) => "table-create",
        ("DROP", _) => "table-drop",
        _ => "table-alter",
    }
}

impl Format for Maxwell {
    fn name(&self) -> &'static str {
        "maxwell"
    }

    fn encode(&self, rec: &Record<'_>) -> Result<Option<Vec<u8>>, FormatError> {
        let msg = match rec.change {
            Change::Row(row) | Change::Snapshot(row) => {
                let snapshot = matches!(rec.change, Change::Snapshot(_));
                let kind = match (snapshot, row.op) {
                    (true, _) => "bootstrap-insert",
                    (false, Op::Insert) => "insert",
                    (false, Op::Update) => "update",
                    (false, Op::Delete) => "delete",
                };
                let data = match row.op {
                    Op::Delete => row.before.as_deref(),
                    _ => row.after.as_deref(),
                }
                .map(|v| image(row, v))
                .unwrap_or(Image(Vec::new()));
                let mut m = Map::new();
                m.insert("database".into(), json!(row.table.id.db));
                m.insert("table".into(), json!(row.table.id.table));
                m.insert("type".into(), json!(kind));
                m.insert("ts".into(), json!(row.ts_ms / 1000));
                if !snapshot {
                    m.insert("xid".into(), json!(rec.txn_number));
                    if rec.last_in_txn {
                        m.insert("commit".into(), json!(true));
                    }
                    m.insert("position".into(), json!(position(&row.pos)));
                    m.insert("server_id".into(), json!(rec.source.server_id));
                }
                m.insert(
                    "primary_key_columns".into(),
                    json!(row.table.primary_key_names()),
                );
                let old = match (row.op, &row.before, &row.after) {
                    (Op::Update, Some(b), Some(a)) => Some(Image(
                        row.table
                            .columns
                            .iter()
                            .zip(b.iter().zip(a))
                            .filter(|(_, (b, a))| b != a && **b != Value::Unavailable)
                            .map(|(c, (b, _))| (c.name.clone(), value(b)))
                            .collect(),
                    )),
                    _ => None,
                };
                let msg = RowMessage { head: m, data, old };
                return serde_json::to_vec(&msg)
                    .map(Some)
                    .map_err(|e| FormatError::definite("maxwell", e.to_string()));
            }
            Change::Ddl(d) => {
                let (db, table) = match &d.table {
                    Some(t) => (t.db.clone(), Json::String(t.table.clone())),
                    None => (d.db.clone(), Json::Null),
                };
                json!({
                    "type": ddl_type(&d.sql),
                    "database": db,
                    "table": table,
                    "sql": d.sql,
                    "ts": d.ts_ms / 1000,
                    "position": position(&d.pos),
                })
            }
            // Maxwell writes no heartbeat messages to the stream.
            Change::Heartbeat { .. } => return Ok(None),
        };
        to_bytes(msg)
    }
}
