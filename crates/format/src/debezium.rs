//! The Debezium MySQL connector's JSON envelope (`before`, `after`, `source`, `op`, `ts_ms`),
//! optionally with the Kafka Connect `schema` part, and its "new record state" flattening.
//! Value conventions follow the connector's defaults (`time.precision.mode=
//! adaptive_time_microseconds`, `binary.handling.mode=bytes`), except DECIMAL, a string by
//! default (`decimal.handling.mode=string`; base64 "precise" as an option). See docs/FORMATS.md.

use base64::Engine as _;
use serde_json::{json, Map, Value as Json};
use sluice_core::render::{days_from_civil, time_micros, value_to_json};
use sluice_core::{Column, ColumnType, Op, Position, RowChange, TableSchema, Value};

use crate::{to_bytes, Change, Format, FormatError, Record, SourceInfo};

pub(crate) struct Debezium {
    pub(crate) flat: bool,
    pub(crate) schema: bool,
    pub(crate) precise: bool,
}

const VERSION: &str = concat!("sluice-", env!("CARGO_PKG_VERSION"));

fn b64(b: &[u8]) -> Json {
    Json::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// DECIMAL text as Debezium's "precise" bytes: the unscaled value, big-endian two's complement.
pub(crate) fn decimal_bytes(text: &str) -> Option<Vec<u8>> {
    let negative = text.starts_with('-');
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let unscaled: i128 = digits.parse().ok()?;
    let v = if negative { -unscaled } else { unscaled };
    let bytes = v.to_be_bytes();
    // Shortest form that keeps the sign bit.
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    Some(bytes[start..].to_vec())
}

impl Debezium {
    fn value(&self, col: &Column, v: &Value) -> Json {
        match v {
            Value::Null | Value::Unavailable => Json::Null,
            Value::Decimal(s) if self.precise => decimal_bytes(s).map_or(Json::Null, |b| b64(&b)),
            Value::Decimal(s) => Json::String(s.clone()),
            Value::Bytes(b) => b64(b),
            Value::Json(text) => Json::String(text.clone()),
            Value::Date { year, month, day } => {
                if *month == 0 || *day == 0 {
                    Json::Null
                } else {
                    json!(days_from_civil(
                        i64::from(*year),
                        u32::from(*month),
                        u32::from(*day)
                    ))
                }
            }
            Value::DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
                fsp,
            } => {
                if *month == 0 || *day == 0 {
                    return Json::Null;
                }
                let days = days_from_civil(i64::from(*year), u32::from(*month), u32::from(*day));
                let secs = days * 86_400
                    + i64::from(*hour) * 3600
                    + i64::from(*minute) * 60
                    + i64::from(*second);
                if *fsp <= 3 {
                    json!(secs * 1000 + i64::from(*micros / 1000))
                } else {
                    json!(secs * 1_000_000 + i64::from(*micros))
                }
            }
            Value::Time { .. } => json!(time_micros(v)),
            Value::Timestamp {
                seconds: 0,
                micros: 0,
                ..
            } => Json::Null,
            Value::Bit { value, width } => {
                if *width == 1 {
                    json!(*value == 1)
                } else {
                    let n = usize::from(width.div_ceil(8));
                    b64(&value.to_le_bytes()[..n.min(8)])
                }
            }
            Value::Geometry { srid, wkb } => json!({ "wkb": b64(wkb), "srid": srid }),
            other => {
                let _ = col;
                value_to_json(other)
            }
        }
    }

    fn image(&self, table: &TableSchema, values: &[Value]) -> Map<String, Json> {
        table
            .columns
            .iter()
            .zip(values)
            .filter(|(_, v)| **v != Value::Unavailable)
            .map(|(c, v)| (c.name.clone(), self.value(c, v)))
            .collect()
    }

    /// The Kafka Connect schema of one column.
    fn field_schema(&self, c: &Column) -> Json {
        let (ty, name, params): (&str, Option<&str>, Option<Json>) = match &c.ty {
            ColumnType::Integer { bytes, unsigned } => match (bytes, unsigned) {
                (1, false) => ("int16", None, None),
                (1, true) | (2, false) => ("int16", None, None),
                (2, true) | (3, _) | (4, false) => ("int32", None, None),
                _ => ("int64", None, None),
            },
            ColumnType::Float => ("float", None, None),
            ColumnType::Double => ("double", None, None),
            ColumnType::Decimal { precision, scale } if self.precise => (
                "bytes",
                Some("org.apache.kafka.connect.data.Decimal"),
                Some(
                    json!({"scale": scale.to_string(), "connect.decimal.precision": precision.to_string()}),
                ),
            ),
            ColumnType::Decimal { .. } => ("string", None, None),
            ColumnType::Text { .. } => ("string", None, None),
            ColumnType::Binary { .. } | ColumnType::Vector => ("bytes", None, None),
            ColumnType::Date => ("int32", Some("io.debezium.time.Date"), None),
            ColumnType::DateTime { fsp } if *fsp <= 3 => {
                ("int64", Some("io.debezium.time.Timestamp"), None)
            }
            ColumnType::DateTime { .. } => ("int64", Some("io.debezium.time.MicroTimestamp"), None),
            ColumnType::Time { .. } => ("int64", Some("io.debezium.time.MicroTime"), None),
            ColumnType::Timestamp { .. } => {
                ("string", Some("io.debezium.time.ZonedTimestamp"), None)
            }
            ColumnType::Year => ("int32", Some("io.debezium.time.Year"), None),
            ColumnType::Bit { width: 1 } => ("boolean", None, None),
            ColumnType::Bit { width } => (
                "bytes",
                Some("io.debezium.data.Bits"),
                Some(json!({"length": width.to_string()})),
            ),
            ColumnType::Enum { values } => (
                "string",
                Some("io.debezium.data.Enum"),
                Some(json!({"allowed": values.join(",")})),
            ),
            ColumnType::Set { values } => (
                "string",
                Some("io.debezium.data.EnumSet"),
                Some(json!({"allowed": values.join(",")})),
            ),
            ColumnType::Json => ("string", Some("io.debezium.data.Json"), None),
            ColumnType::Geometry => ("struct", Some("io.debezium.data.geometry.Geometry"), None),
        };
        let mut m = Map::new();
        m.insert("type".into(), json!(ty));
        m.insert("optional".into(), json!(c.nullable));
        if let Some(n) = name {
            m.insert("name".into(), json!(n));
            m.insert("version".into(), json!(1));
        }
        if let Some(p) = params {
            m.insert("parameters".into(), p);
        }
        if ty == "struct" {
            m.insert(
                "fields".into(),
                json!([{"type":"bytes","optional":false,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}]),
            );
        }
        m.insert("field".into(), json!(c.name));
        Json::Object(m)
    }

    fn row_schema(&self, src: &SourceInfo, table: &TableSchema, field: &str) -> Json {
        let fields: Vec<Json> = table.columns.iter().map(|c| self.field_schema(c)).collect();
        json!({
            "type": "struct",
            "fields": fields,
            "optional": true,
            "name": format!("{}.{}.{}.Value", src.name, table.id.db, table.id.table),
            "field": field,
        })
    }

    fn envelope_schema(&self, src: &SourceInfo, table: &TableSchema) -> Json {
        let s = |ty: &str, opt: bool, f: &str| json!({"type": ty, "optional": opt, "field": f});
        let source = json!({
            "type": "struct",
            "fields": [
                s("string", false, "version"), s("string", false, "connector"), s("string", false, "name"),
                s("int64", false, "ts_ms"),
                {"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
                 "parameters": {"allowed": "true,last,false,incremental"}, "default": "false", "field": "snapshot"},
                s("string", false, "db"), s("string", true, "sequence"), s("string", true, "table"),
                s("int64", false, "server_id"), s("string", true, "gtid"), s("string", false, "file"),
                s("int64", false, "pos"), s("int32", false, "row"), s("int64", true, "thread"),
                s("string", true, "query"),
            ],
            "optional": false,
            "name": "io.debezium.connector.mysql.Source",
            "field": "source",
        });
        json!({
            "type": "struct",
            "fields": [
                self.row_schema(src, table, "before"),
                self.row_schema(src, table, "after"),
                source,
                s("string", false, "op"),
                s("int64", true, "ts_ms"),
            ],
            "optional": false,
            "name": format!("{}.{}.{}.Envelope", src.name, table.id.db, table.id.table),
        })
    }
}

