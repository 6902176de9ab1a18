//! Golden tests: each format, each kind of change, the exact message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::{json, Value as Json};
use sluice_core::{Column, ColumnType, Ddl, Op, Position, RowChange, TableId, TableSchema, Value};
use sluice_format::{by_name, Change, DbType, FormatOptions, Record, SourceInfo};

fn table() -> Arc<TableSchema> {
    let col = |name: &str, ty: ColumnType, sql: &str| Column {
        name: name.into(),
        ty,
        sql_type: sql.into(),
        nullable: name != "id",
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
                "int",
            ),
            col(
                "note",
                ColumnType::Text {
                    charset: "utf8mb4".into(),
                },
                "varchar(20)",
            ),
            col(
                "price",
                ColumnType::Decimal {
                    precision: 5,
                    scale: 2,
                },
                "decimal(5,2)",
            ),
            col("raw", ColumnType::Binary { pad_to: 0 }, "varbinary(4)"),
            col("at", ColumnType::Timestamp { fsp: 0 }, "timestamp"),
        ],
        primary_key: vec![0],
    })
}

fn pos(offset: u64) -> Position {
    Position::new("binlog", "mariadb-bin.000002", offset)
}

fn row(op: Op, before: Option<Vec<Value>>, after: Option<Vec<Value>>) -> RowChange {
    RowChange {
        op,
        table: table(),
        before,
        after,
        ts_ms: 1_714_550_400_123,
        txn: "0-1-42".into(),
        seq: 1,
        pos: pos(900),
    }
}

fn img(id: i64, note: Option<&str>, price: &str) -> Vec<Value> {
    vec![
        Value::Int(id),
        note.map_or(Value::Null, |n| Value::Text(n.into())),
        Value::Decimal(price.into()),
        Value::Bytes(vec![0, 1, 0xff]),
        Value::Timestamp {
            seconds: 1_714_550_400,
            micros: 0,
            fsp: 0,
        },
    ]
}

fn source() -> SourceInfo {
    SourceInfo {
        name: "src1".into(),
        db_type: DbType::Mariadb,
        server_id: 1,
    }
}

fn enc(format: &str, change: Change<'_>) -> Option<Json> {
    enc_with(format, change, &FormatOptions::default())
}

fn enc_with(format: &str, change: Change<'_>, opts: &FormatOptions) -> Option<Json> {
    let f = by_name(format, opts).unwrap();
    let src = source();
    let rec = Record {
        change,
        source: &src,
        sequence: matches!(change, Change::Row(_) | Change::Ddl(_)).then_some(77),
        last_in_txn: true,
        txn_number: 5,
        key_change: None,
    };
    f.encode(&rec)
        .unwrap()
        .map(|b| serde_json::from_slice(&b).unwrap())
}

fn insert() -> RowChange {
    row(Op::Insert, None, Some(img(1, Some("hi"), "1.50")))
}
fn update() -> RowChange {
    row(
        Op::Update,
        Some(img(1, Some("hi"), "1.50")),
        Some(img(1, None, "2.00")),
    )
}
fn delete() -> RowChange {
    row(Op::Delete, Some(img(1, None, "2.00")), None)
}
fn ddl() -> Ddl {
    Ddl {
        db: "shop".into(),
        table: Some(TableId::new("shop", "orders")),
        to: None,
        sql: "ALTER TABLE orders ADD COLUMN x INT".into(),
        ts_ms: 1_714_550_401_000,
        txn: "0-1-43".into(),
        seq: 0,
        pos: pos(1200),
    }
}

