//! SharePlex JSON, as SharePlex writes changes to Kafka (and as Alibaba Cloud DTS documents it
//! under "Shareplex Json"): a `meta` object (`time`, `op` `ins`/`upd`/`del`/`truncate`, `scn`,
//! `trans`, `seq`, `table`) and `data`; an update's `data` holds the columns it changed, with
//! their new values, and `key` the row before the change. Values are MySQL text, binary values
//! base64.
//!
//! Left out, because a streaming reader does not have them (docs/FORMATS.md): `size` and `idx`
//! (the transaction's length), `rowid`, `userid` and `posttime` (a clock read). Other DDL than
//! TRUNCATE and heartbeats have no SharePlex message.

use serde_json::{json, Map, Value as Json};
use sluice_core::render::civil_from_days;
use sluice_core::{Op, Position, RowChange, Value};

use crate::text::{value_text, BytesAs};
use crate::{ddl_kind, to_bytes, Change, Format, FormatError, Record};

pub(crate) struct SharePlex;

/// `YYYY-MM-DDTHH:MM:SS` in UTC, as SharePlex writes `time`.
fn time_text(ts_ms: u64) -> String {
    let secs = i64::try_from(ts_ms / 1000).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// The change's log position (SharePlex's `scn` names the Oracle change number; here the
/// binlog file and offset or the LSN).
fn scn(p: &Position) -> String {
    let text = p.to_string();
    match text.split_once(" (gtid") {
        Some((pos, _)) => pos.to_string(),
        None => text,
    }
}

fn text(v: &Value) -> Json {
    value_text(v, BytesAs::Base64).map_or(Json::Null, Json::String)
}

fn image(row: &RowChange, values: &[Value]) -> Json {
    let m: Map<String, Json> = row
        .table
        .columns
        .iter()
        .zip(values)
        .filter(|(_, v)| **v != Value::Unavailable)
        .map(|(c, v)| (c.name.clone(), text(v)))
        .collect();
    Json::Object(m)
}

fn changed(row: &RowChange, before: &[Value], after: &[Value]) -> Json {
    let m: Map<String, Json> = row
        .table
        .columns
        .iter()
        .zip(before.iter().zip(after))
        .filter(|(_, (b, a))| b != a && **a != Value::Unavailable)
        .map(|(c, (_, a))| (c.name.clone(), text(a)))
        .collect();
    Json::Object(m)
}

impl Format for SharePlex {
    fn name(&self) -> &'static str {
        "shareplex"
    }

    fn encode(&self, rec: &Record<'_>) -> Result<Option<Vec<u8>>, FormatError> {
        let msg = match rec.change {
            Change::Row(row) | Change::Snapshot(row) => {
                let meta = |op: &str| {
                    json!({
                        "time": time_text(row.ts_ms),
                        "op": op,
                        "scn": scn(&row.pos),
                        "trans": row.txn,
                        "seq": row.seq + 1,
                        "table": format!("{}.{}", row.table.id.db, row.table.id.table),
                    })
                };
                match (row.op, &row.before, &row.after) {
                    (Op::Update, Some(b), Some(a)) => json!({
                        "meta": meta("upd"),
                        "data": changed(row, b, a),
                        "key": image(row, b),
                    }),
                    (Op::Delete, Some(b), _) | (_, Some(b), None) => {
                        json!({ "meta": meta("del"), "data": image(row, b) })
                    }
                    (_, _, Some(a)) => json!({ "meta": meta("ins"), "data": image(row, a) }),
                    (_, None, None) => return Ok(None),
                }
            }
            Change::Ddl(d) if ddl_kind(&d.sql) == "TRUNCATE" => {
                let Some(t) = &d.table else {
                    return Ok(None);
                };
                json!({
                    "meta": {
                        "time": time_text(d.ts_ms),
                        "op": "truncate",
                        "scn": scn(&d.pos),
                        "table": format!("{}.{}", t.db, t.table),
                    },
                })
            }
            Change::Ddl(_) | Change::Heartbeat { .. } => return Ok(None),
        };
        to_bytes(msg)
    }
}