fn source_block(
    src: &SourceInfo,
    ts_ms: u64,
    snapshot: bool,
    db: &str,
    table: Option<&str>,
    pos: &Position,
    seq: Option<u64>,
) -> Json {
    if src.db_type == crate::DbType::Postgres {
        // The PostgreSQL connector's block: the LSN instead of file and offset; `schema` is
        // the table's schema (the event model's `db` of a PostgreSQL table).
        return json!({
            "version": VERSION,
            "connector": "postgresql",
            "name": src.name,
            "ts_ms": ts_ms,
            "snapshot": if snapshot { "true" } else { "false" },
            "db": db,
            "sequence": seq.map(|s| s.to_string()),
            "schema": db,
            "table": table,
            "txId": null,
            "lsn": pos.offset(),
            "xmin": null,
        });
    }
    json!({
        "version": VERSION,
        "connector": "mysql",
        "name": src.name,
        "ts_ms": ts_ms,
        "snapshot": if snapshot { "true" } else { "false" },
        "db": db,
        "sequence": seq.map(|s| s.to_string()),
        "table": table,
        "server_id": src.server_id,
        "gtid": pos.gtid(),
        "file": pos.file(),
        "pos": pos.offset(),
        "row": 0,
        "thread": null,
        "query": null,
    })
}