#[test]
fn oms_default() {
    let meta = |kind: &str, checkpoint: &str| {
        json!({
            "checkpoint": checkpoint, "record_primary_key": "id", "record_primary_value": "1",
            "source_identity": "src1", "dbType": "MARIADB", "storeDataSequence": 77,
            "table_name": "orders", "db": "shop", "timestamp": "1714550400",
            "uniqueId": "0-1-42/1", "transId": "0-1-42", "ddlType": null, "_kind": kind,
        })
    };
    let strip = |mut m: Json| {
        m.as_object_mut().unwrap().remove("_kind");
        m
    };
    let post = json!({"id": "1", "note": "hi", "price": "1.50", "raw": "AAH/", "at": "2024-05-01 08:00:00"});
    let post2 = json!({"id": "1", "note": null, "price": "2.00", "raw": "AAH/", "at": "2024-05-01 08:00:00"});
    let i = insert();
    assert_eq!(
        enc("oms", Change::Row(&i)),
        Some(
            json!({"prevStruct": null, "postStruct": post, "allMetaData": strip(meta("i", "1714550400")), "recordType": "INSERT"})
        )
    );
    let u = update();
    assert_eq!(
        enc("oms", Change::Row(&u)),
        Some(
            json!({"prevStruct": post, "postStruct": post2, "allMetaData": strip(meta("u", "1714550400")), "recordType": "UPDATE"})
        )
    );
    let d = delete();
    assert_eq!(
        enc("oms", Change::Row(&d)),
        Some(
            json!({"prevStruct": post2, "postStruct": null, "allMetaData": strip(meta("d", "1714550400")), "recordType": "DELETE"})
        )
    );
    // Full-sync row: recordType ROW, the checkpoint is the key value, no sequence.
    let mut snap_meta = strip(meta("r", "1"));
    snap_meta
        .as_object_mut()
        .unwrap()
        .remove("storeDataSequence");
    assert_eq!(
        enc("oms", Change::Snapshot(&i)),
        Some(
            json!({"prevStruct": null, "postStruct": post, "allMetaData": snap_meta, "recordType": "ROW"})
        )
    );
    let g = ddl();
    assert_eq!(
        enc("oms", Change::Ddl(&g)),
        Some(
            json!({"prevStruct": null, "postStruct": {"ddl": "ALTER TABLE orders ADD COLUMN x INT"},
            "allMetaData": {"checkpoint": "1714550401", "record_primary_key": "", "record_primary_value": "",
                "source_identity": "src1", "dbType": "MARIADB", "storeDataSequence": 77, "table_name": "orders",
                "db": "shop", "timestamp": "1714550401", "uniqueId": "0-1-43/0", "transId": "0-1-43", "ddlType": "ALTER"},
            "recordType": "DDL"})
        )
    );
    let p = pos(5000);
    assert_eq!(
        enc(
            "oms",
            Change::Heartbeat {
                pos: &p,
                ts_ms: 1_714_550_500_000
            }
        ),
        Some(json!({"prevStruct": null, "postStruct": null,
            "allMetaData": {"checkpoint": "1714550500", "source_identity": "src1", "dbType": "MARIADB", "timestamp": "1714550500"},
            "recordType": "HEARTBEAT"}))
    );
    let ext = enc("oms-extended", Change::Row(&i)).unwrap();
    assert_eq!(
        ext["allMetaData"]["__light_type"],
        json!({"id": "int", "note": "varchar(20)", "price": "decimal(5,2)", "raw": "varbinary(4)", "at": "timestamp"})
    );
}

#[test]
fn multi_column_keys_join_with_u0001() {
    let mut t = (*table()).clone();
    t.primary_key = vec![0, 1];
    let mut r = insert();
    r.table = Arc::new(t);
    let m = enc("oms", Change::Row(&r)).unwrap();
    assert_eq!(m["allMetaData"]["record_primary_key"], "id\u{1}note");
    assert_eq!(m["allMetaData"]["record_primary_value"], "1\u{1}hi");
}

