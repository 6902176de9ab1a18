//! Avro in the Confluent wire format (magic byte 0, the schema id as 4 bytes big-endian, the
//! Avro binary datum), with the Debezium envelope (`before`, `after`, `source`, `op`,
//! `ts_ms`) and a key record of the primary-key columns.
//!
//! Invariants:
//! - One value schema per table version and topic, derived from the table definition
//!   (columns, types, nullability); it is registered under `{topic}-value` (the key schema
//!   under `{topic}-key`) before the first message that uses it, so a DDL that changes the
//!   table shows up as a new version of the subject at its next row.
//! - No value is rounded: where an Avro type cannot hold a value (a zero date in a NOT NULL
//!   column, a column the source did not log), the change fails with a definite error naming
//!   the column, instead of being written wrong.
//! - The bytes depend only on the record and the registry's ids (no clock reads).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apache_avro::types::Value as Av;
use apache_avro::{Decimal, Schema};
use serde_json::{json, Value as Json};
use sluice_core::render::{epoch_micros, time_micros};
use sluice_core::{Column, ColumnType, Op, Position, RowChange, TableSchema, Value};

use crate::debezium::decimal_bytes;
use crate::{Change, DbType, Encoded, Format, FormatError, Record, SchemaRegistrar, SourceInfo};

const NAME: &str = "avro";
const VERSION: &str = concat!("sluice-", env!("CARGO_PKG_VERSION"));
/// Entries kept before the schema cache starts afresh (tables times their versions).
const CACHE_LIMIT: usize = 4096;

fn fail(reason: impl Into<String>) -> FormatError {
    FormatError::definite(NAME, reason)
}

