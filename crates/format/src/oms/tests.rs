//! The encoder writes exactly the bytes of the message built as a JSON value tree (the way it
//! was first written): same fields, same order, same escaping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{json, Map, Value as Json};
use sluice_core::{
    Column, ColumnType, Ddl, KeyChange, Op, Position, RowChange, TableId, TableSchema, Value,
};

use super::Oms;
use crate::text::{value_text, BytesAs};
use crate::{ddl_kind, key_parts, Change, DbType, Format, Record, SourceInfo};

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

/// The message as a value tree (maps sorted by key).
fn reference(extended: bool, rec: &Record<'_>) -> Vec<u8> {
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
            if extended {
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
    serde_json::to_vec(&json!({
        "prevStruct": prev,
        "postStruct": post,
        "allMetaData": meta,
        "recordType": record_type,
    }))
    .expect("serializable")
}

fn table() -> Arc<TableSchema> {
    let col = |name: &str, ty: ColumnType, sql: &str| Column {
        name: name.into(),
        ty,
        sql_type: sql.into(),
        nullable: true,
    };
    let int = ColumnType::Integer {
        bytes: 4,
        unsigned: false,
    };
    let text = ColumnType::Text {
        charset: "utf8mb4".into(),
    };
    Arc::new(TableSchema {
        id: TableId::new("sh\"op", "or\\ders"),
        // Out of name order, with names that sort by byte (`A` < `_x` < `a` < `é`).
        columns: vec![
            col("b_id", int.clone(), "int"),
            col("a", text.clone(), "varchar(20)"),
            col("_x", ColumnType::Binary { pad_to: 0 }, "varbinary(4)"),
            col(
                "A",
                ColumnType::Decimal {
                    precision: 5,
                    scale: 2,
                },
                "decimal(5,2)",
            ),
            col("é\u{1}\"q", text, "text"),
            col("t", ColumnType::Timestamp { fsp: 3 }, "timestamp(3)"),
        ],
        primary_key: vec![0, 1],
    })
}

fn values(id: i64) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text("line\nbreak \"quoted\" \u{7f} ✓".into()),
        Value::Bytes(vec![0, 1, 0xff]),
        Value::Decimal("-1.50".into()),
        Value::Null,
        Value::Timestamp {
            seconds: 1_714_550_400,
            micros: 250_000,
            fsp: 3,
        },
    ]
}

fn row(op: Op, before: Option<Vec<Value>>, after: Option<Vec<Value>>) -> RowChange {
    RowChange {
        op,
        table: table(),
        before,
        after,
        ts_ms: 1_714_550_400_123,
        txn: "0-1-42".into(),
        seq: 7,
        pos: Position::new("binlog", "mariadb-bin.000002", 900),
    }
}

#[test]
fn every_kind_of_message_is_byte_for_byte_the_value_tree() {
    let mut partial = values(3);
    partial[3] = Value::Unavailable;
    let rows = [
        row(Op::Insert, None, Some(values(1))),
        row(Op::Update, Some(values(1)), Some(values(2))),
        row(Op::Delete, Some(values(2)), None),
        row(Op::Update, Some(partial.clone()), Some(partial)),
    ];
    let ddl = |table: Option<TableId>| Ddl {
        db: "shop".into(),
        table,
        to: None,
        sql: "ALTER TABLE t ADD COLUMN \"x\" INT".into(),
        ts_ms: 1_714_550_401_000,
        txn: "0-1-43".into(),
        seq: 1,
        pos: Position::new("binlog", "mariadb-bin.000002", 1200),
    };
    let (with_table, without) = (ddl(Some(TableId::new("shop", "t"))), ddl(None));
    let hb_pos = Position::new("binlog", "mariadb-bin.000002", 1500);
    let mut changes: Vec<(Change<'_>, Option<KeyChange>)> = Vec::new();
    for r in &rows {
        changes.push((Change::Row(r), None));
        changes.push((Change::Snapshot(r), None));
        changes.push((Change::Row(r), Some(KeyChange::Old)));
        changes.push((Change::Row(r), Some(KeyChange::New)));
    }
    changes.push((Change::Ddl(&with_table), None));
    changes.push((Change::Ddl(&without), None));
    changes.push((
        Change::Heartbeat {
            pos: &hb_pos,
            ts_ms: 1_714_550_402_000,
        },
        None,
    ));
    let source = SourceInfo {
        name: "src\"1".into(),
        db_type: DbType::Mariadb,
        server_id: 1,
    };
    for extended in [false, true] {
        for (change, key_change) in &changes {
            for sequence in [None, Some(42)] {
                let rec = Record {
                    change: *change,
                    source: &source,
                    sequence,
                    last_in_txn: true,
                    txn_number: 5,
                    key_change: *key_change,
                };
                let got = Oms { extended }.encode(&rec).unwrap().unwrap();
                let want = reference(extended, &rec);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "extended {extended}, {change:?}"
                );
            }
        }
    }
}