#[test]
fn canal_flat_message() {
    let types = json!({"id": 4, "note": 12, "price": 3, "raw": -3, "at": 93});
    let mysql = json!({"id": "int", "note": "varchar(20)", "price": "decimal(5,2)", "raw": "varbinary(4)", "at": "timestamp"});
    let data = json!({"id": "1", "note": "hi", "price": "1.50", "raw": "\u{0}\u{1}\u{ff}", "at": "2024-05-01 08:00:00"});
    let data2 = json!({"id": "1", "note": null, "price": "2.00", "raw": "\u{0}\u{1}\u{ff}", "at": "2024-05-01 08:00:00"});
    let base = |kind: &str, data: &Json, old: Json| {
        json!({"id": 77, "database": "shop", "table": "orders", "pkNames": ["id"], "isDdl": false, "type": kind,
            "es": 1_714_550_400_123_u64, "ts": 1_714_550_400_123_u64, "sql": "", "sqlType": types, "mysqlType": mysql,
            "data": [data], "old": old})
    };
    let (i, u, d) = (insert(), update(), delete());
    assert_eq!(
        enc("canal", Change::Row(&i)),
        Some(base("INSERT", &data, Json::Null))
    );
    assert_eq!(
        enc("canal", Change::Row(&u)),
        Some(base(
            "UPDATE",
            &data2,
            json!([{"note": "hi", "price": "1.50"}])
        ))
    );
    assert_eq!(
        enc("canal", Change::Row(&d)),
        Some(base("DELETE", &data2, Json::Null))
    );
    let mut snap = base("INSERT", &data, Json::Null);
    snap["id"] = json!(0);
    assert_eq!(enc("canal", Change::Snapshot(&i)), Some(snap));
    let g = ddl();
    assert_eq!(
        enc("canal", Change::Ddl(&g)),
        Some(
            json!({"id": 77, "database": "shop", "table": "orders", "pkNames": null, "isDdl": true, "type": "ALTER",
            "es": 1_714_550_401_000_u64, "ts": 1_714_550_401_000_u64, "sql": "ALTER TABLE orders ADD COLUMN x INT",
            "sqlType": null, "mysqlType": null, "data": null, "old": null})
        )
    );
    let p = pos(1);
    assert_eq!(enc("canal", Change::Heartbeat { pos: &p, ts_ms: 1 }), None);
}

#[test]
fn debezium_envelope() {
    let after = json!({"id": 1, "note": "hi", "price": "1.50", "raw": "AAH/", "at": "2024-05-01T08:00:00Z"});
    let after2 = json!({"id": 1, "note": null, "price": "2.00", "raw": "AAH/", "at": "2024-05-01T08:00:00Z"});
    let source = |snapshot: &str, seq: Json| {
        json!({"version": concat!("sluice-", env!("CARGO_PKG_VERSION")), "connector": "mysql", "name": "src1",
            "ts_ms": 1_714_550_400_123_u64, "snapshot": snapshot, "db": "shop", "sequence": seq, "table": "orders",
            "server_id": 1, "gtid": null, "file": "mariadb-bin.000002", "pos": 900, "row": 0, "thread": null, "query": null})
    };
    let env = |before: Json, after: Json, op: &str, snapshot: &str, seq: Json| json!({"before": before, "after": after, "source": source(snapshot, seq), "op": op, "ts_ms": 1_714_550_400_123_u64});
    let (i, u, d) = (insert(), update(), delete());
    assert_eq!(
        enc("debezium", Change::Row(&i)),
        Some(env(Json::Null, after.clone(), "c", "false", json!("77")))
    );
    assert_eq!(
        enc("debezium", Change::Row(&u)),
        Some(env(
            after.clone(),
            after2.clone(),
            "u",
            "false",
            json!("77")
        ))
    );
    assert_eq!(
        enc("debezium", Change::Row(&d)),
        Some(env(after2.clone(), Json::Null, "d", "false", json!("77")))
    );
    assert_eq!(
        enc("debezium", Change::Snapshot(&i)),
        Some(env(Json::Null, after.clone(), "r", "true", Json::Null))
    );
    let g = ddl();
    let m = enc("debezium", Change::Ddl(&g)).unwrap();
    assert_eq!(m["ddl"], "ALTER TABLE orders ADD COLUMN x INT");
    assert_eq!(m["databaseName"], "shop");
    assert_eq!(m["source"]["pos"], 1200);
    let p = pos(1);
    assert_eq!(
        enc("debezium", Change::Heartbeat { pos: &p, ts_ms: 9 }),
        Some(json!({"ts_ms": 9}))
    );

    // Flattened: the row state plus __op, __db, __table, __deleted.
    let mut flat = after2.as_object().unwrap().clone();
    flat.insert("__op".into(), json!("d"));
    flat.insert("__db".into(), json!("shop"));
    flat.insert("__table".into(), json!("orders"));
    flat.insert("__deleted".into(), json!("true"));
    assert_eq!(
        enc("debezium-flat", Change::Row(&d)),
        Some(Json::Object(flat))
    );

    // With the schema part, and precise decimals.
    let opts = FormatOptions {
        debezium_schema: true,
        debezium_decimal_precise: true,
    };
    let m = enc_with("debezium", Change::Row(&i), &opts).unwrap();
    assert_eq!(m["payload"]["after"]["price"], "AJY=");
    let fields = &m["schema"]["fields"][1]["fields"];
    assert_eq!(fields[2]["name"], "org.apache.kafka.connect.data.Decimal");
    assert_eq!(fields[2]["parameters"]["scale"], "2");
    assert_eq!(fields[4]["name"], "io.debezium.time.ZonedTimestamp");
    assert_eq!(fields[0]["optional"], false);
}

