//! DataWorks 2.0 JSON, as DataWorks real-time synchronization writes whole databases to Kafka
//! (Alibaba Cloud, "DataWorks: Appendix: Message formats"): a `schema` part (columns with one
//! of six types, primary key, source) and a `payload` part (before/after images under
//! `dataColumn`, `op`, `sequenceId`, `timestamp`, `ddl`), `version` `1.0.0`.
//!
//! Choices (docs/FORMATS.md): an update is one message, `op` `UPDATE_AFTER`, carrying both
//! images; a column whose values a DataWorks type cannot hold exactly (DECIMAL, BIGINT
//! UNSIGNED, TIME, DATETIME/TIMESTAMP with more than 3 fractional digits) is typed `STRING`
//! and carries MySQL's text; the three timestamps are all the commit time (no clock reads).

use serde_json::{json, Map, Value as Json};
use sluice_core::render::{epoch_micros, value_to_json};
use sluice_core::{Column, ColumnType, Op, RowChange, TableSchema, Value};

use crate::text::{bytes_text, value_text, BytesAs};
use crate::{to_bytes, Change, DbType, Format, FormatError, Record};

pub(crate) struct DataWorks;

/// The DataWorks type of a column: BOOLEAN, DOUBLE, DATE, BYTES, LONG or STRING.
pub(crate) fn column_type(c: &Column) -> &'static str {
    match &c.ty {
        ColumnType::Integer {
            bytes: 8,
            unsigned: true,
        } => "STRING",
        ColumnType::Integer { .. } | ColumnType::Year => "LONG",
        ColumnType::Bit { width: 1 } => "BOOLEAN",
        ColumnType::Bit { width } if *width < 64 => "LONG",
        ColumnType::Float | ColumnType::Double => "DOUBLE",
        ColumnType::Date => "DATE",
        ColumnType::DateTime { fsp } | ColumnType::Timestamp { fsp } if *fsp <= 3 => "DATE",
        ColumnType::Binary { .. } | ColumnType::Geometry | ColumnType::Vector => "BYTES",
        _ => "STRING",
    }
}

/// One value as its column's DataWorks type says; the MySQL text where the type cannot hold
/// the value exactly (a zero date, say).
fn value(col: &Column, v: &Value) -> Json {
    let text = || value_text(v, BytesAs::Base64).map_or(Json::Null, Json::String);
    match (column_type(col), v) {
        (_, Value::Null | Value::Unavailable) => Json::Null,
        ("STRING", _) => text(),
        ("BYTES", Value::Bytes(b)) => Json::String(bytes_text(b, BytesAs::Base64)),
        ("BYTES", Value::Geometry { wkb, .. }) => Json::String(bytes_text(wkb, BytesAs::Base64)),
        ("BOOLEAN", Value::Bit { value, .. }) => json!(*value == 1),
        ("LONG", Value::Bit { value, .. }) => json!(value),
        ("DATE", v) => epoch_micros(v).map_or_else(text, |us| json!(us.div_euclid(1000))),
        // LONG and DOUBLE: numbers as the event model renders them (NaN and infinities as
        // strings, as in every JSON format).
        _ => value_to_json(v),
    }
}

fn image(table: &TableSchema, values: &[Value]) -> Json {
    let cols: Map<String, Json> = table
        .columns
        .iter()
        .zip(values)
        .filter(|(_, v)| **v != Value::Unavailable)
        .map(|(c, v)| (c.name.clone(), value(c, v)))
        .collect();
    json!({ "dataColumn": cols })
}

fn db_type(t: DbType) -> &'static str {
    match t {
        DbType::Mysql => "mysql",
        DbType::Mariadb => "mariadb",
        DbType::ObMysql => "oceanbase",
        DbType::Postgres => "postgresql",
    }
}

/// DataWorks' `op` of a DDL statement (the names Canal also uses).
fn ddl_op(sql: &str) -> &'static str {
    crate::canal::ddl_type(sql)
}

fn timestamp(ts_ms: u64) -> Json {
    json!({ "eventTime": ts_ms, "systemTime": ts_ms, "checkpointTime": ts_ms })
}

impl Format for DataWorks {
    fn name(&self) -> &'static str {
        "dataworks"
    }

    fn encode(&self, rec: &Record<'_>) -> Result<Option<Vec<u8>>, FormatError> {
        let seq = rec
            .sequence
            .map_or(Json::Null, |s| Json::String(s.to_string()));
        let msg = match rec.change {
            Change::Row(row) | Change::Snapshot(row) => {
                let t = &row.table;
                let (op, before, after) = row_parts(row);
                json!({
                    "schema": {
                        "dataColumn": t.columns.iter()
                            .map(|c| json!({"name": c.name, "type": column_type(c)}))
                            .collect::<Vec<_>>(),
                        "primaryKey": t.primary_key_names(),
                        "source": {
                            "dbType": db_type(rec.source.db_type),
                            "dbName": t.id.db,
                            "schemaName": null,
                            "tableName": t.id.table,
                        },
                    },
                    "payload": {
                        "before": before,
                        "after": after,
                        "sequenceId": seq,
                        "timestamp": timestamp(row.ts_ms),
                        "op": op,
                        "ddl": null,
                    },
                    "version": "1.0.0",
                })
            }
            Change::Ddl(d) => {
                let (db, table) = match &d.table {
                    Some(t) => (Json::String(t.db.clone()), Json::String(t.table.clone())),
                    None => (Json::String(d.db.clone()), Json::Null),
                };
                json!({
                    "schema": {
                        "dataColumn": null,
                        "primaryKey": null,
                        "source": {
                            "dbType": db_type(rec.source.db_type),
                            "dbName": db,
                            "schemaName": null,
                            "tableName": table,
                        },
                    },
                    "payload": {
                        "before": null,
                        "after": null,
                        "sequenceId": seq,
                        "timestamp": timestamp(d.ts_ms),
                        "op": ddl_op(&d.sql),
                        "ddl": d.sql,
                    },
                    "version": "1.0.0",
                })
            }
            Change::Heartbeat { ts_ms, .. } => json!({
                "schema": { "dataColumn": null, "primaryKey": null, "source": null },
                "payload": {
                    "before": null,
                    "after": null,
                    "sequenceId": null,
                    "timestamp": timestamp(ts_ms),
                    "op": "MHEARTBEAT",
                    "ddl": null,
                },
                "version": "1.0.0",
            }),
        };
        to_bytes(msg)
    }
}

/// `op`, before and after of a row change.
fn row_parts(row: &RowChange) -> (&'static str, Json, Json) {
    let img = |v: &Option<Vec<Value>>| {
        v.as_ref()
            .map_or(Json::Null, |vals| image(&row.table, vals))
    };
    match (row.op, &row.before, &row.after) {
        (Op::Update, Some(_), Some(_)) => ("UPDATE_AFTER", img(&row.before), img(&row.after)),
        (Op::Delete, Some(_), _) | (_, Some(_), None) => ("DELETE", img(&row.before), Json::Null),
        _ => ("INSERT", Json::Null, img(&row.after)),
    }
}