/// An Avro name: letters, digits and `_`, not starting with a digit.
pub fn avro_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A column's Avro type (without the null union) and how its values are written.
fn field_type(c: &Column) -> Json {
    match &c.ty {
        ColumnType::Integer {
            bytes: 8,
            unsigned: true,
        } => json!({"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0}),
        ColumnType::Integer {
            bytes: 4,
            unsigned: true,
        }
        | ColumnType::Integer { bytes: 8, .. } => json!("long"),
        ColumnType::Integer { .. } | ColumnType::Year => json!("int"),
        ColumnType::Float => json!("float"),
        ColumnType::Double => json!("double"),
        ColumnType::Decimal { precision, scale } => json!({
            "type": "bytes", "logicalType": "decimal",
            "precision": (*precision).max(1), "scale": scale,
        }),
        ColumnType::Date => json!({"type": "int", "logicalType": "date"}),
        ColumnType::DateTime { .. } => {
            json!({"type": "long", "logicalType": "local-timestamp-micros"})
        }
        ColumnType::Timestamp { .. } => json!({"type": "long", "logicalType": "timestamp-micros"}),
        // MySQL TIME is a signed duration up to ±838 hours; Avro's time-micros is a time of
        // day, which readers refuse outside 0..24 h. Debezium's MicroTime: signed µs.
        ColumnType::Time { .. } => {
            json!({"type": "long", "connect.name": "io.debezium.time.MicroTime"})
        }
        ColumnType::Bit { width: 1 } => json!("boolean"),
        ColumnType::Bit { .. } => json!({"type": "bytes", "connect.name": "io.debezium.data.Bits"}),
        ColumnType::Binary { .. } | ColumnType::Geometry | ColumnType::Vector => json!("bytes"),
        _ => json!("string"),
    }
}

fn field(c: &Column, nullable: bool) -> Json {
    let name = avro_name(&c.name);
    let mut f = if nullable {
        json!({"name": name, "type": ["null", field_type(c)], "default": null})
    } else {
        json!({"name": name, "type": field_type(c)})
    };
    if name != c.name {
        f["doc"] = json!(format!("column {}", c.name));
    }
    f
}

fn namespace(src: &SourceInfo, t: &TableSchema) -> String {
    format!(
        "{}.{}.{}",
        avro_name(&src.name),
        avro_name(&t.id.db),
        avro_name(&t.id.table)
    )
}

/// The value schema of a table: the Debezium envelope with the row record inline.
pub fn value_schema(src: &SourceInfo, t: &TableSchema) -> Json {
    let ns = namespace(src, t);
    let row = json!({
        "type": "record", "name": "Value", "namespace": ns,
        "fields": t.columns.iter().map(|c| field(c, c.nullable)).collect::<Vec<_>>(),
    });
    let opt = |t: &str| json!(["null", t]);
    let source = if src.db_type == DbType::Postgres {
        json!({"type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql",
        "fields": [
            {"name": "version", "type": "string"}, {"name": "connector", "type": "string"},
            {"name": "name", "type": "string"}, {"name": "ts_ms", "type": "long"},
            {"name": "snapshot", "type": "string"}, {"name": "db", "type": "string"},
            {"name": "sequence", "type": opt("string"), "default": null},
            {"name": "schema", "type": "string"}, {"name": "table", "type": "string"},
            {"name": "lsn", "type": opt("long"), "default": null},
        ]})
    } else {
        json!({"type": "record", "name": "Source", "namespace": "io.debezium.connector.mysql",
        "fields": [
            {"name": "version", "type": "string"}, {"name": "connector", "type": "string"},
            {"name": "name", "type": "string"}, {"name": "ts_ms", "type": "long"},
            {"name": "snapshot", "type": "string"}, {"name": "db", "type": "string"},
            {"name": "sequence", "type": opt("string"), "default": null},
            {"name": "table", "type": opt("string"), "default": null},
            {"name": "server_id", "type": "long"},
            {"name": "gtid", "type": opt("string"), "default": null},
            {"name": "file", "type": "string"}, {"name": "pos", "type": "long"},
            {"name": "row", "type": "int"},
        ]})
    };
    json!({
        "type": "record", "name": "Envelope", "namespace": ns,
        "fields": [
            {"name": "before", "type": ["null", row], "default": null},
            {"name": "after", "type": ["null", format!("{ns}.Value")], "default": null},
            {"name": "source", "type": source},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": null},
        ],
    })
}

/// The key schema of a table with a primary key: its key columns, never null.
pub fn key_schema(src: &SourceInfo, t: &TableSchema) -> Option<Json> {
    if t.primary_key.is_empty() {
        return None;
    }
    let fields: Vec<Json> = t
        .primary_key
        .iter()
        .filter_map(|&i| t.columns.get(i))
        .map(|c| field(c, false))
        .collect();
    Some(json!({"type": "record", "name": "Key", "namespace": namespace(src, t), "fields": fields}))
}

/// The schema of heartbeat messages.
pub fn heartbeat_schema() -> Json {
    json!({"type": "record", "name": "Heartbeat", "namespace": "io.sluice",
        "fields": [{"name": "ts_ms", "type": "long"}]})
}

/// One value as its column's Avro type; `None` when the type has no such value (a zero date).
fn datum(c: &Column, v: &Value) -> Option<Av> {
    Some(match v {
        Value::Null | Value::Unavailable => return None,
        Value::Int(i) => match field_type(c).as_str() {
            Some("int") => Av::Int(i32::try_from(*i).ok()?),
            _ => Av::Long(*i),
        },
        Value::UInt(u) => match &c.ty {
            ColumnType::Integer {
                bytes: 8,
                unsigned: true,
            } => Av::Decimal(Decimal::from(decimal_bytes(&u.to_string())?)),
            ColumnType::Integer { bytes: 4, .. } | ColumnType::Integer { bytes: 8, .. } => {
                Av::Long(i64::try_from(*u).ok()?)
            }
            _ => Av::Int(i32::try_from(*u).ok()?),
        },
        Value::Float(f) => Av::Float(*f),
        Value::Double(d) => Av::Double(*d),
        Value::Decimal(s) => Av::Decimal(Decimal::from(decimal_bytes(s)?)),
        Value::Text(s) => Av::String(s.clone()),
        Value::Json(s) => Av::String(s.clone()),
        Value::Enum { label, .. } => Av::String(label.clone()),
        Value::Set { text, .. } => Av::String(text.clone()),
        Value::Bytes(b) => Av::Bytes(b.clone()),
        Value::Geometry { wkb, .. } => Av::Bytes(wkb.clone()),
        Value::Date { .. } => Av::Date(i32::try_from(epoch_micros(v)? / 86_400_000_000).ok()?),
        Value::DateTime { .. } => Av::LocalTimestampMicros(epoch_micros(v)?),
        Value::Timestamp { .. } => Av::TimestampMicros(epoch_micros(v)?),
        Value::Time { .. } => Av::Long(time_micros(v)?),
        Value::Year(y) => Av::Int(i32::from(*y)),
        Value::Bit { value, width } => {
            if *width == 1 {
                Av::Boolean(*value == 1)
            } else {
                let n = usize::from(width.div_ceil(8)).min(8);
                Av::Bytes(value.to_le_bytes()[..n].to_vec())
            }
        }
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// The row record of an image; `what` names the image in errors.
fn row_record(row: &RowChange, values: &[Value], what: &str) -> Result<Av, FormatError> {
    let t = &row.table;
    let mut fields = Vec::with_capacity(t.columns.len());
    for (c, v) in t.columns.iter().zip(values) {
        let d = datum(c, v);
        let value = match (c.nullable, d) {
            (true, None) => Av::Union(0, Box::new(Av::Null)),
            (true, Some(d)) => Av::Union(1, Box::new(d)),
            (false, Some(d)) => d,
            (false, None) => {
                return Err(fail(format!(
                    "{}.{} column {} (NOT NULL) of the {what} image at {}: {} has no Avro value \
                     (a zero date, a column the source did not log); use a JSON format for this table",
                    t.id.db,
                    t.id.table,
                    c.name,
                    row.pos,
                    crate::text::value_text(v, crate::text::BytesAs::Base64)
                        .unwrap_or_else(|| "the value".into())
                )))
            }
        };
        fields.push((avro_name(&c.name), value));
    }
    Ok(Av::Record(fields))
}

fn key_record(row: &RowChange, values: &[Value]) -> Result<Av, FormatError> {
    let t = &row.table;
    let mut fields = Vec::with_capacity(t.primary_key.len());
    for &i in &t.primary_key {
        let (Some(c), Some(v)) = (t.columns.get(i), values.get(i)) else {
            return Err(fail(format!(
                "{}.{}: key column {i} missing",
                t.id.db, t.id.table
            )));
        };
        let d = datum(c, v).ok_or_else(|| {
            fail(format!(
                "{}.{}: key column {} has no Avro value",
                t.id.db, t.id.table, c.name
            ))
        })?;
        fields.push((avro_name(&c.name), d));
    }
    Ok(Av::Record(fields))
}

fn source_record(
    src: &SourceInfo,
    ts_ms: u64,
    snapshot: bool,
    t: &TableSchema,
    pos: &Position,
    seq: Option<u64>,
) -> Av {
    let s = |v: &str| Av::String(v.to_string());
    let opt_s = |v: Option<String>| match v {
        Some(v) => Av::Union(1, Box::new(Av::String(v))),
        None => Av::Union(0, Box::new(Av::Null)),
    };
    let ts = i64::try_from(ts_ms).unwrap_or(i64::MAX);
    let offset = Av::Long(i64::try_from(pos.offset()).unwrap_or(i64::MAX));
    let postgres = src.db_type == DbType::Postgres;
    // The fields both connectors' blocks begin with, in the order the schemas give.
    let mut fields: Vec<(String, Av)> = vec![
        ("version".into(), s(VERSION)),
        (
            "connector".into(),
            s(if postgres { "postgresql" } else { "mysql" }),
        ),
        ("name".into(), s(&src.name)),
        ("ts_ms".into(), Av::Long(ts)),
        (
            "snapshot".into(),
            s(if snapshot { "true" } else { "false" }),
        ),
        ("db".into(), s(&t.id.db)),
        ("sequence".into(), opt_s(seq.map(|s| s.to_string()))),
    ];
    if postgres {
        fields.extend([
            ("schema".into(), s(&t.id.db)),
            ("table".into(), s(&t.id.table)),
            ("lsn".into(), Av::Union(1, Box::new(offset))),
        ]);
    } else {
        fields.extend([
            ("table".into(), opt_s(Some(t.id.table.clone()))),
            ("server_id".into(), Av::Long(i64::from(src.server_id))),
            ("gtid".into(), opt_s(pos.gtid().map(str::to_string))),
            ("file".into(), s(pos.file())),
            ("pos".into(), offset),
            ("row".into(), Av::Int(0)),
        ]);
    }
    Av::Record(fields)
}

/// A compiled, registered schema.
struct Registered {
    schema: Schema,
    id: u32,
}

/// The schemas of one table version on one topic.
struct Entry {
    table: Arc<TableSchema>,
    value: Arc<Registered>,
    key: Option<Arc<Registered>>,
}

/// A table version's entries, one per topic it is written to.
type ByTopic = Vec<(String, Arc<Entry>)>;

/// The Avro format.
pub struct Avro {
    registrar: Arc<dyn SchemaRegistrar>,
    /// By the address of the table schema, then by topic: the `Arc` kept in the entry keeps
    /// the address from being reused by another table; a hit allocates nothing.
    cache: Mutex<HashMap<usize, ByTopic>>,
    heartbeat: Mutex<HashMap<String, Arc<Registered>>>,
}

impl Avro {
    /// Avro whose schemas `registrar` registers.
    pub fn new(registrar: Arc<dyn SchemaRegistrar>) -> Self {
        Self {
            registrar,
            cache: Mutex::new(HashMap::new()),
            heartbeat: Mutex::new(HashMap::new()),
        }
    }

    fn register(&self, subject: &str, schema: &Json) -> Result<Registered, FormatError> {
        let text = schema.to_string();
        let parsed = Schema::parse_str(&text)
            .map_err(|e| fail(format!("schema for {subject} does not parse: {e}")))?;
        let id = self.registrar.register(subject, &text)?;
        Ok(Registered { schema: parsed, id })
    }

    fn entry(
        &self,
        src: &SourceInfo,
        t: &Arc<TableSchema>,
        topic: &str,
    ) -> Result<Arc<Entry>, FormatError> {
        let ptr = Arc::as_ptr(t) as usize;
        let hit = self.cache.lock().ok().and_then(|c| {
            let on = |(tp, e): &(String, Arc<Entry>)| (tp == topic).then(|| e.clone());
            c.get(&ptr).and_then(|v| v.iter().find_map(on))
        });
        if let Some(e) = hit {
            return Ok(e);
        }
        // Another `Arc` of the same definition (a source may build it again): reuse its
        // registered schemas.
        let same = self.cache.lock().ok().and_then(|c| {
            c.values()
                .flatten()
                .find(|(tp, e)| tp == topic && *e.table == **t)
                .map(|(_, e)| (e.value.clone(), e.key.clone()))
        });
        let (value, key) = match same {
            Some(registered) => registered,
            None => {
                let value = self.register(&format!("{topic}-value"), &value_schema(src, t))?;
                let key = match key_schema(src, t) {
                    Some(k) => Some(Arc::new(self.register(&format!("{topic}-key"), &k)?)),
                    None => None,
                };
                (Arc::new(value), key)
            }
        };
        let entry = Arc::new(Entry {
            table: t.clone(),
            value,
            key,
        });
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.entry(ptr)
                .or_default()
                .push((topic.to_string(), entry.clone()));
        }
        Ok(entry)
    }
}

/// The Confluent wire format: magic byte 0, the schema id, the datum.
fn wire(r: &Registered, datum: Av) -> Result<Vec<u8>, FormatError> {
    let body = apache_avro::to_avro_datum(&r.schema, datum)
        .map_err(|e| fail(format!("a value does not fit its schema: {e}")))?;
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&r.id.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

impl Format for Avro {
    fn name(&self) -> &'static str {
        NAME
    }

    fn encode(&self, _rec: &Record<'_>) -> Result<Option<Vec<u8>>, FormatError> {
        Err(fail(
            "Avro messages are encoded for a topic (its subject names the schema)",
        ))
    }

    fn encode_message(
        &self,
        rec: &Record<'_>,
        topic: &str,
    ) -> Result<Option<Encoded>, FormatError> {
        match rec.change {
            Change::Row(row) | Change::Snapshot(row) => {
                let snapshot = matches!(rec.change, Change::Snapshot(_));
                let e = self.entry(rec.source, &row.table, topic)?;
                let op = match (snapshot, row.op) {
                    (true, _) => "r",
                    (false, Op::Insert) => "c",
                    (false, Op::Update) => "u",
                    (false, Op::Delete) => "d",
                };
                let image = |v: &Option<Vec<Value>>, what| -> Result<Av, FormatError> {
                    Ok(match v {
                        Some(v) => Av::Union(1, Box::new(row_record(row, v, what)?)),
                        None => Av::Union(0, Box::new(Av::Null)),
                    })
                };
                let envelope = Av::Record(vec![
                    ("before".into(), image(&row.before, "before")?),
                    ("after".into(), image(&row.after, "after")?),
                    (
                        "source".into(),
                        source_record(
                            rec.source,
                            row.ts_ms,
                            snapshot,
                            &row.table,
                            &row.pos,
                            rec.sequence,
                        ),
                    ),
                    ("op".into(), Av::String(op.into())),
                    (
                        "ts_ms".into(),
                        Av::Union(
                            1,
                            Box::new(Av::Long(i64::try_from(row.ts_ms).unwrap_or(i64::MAX))),
                        ),
                    ),
                ]);
                let key = match (&e.key, row.after.as_ref().or(row.before.as_ref())) {
                    (Some(k), Some(img)) => Some(wire(k, key_record(row, img)?)?),
                    _ => None,
                };
                Ok(Some(Encoded {
                    key,
                    value: wire(&e.value, envelope)?,
                }))
            }
            // The change of a table's definition reaches consumers as the new version of its
            // subject, registered with the table's next row.
            Change::Ddl(_) => Ok(None),
            Change::Heartbeat { ts_ms, .. } => {
                let cached = self
                    .heartbeat
                    .lock()
                    .ok()
                    .and_then(|h| h.get(topic).cloned());
                let r = match cached {
                    Some(r) => r,
                    None => {
                        let r = Arc::new(
                            self.register(&format!("{topic}-value"), &heartbeat_schema())?,
                        );
                        if let Ok(mut h) = self.heartbeat.lock() {
                            h.insert(topic.to_string(), r.clone());
                        }
                        r
                    }
                };
                let v = Av::Record(vec![(
                    "ts_ms".into(),
                    Av::Long(i64::try_from(ts_ms).unwrap_or(i64::MAX)),
                )]);
                Ok(Some(Encoded {
                    key: None,
                    value: wire(&r, v)?,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sluice_core::TableId;

    /// Hands out ids 1, 2, ... and remembers what was registered.
    #[derive(Default)]
    struct Registry(Mutex<Vec<(String, String)>>);

    impl SchemaRegistrar for Registry {
        fn register(&self, subject: &str, schema: &str) -> Result<u32, FormatError> {
            let mut r = self.0.lock().unwrap();
            if let Some(i) = r.iter().position(|(s, t)| s == subject && t == schema) {
                return Ok(i as u32 + 1);
            }
            r.push((subject.into(), schema.into()));
            Ok(r.len() as u32)
        }
    }

    fn table(nullable_date: bool) -> Arc<TableSchema> {
        let col = |name: &str, ty, nullable| Column {
            name: name.into(),
            ty,
            sql_type: String::new(),
            nullable,
        };
        Arc::new(TableSchema {
            id: TableId::new("shop", "orders"),
            columns: vec![
                col(
                    "id",
                    ColumnType::Integer {
                        bytes: 4,
                        unsigned: false,
                    },
                    false,
                ),
                col("d", ColumnType::Date, nullable_date),
            ],
            primary_key: vec![0],
        })
    }

    fn insert(t: Arc<TableSchema>, date: Value) -> RowChange {
        RowChange {
            op: Op::Insert,
            table: t,
            before: None,
            after: Some(vec![Value::Int(7), date]),
            ts_ms: 1_714_550_400_000,
            txn: "0-1-1".into(),
            seq: 0,
            pos: Position::new("binlog", "mariadb-bin.000001", 4),
        }
    }

    fn record(row: &RowChange) -> Record<'_> {
        static SRC: std::sync::OnceLock<SourceInfo> = std::sync::OnceLock::new();
        Record {
            change: Change::Row(row),
            source: SRC.get_or_init(|| SourceInfo {
                name: "src1".into(),
                db_type: DbType::Mariadb,
                server_id: 1,
            }),
            sequence: Some(3),
            last_in_txn: true,
            txn_number: 1,
            key_change: None,
        }
    }

    #[test]
    fn messages_are_the_wire_format_over_registered_schemas() {
        let reg = Arc::new(Registry::default());
        let avro = Avro::new(reg.clone());
        let row = insert(
            table(true),
            Value::Date {
                year: 2024,
                month: 5,
                day: 1,
            },
        );
        let m = avro
            .encode_message(&record(&row), "shop.orders")
            .unwrap()
            .unwrap();
        let subjects: Vec<String> = reg
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(s, _)| s.clone())
            .collect();
        assert_eq!(subjects, ["shop.orders-value", "shop.orders-key"]);
        assert_eq!(&m.value[..5], &[0, 0, 0, 0, 1]);
        let key = m.key.unwrap();
        assert_eq!(&key[..5], &[0, 0, 0, 0, 2]);
        let schema = Schema::parse_str(&reg.0.lock().unwrap()[0].1).unwrap();
        let v = apache_avro::from_avro_datum(&schema, &mut &m.value[5..], None).unwrap();
        let Av::Record(fields) = v else {
            panic!("not a record")
        };
        let after = &fields[1].1;
        assert_eq!(
            *after,
            Av::Union(
                1,
                Box::new(Av::Record(vec![
                    ("id".into(), Av::Int(7)),
                    ("d".into(), Av::Union(1, Box::new(Av::Date(19844)))),
                ]))
            )
        );
        assert_eq!(fields[3].1, Av::String("c".into()));
        // The same table again: no new registration.
        avro.encode_message(&record(&row), "shop.orders").unwrap();
        assert_eq!(reg.0.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_zero_date_is_null_where_allowed_and_an_error_naming_the_column_where_not() {
        let zero = Value::Date {
            year: 0,
            month: 0,
            day: 0,
        };
        let avro = Avro::new(Arc::new(Registry::default()));
        let row = insert(table(true), zero.clone());
        assert!(avro.encode_message(&record(&row), "t").is_ok());
        let row = insert(table(false), zero);
        let e = avro.encode_message(&record(&row), "t").unwrap_err();
        assert!(!e.transient);
        assert!(e.reason.contains("column d (NOT NULL)"), "{e}");
    }
}