#[test]
fn maxwell() {
    let data =
        json!({"id": 1, "note": "hi", "price": "1.50", "raw": "AAH/", "at": "2024-05-01 08:00:00"});
    let data2 =
        json!({"id": 1, "note": null, "price": "2.00", "raw": "AAH/", "at": "2024-05-01 08:00:00"});
    let base = |kind: &str, data: &Json| {
        json!({"database": "shop", "table": "orders", "type": kind, "ts": 1_714_550_400_u64, "xid": 5, "commit": true,
            "position": "mariadb-bin.000002:900", "server_id": 1, "primary_key_columns": ["id"], "data": data})
    };
    let (i, u, d) = (insert(), update(), delete());
    assert_eq!(enc("maxwell", Change::Row(&i)), Some(base("insert", &data)));
    let mut up = base("update", &data2);
    up["old"] = json!({"note": "hi", "price": "1.50"});
    assert_eq!(enc("maxwell", Change::Row(&u)), Some(up));
    assert_eq!(
        enc("maxwell", Change::Row(&d)),
        Some(base("delete", &data2))
    );
    assert_eq!(
        enc("maxwell", Change::Snapshot(&i)),
        Some(
            json!({"database": "shop", "table": "orders", "type": "bootstrap-insert", "ts": 1_714_550_400_u64,
            "primary_key_columns": ["id"], "data": data})
        )
    );
    let g = ddl();
    assert_eq!(
        enc("maxwell", Change::Ddl(&g)),
        Some(
            json!({"type": "table-alter", "database": "shop", "table": "orders",
            "sql": "ALTER TABLE orders ADD COLUMN x INT", "ts": 1_714_550_401_u64, "position": "mariadb-bin.000002:1200"})
        )
    );
    let p = pos(1);
    assert_eq!(
        enc("maxwell", Change::Heartbeat { pos: &p, ts_ms: 1 }),
        None
    );
}

/// A JSON document keeps its source text in every format: its key order and every digit of its
/// numbers (Maxwell embeds it as JSON, the others carry it as a string).
#[test]
fn json_documents_keep_their_source_text_in_every_format() {
    let doc = r#"{"b": 1, "a": 18446744073709551616, "d": 0.1000000000000000000001}"#;
    let table = Arc::new(TableSchema {
        id: TableId::new("shop", "docs"),
        columns: vec![
            Column {
                name: "id".into(),
                ty: ColumnType::Integer {
                    bytes: 4,
                    unsigned: false,
                },
                sql_type: "int".into(),
                nullable: false,
            },
            Column {
                name: "doc".into(),
                ty: ColumnType::Json,
                sql_type: "json".into(),
                nullable: true,
            },
        ],
        primary_key: vec![0],
    });
    let r = RowChange {
        table,
        ..row(
            Op::Insert,
            None,
            Some(vec![Value::Int(1), Value::Json(doc.into())]),
        )
    };
    let src = source();
    for format in [
        "maxwell",
        "canal",
        "debezium",
        "oms",
        "dataworks",
        "shareplex",
    ] {
        let f = by_name(format, &FormatOptions::default()).unwrap();
        let rec = Record {
            change: Change::Row(&r),
            source: &src,
            sequence: Some(1),
            last_in_txn: true,
            txn_number: 1,
            key_change: None,
        };
        let text = String::from_utf8(f.encode(&rec).unwrap().unwrap()).unwrap();
        let want = if format == "maxwell" {
            doc.to_string()
        } else {
            Json::String(doc.into()).to_string()
        };
        assert!(text.contains(&want), "{format}: {text}");
    }
}