impl Format for Debezium {
    fn name(&self) -> &'static str {
        if self.flat {
            "debezium-flat"
        } else {
            "debezium"
        }
    }

    fn encode(&self, rec: &Record<'_>) -> Result<Option<Vec<u8>>, FormatError> {
        let src = rec.source;
        let payload = match rec.change {
            Change::Row(row) | Change::Snapshot(row) => {
                let snapshot = matches!(rec.change, Change::Snapshot(_));
                self.row_payload(src, row, snapshot, rec.sequence)
            }
            Change::Ddl(d) => {
                let table = d.table.as_ref().map(|t| t.table.as_str());
                let db = d.table.as_ref().map_or(d.db.as_str(), |t| t.db.as_str());
                let value = json!({
                    "source": source_block(src, d.ts_ms, false, db, table, &d.pos, rec.sequence),
                    "ts_ms": d.ts_ms,
                    "databaseName": db,
                    "schemaName": null,
                    "ddl": d.sql,
                    "tableChanges": [],
                });
                return to_bytes(value);
            }
            Change::Heartbeat { ts_ms, .. } => return to_bytes(json!({ "ts_ms": ts_ms })),
        };
        to_bytes(payload)
    }
}

impl Debezium {
    fn row_payload(
        &self,
        src: &SourceInfo,
        row: &RowChange,
        snapshot: bool,
        seq: Option<u64>,
    ) -> Json {
        let op = match (snapshot, row.op) {
            (true, _) => "r",
            (false, Op::Insert) => "c",
            (false, Op::Update) => "u",
            (false, Op::Delete) => "d",
        };
        let before = row.before.as_deref().map(|b| self.image(&row.table, b));
        let after = row.after.as_deref().map(|a| self.image(&row.table, a));
        if self.flat {
            let deleted = row.op == Op::Delete && !snapshot;
            let mut m = if deleted { before } else { after }.unwrap_or_default();
            m.insert("__op".into(), json!(op));
            m.insert("__db".into(), json!(row.table.id.db));
            m.insert("__table".into(), json!(row.table.id.table));
            m.insert(
                "__deleted".into(),
                json!(if deleted { "true" } else { "false" }),
            );
            return Json::Object(m);
        }
        let payload = json!({
            "before": before,
            "after": after,
            "source": source_block(src, row.ts_ms, snapshot, &row.table.id.db, Some(&row.table.id.table), &row.pos, seq),
            "op": op,
            "ts_ms": row.ts_ms,
        });
        if self.schema {
            json!({ "schema": self.envelope_schema(src, &row.table), "payload": payload })
        } else {
            payload
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_precise_decimals_match_debeziums() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 5, 1), 19_844);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        // 1.50 -> unscaled 150 -> 0x0096 (sign bit kept clear by a leading zero byte).
        assert_eq!(decimal_bytes("1.50"), Some(vec![0x00, 0x96]));
        assert_eq!(decimal_bytes("-1.50"), Some(vec![0xff, 0x6a]));
        assert_eq!(decimal_bytes("0.00"), Some(vec![0x00]));
    }
}
