//! Canal FlatMessage JSON, as Flink's `canal-json` format reads it. Values are strings (MySQL
//! text form); binary values as ISO-8859-1 text, as Canal itself writes them; `old` holds only
//! the columns an update changed.

use serde_json::{json, Map, Value as Json};
use sluice_core::{Column, ColumnType, Op, RowChange, Value};

use crate::text::{value_text, BytesAs};
use crate::{ddl_kind, to_bytes, Change, Format, FormatError, Record};

pub(crate) struct Canal;

/// The java.sql.Types code Canal gives a column.
pub(crate) fn jdbc_type(c: &Column) -> i32 {
    let t = c.sql_type.to_ascii_lowercase();
    match &c.ty {
        ColumnType::Integer { bytes, unsigned } => match (bytes, unsigned) {
            (1, false) => -6,
            (1, true) | (2, false) => 5,
            (2, true) | (3, _) | (4, false) => 4,
            (4, true) | (8, false) => -5,
            _ => 3,
        },
        ColumnType::Float => 7,
        ColumnType::Double => 8,
        ColumnType::Decimal { .. } => 3,
        ColumnType::Text { .. } if t.starts_with("varchar") => 12,
        ColumnType::Text { .. } if t.starts_with("char") => 1,
        ColumnType::Text { .. } => 2005,
        ColumnType::Binary { pad_to } if *pad_to > 0 || t.starts_with("binary") => -2,
        ColumnType::Binary { .. } if t.starts_with("varbinary") => -3,
        ColumnType::Binary { .. } => 2004,
        ColumnType::Date => 91,
        ColumnType::Time { .. } => 92,
        ColumnType::DateTime { .. } | ColumnType::Timestamp { .. } => 93,
        ColumnType::Year | ColumnType::Json => 12,
        ColumnType::Bit { .. } => -7,
        ColumnType::Enum { .. } | ColumnType::Set { .. } => 1,
        ColumnType::Geometry => -2,
        ColumnType::Vector => -3,
    }
}

fn text(v: &Value) -> Json {
    value_text(v, BytesAs::Latin1).map_or(Json::Null, Json::String)
}

fn image(row: &RowChange, values: &[Value]) -> Json {
    let mut m = Map::new();
    for (col, v) in row.table.columns.iter().zip(values) {
        if *v != Value::Unavailable {
            m.insert(col.name.clone(), text(v));
        }
    }
    Json::Object(m)
}

fn changed(row: &RowChange, before: &[Value], after: &[Value]) -> Json {
    let mut m = Map::new();
    for ((col, b), a) in row.table.columns.iter().zip(before).zip(after) {
        if b != a && *b != Value::Unavailable {
            m.insert(col.name.clone(), text(b));
        }
    }
    Json::Object(m)
}

/// Canal's event type of a DDL statement.
pub(crate) fn ddl_type(sql: &str) -> &'static str {
    let kind = ddl_kind(sql);
    let upper = sql.to_ascii_uppercase();
    let second = upper.split_whitespace().nth(1).unwrap_or("");
    match (kind.as_str(), second) {
        ("CREATE", "INDEX" | "UNIQUE" | "FULLTEXT" | "SPATIAL") => "CINDEX",
        ("DROP", "INDEX") => "DINDEX",
        ("CREATE", _) => "CREATE",
        ("ALTER", _) => "ALTER",
        ("DROP", _) => "ERASE",
        ("RENAME", _) => "RENAME",
        ("TRUNCATE", _) => "TRUNCATE",
        _ => "QUERY",
    }
}

impl Format for Canal {
    fn name(&self) -> &'static str {
        "canal"
    }

    fn encode(&self, rec: &Record<'_>) -> Result<Option<Vec<u8>>, FormatError> {
        let id = rec.sequence.unwrap_or(0);
        let msg = match rec.change {
            Change::Row(row) | Change::Snapshot(row) => {
                let sql_type: Map<String, Json> = row
                    .table
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), json!(jdbc_type(c))))
                    .collect();
                let mysql_type: Map<String, Json> = row
                    .table
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), json!(c.sql_type)))
                    .collect();
                let pk = row.table.primary_key_names();
                let (kind, data, old) = match (row.op, &row.before, &row.after) {
                    (Op::Update, Some(b), Some(a)) => {
                        ("UPDATE", image(row, a), json!([changed(row, b, a)]))
                    }
                    (Op::Delete, Some(b), _) => ("DELETE", image(row, b), Json::Null),
                    (_, _, Some(a)) => ("INSERT", image(row, a), Json::Null),
                    (_, Some(b), None) => ("DELETE", image(row, b), Json::Null),
                    (_, None, None) => ("INSERT", json!({}), Json::Null),
                };
                json!({
                    "id": id,
                    "database": row.table.id.db,
                    "table": row.table.id.table,
                    "pkNames": if pk.is_empty() { Json::Null } else { json!(pk) },
                    "isDdl": false,
                    "type": kind,
                    "es": row.ts_ms,
                    "ts": row.ts_ms,
                    "sql": "",
                    "sqlType": sql_type,
                    "mysqlType": mysql_type,
                    "data": [data],
                    "old": old,
                })
            }
            Change::Ddl(d) => {
                let (db, table) = match &d.table {
                    Some(t) => (t.db.clone(), t.table.clone()),
                    None => (d.db.clone(), String::new()),
                };
                json!({
                    "id": id,
                    "database": db,
                    "table": table,
                    "pkNames": null,
                    "isDdl": true,
                    "type": ddl_type(&d.sql),
                    "es": d.ts_ms,
                    "ts": d.ts_ms,
                    "sql": d.sql,
                    "sqlType": null,
                    "mysqlType": null,
                    "data": null,
                    "old": null,
                })
            }
            // Canal has no heartbeat message.
            Change::Heartbeat { .. } => return Ok(None),
        };
        to_bytes(msg)
    }
}