#[test]
fn dataworks() {
    let schema = json!({
        "dataColumn": [{"name": "id", "type": "LONG"}, {"name": "note", "type": "STRING"},
            {"name": "price", "type": "STRING"}, {"name": "raw", "type": "BYTES"},
            {"name": "at", "type": "DATE"}],
        "primaryKey": ["id"],
        "source": {"dbType": "mariadb", "dbName": "shop", "schemaName": null, "tableName": "orders"},
    });
    let cols = |note: Json, price: &str| json!({"dataColumn": {"id": 1, "note": note, "price": price, "raw": "AAH/", "at": 1_714_550_400_000_i64}});
    let ts = json!({"eventTime": 1_714_550_400_123_u64, "systemTime": 1_714_550_400_123_u64,
        "checkpointTime": 1_714_550_400_123_u64});
    let msg = |op: &str, before: Json, after: Json, seq: Json| {
        json!({"schema": schema, "payload": {"before": before, "after": after, "sequenceId": seq,
            "timestamp": ts, "op": op, "ddl": null}, "version": "1.0.0"})
    };
    let (i, u, d) = (insert(), update(), delete());
    assert_eq!(
        enc("dataworks", Change::Row(&i)),
        Some(msg(
            "INSERT",
            Json::Null,
            cols(json!("hi"), "1.50"),
            json!("77")
        ))
    );
    assert_eq!(
        enc("dataworks", Change::Row(&u)),
        Some(msg(
            "UPDATE_AFTER",
            cols(json!("hi"), "1.50"),
            cols(Json::Null, "2.00"),
            json!("77")
        ))
    );
    assert_eq!(
        enc("dataworks", Change::Row(&d)),
        Some(msg(
            "DELETE",
            cols(Json::Null, "2.00"),
            Json::Null,
            json!("77")
        ))
    );
    // Full-sync rows have no sequence.
    assert_eq!(
        enc("dataworks", Change::Snapshot(&i)),
        Some(msg(
            "INSERT",
            Json::Null,
            cols(json!("hi"), "1.50"),
            Json::Null
        ))
    );
    let g = ddl();
    let t = json!({"eventTime": 1_714_550_401_000_u64, "systemTime": 1_714_550_401_000_u64,
        "checkpointTime": 1_714_550_401_000_u64});
    assert_eq!(
        enc("dataworks", Change::Ddl(&g)),
        Some(json!({"schema": {"dataColumn": null, "primaryKey": null,
            "source": {"dbType": "mariadb", "dbName": "shop", "schemaName": null, "tableName": "orders"}},
            "payload": {"before": null, "after": null, "sequenceId": "77", "timestamp": t,
            "op": "ALTER", "ddl": "ALTER TABLE orders ADD COLUMN x INT"}, "version": "1.0.0"}))
    );
    let p = pos(1);
    let one = json!({"eventTime": 5, "systemTime": 5, "checkpointTime": 5});
    assert_eq!(
        enc("dataworks", Change::Heartbeat { pos: &p, ts_ms: 5 }),
        Some(
            json!({"schema": {"dataColumn": null, "primaryKey": null, "source": null},
            "payload": {"before": null, "after": null, "sequenceId": null, "timestamp": one,
            "op": "MHEARTBEAT", "ddl": null}, "version": "1.0.0"})
        )
    );
}

