//! Maxwell's JSON: `database`, `table`, `type`, `ts` (seconds), `xid`, `commit` (on the last row
//! of a transaction), `data`, `old` (changed columns only). Values as Maxwell shows them: numbers
//! for integers and floats, strings for text and temporal values (TIMESTAMP in UTC), base64 for
//! binary, JSON documents inline; DECIMAL as a string, to stay exact.

use serde_json::{json, Map, Value as Json};
use sluice_core::render::value_to_json;
use sluice_core::{Op, Position, RowChange, Value};

use crate::text::timestamp_text;
use crate::{to_bytes, Change, Format, FormatError, Record};

pub(crate) struct Maxwell;

fn value(v: &Value) -> Json {
    match v {
        Value::Timestamp {
            seconds,
            micros,
            fsp,
        } => Json::String(timestamp_text(*seconds, *micros, *fsp)),
        other => value_to_json(other),
    }
}

fn image(row: &RowChange, values: &[Value]) -> Map<String, Json> {
    row.table
        .columns
        .iter()
        .zip(values)
        .filter(|(_, v)| **v != Value::Unavailable)
        .map(|(c, v)| (c.name.clone(), value(v)))
        .collect()
}

fn position(p: &Position) -> String {
    let Position::Binlog(b) = p;
    format!("{}:{}", b.file, b.offset)
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
                .unwrap_or_default();
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
                m.insert("data".into(), Json::Object(data));
                if let (Op::Update, Some(b), Some(a)) = (row.op, &row.before, &row.after) {
                    let old: Map<String, Json> = row
                        .table
                        .columns
                        .iter()
                        .zip(b.iter().zip(a))
                        .filter(|(_, (b, a))| b != a && **b != Value::Unavailable)
                        .map(|(c, (b, _))| (c.name.clone(), value(b)))
                        .collect();
                    m.insert("old".into(), Json::Object(old));
                }
                Json::Object(m)
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