/// Where a DataWorks type cannot hold a value exactly, the column is a STRING (or the value
/// its text): nothing rounded.
#[test]
fn dataworks_keeps_what_its_types_cannot_hold() {
    let col = |name: &str, ty: ColumnType| Column {
        name: name.into(),
        ty,
        sql_type: String::new(),
        nullable: true,
    };
    let table = Arc::new(TableSchema {
        id: TableId::new("shop", "edge"),
        columns: vec![
            col(
                "u64",
                ColumnType::Integer {
                    bytes: 8,
                    unsigned: true,
                },
            ),
            col("dt6", ColumnType::DateTime { fsp: 6 }),
            col("dt3", ColumnType::DateTime { fsp: 3 }),
            col("zero", ColumnType::Date),
            col("b1", ColumnType::Bit { width: 1 }),
            col("b64", ColumnType::Bit { width: 64 }),
            col("f", ColumnType::Double),
        ],
        primary_key: vec![],
    });
    let dt = |fsp, micros| Value::DateTime {
        year: 2024,
        month: 5,
        day: 1,
        hour: 8,
        minute: 0,
        second: 0,
        micros,
        fsp,
    };
    let r = RowChange {
        table,
        ..row(
            Op::Insert,
            None,
            Some(vec![
                Value::UInt(u64::MAX),
                dt(6, 123_456),
                dt(3, 250_000),
                Value::Date {
                    year: 0,
                    month: 0,
                    day: 0,
                },
                Value::Bit { value: 1, width: 1 },
                Value::Bit {
                    value: u64::MAX,
                    width: 64,
                },
                Value::Double(f64::NAN),
            ]),
        )
    };
    let m = enc("dataworks", Change::Row(&r)).unwrap();
    let types: Vec<&str> = m["schema"]["dataColumn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["STRING", "STRING", "DATE", "DATE", "BOOLEAN", "STRING", "DOUBLE"]
    );
    assert_eq!(
        m["payload"]["after"]["dataColumn"],
        json!({"u64": "18446744073709551615", "dt6": "2024-05-01 08:00:00.123456",
            "dt3": 1_714_550_400_250_i64, "zero": "0000-00-00", "b1": true,
            "b64": "18446744073709551615", "f": "NaN"})
    );
}

#[test]
fn shareplex() {
    let meta = |op: &str| {
        json!({"time": "2024-05-01T08:00:00", "op": op, "scn": "mariadb-bin.000002:900",
            "trans": "0-1-42", "seq": 2, "table": "shop.orders"})
    };
    let full = |note: Json, price: &str| json!({"id": "1", "note": note, "price": price, "raw": "AAH/", "at": "2024-05-01 08:00:00"});
    let (i, u, d) = (insert(), update(), delete());
    assert_eq!(
        enc("shareplex", Change::Row(&i)),
        Some(json!({"meta": meta("ins"), "data": full(json!("hi"), "1.50")}))
    );
    assert_eq!(
        enc("shareplex", Change::Row(&u)),
        Some(
            json!({"meta": meta("upd"), "data": {"note": null, "price": "2.00"},
            "key": full(json!("hi"), "1.50")})
        )
    );
    assert_eq!(
        enc("shareplex", Change::Row(&d)),
        Some(json!({"meta": meta("del"), "data": full(Json::Null, "2.00")}))
    );
    assert_eq!(
        enc("shareplex", Change::Snapshot(&i)),
        Some(json!({"meta": meta("ins"), "data": full(json!("hi"), "1.50")}))
    );
    let mut t = ddl();
    assert_eq!(enc("shareplex", Change::Ddl(&t)), None);
    t.sql = "TRUNCATE TABLE orders".into();
    assert_eq!(
        enc("shareplex", Change::Ddl(&t)),
        Some(
            json!({"meta": {"time": "2024-05-01T08:00:01", "op": "truncate",
            "scn": "mariadb-bin.000002:1200", "table": "shop.orders"}})
        )
    );
    let p = pos(1);
    assert_eq!(
        enc("shareplex", Change::Heartbeat { pos: &p, ts_ms: 1 }),
        None
    );
}
