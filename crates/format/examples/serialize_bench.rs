//! Serializer speed per format on one core: encodes the same sysbench-like row change (id, k,
//! c CHAR(120), pad CHAR(60), a DECIMAL and a TIMESTAMP) N times and prints events/s.
//! Run through `bench/format-serialize`.

use std::sync::Arc;
use std::time::Instant;

use sluice_core::{Column, ColumnType, Op, Position, RowChange, TableId, TableSchema, Value};
use sluice_format::avro::Avro;
use sluice_format::{
    by_name, Change, DbType, Format, FormatError, FormatOptions, Record, SchemaRegistrar,
    SourceInfo, FORMAT_NAMES,
};

/// Hands out ids without a registry.
struct Ids;

impl SchemaRegistrar for Ids {
    fn register(&self, subject: &str, _schema: &str) -> Result<u32, FormatError> {
        Ok(if subject.ends_with("-key") { 2 } else { 1 })
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000);
    let col = |name: &str, ty: ColumnType, sql: &str| Column {
        name: name.into(),
        ty,
        sql_type: sql.into(),
        nullable: false,
    };
    let text = || ColumnType::Text {
        charset: "utf8mb4".into(),
    };
    let table = Arc::new(TableSchema {
        id: TableId::new("sbtest", "sbtest1"),
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
                "k",
                ColumnType::Integer {
                    bytes: 4,
                    unsigned: false,
                },
                "int",
            ),
            col("c", text(), "char(120)"),
            col("pad", text(), "char(60)"),
            col(
                "amt",
                ColumnType::Decimal {
                    precision: 10,
                    scale: 2,
                },
                "decimal(10,2)",
            ),
            col("at", ColumnType::Timestamp { fsp: 0 }, "timestamp"),
        ],
        primary_key: vec![0],
    });
    let image = |i: i64| {
        vec![
            Value::Int(i),
            Value::Int(i * 7 % 100_000),
            Value::Text(format!("{i:011}").repeat(10)),
            Value::Text(format!("{i:011}").repeat(5)),
            Value::Decimal("12345.67".into()),
            Value::Timestamp {
                seconds: 1_714_550_400,
                micros: 0,
                fsp: 0,
            },
        ]
    };
    let row = RowChange {
        op: Op::Update,
        table,
        before: Some(image(42)),
        after: Some(image(43)),
        ts_ms: 1_714_550_400_000,
        txn: "0-1-42".into(),
        seq: 0,
        pos: Position::new("binlog", "mariadb-bin.000001", 4),
    };
    let source = SourceInfo {
        name: "bench".into(),
        db_type: DbType::Mariadb,
        server_id: 1,
    };
    // Avro's schemas go to a registry once per table version; an in-process registrar stands
    // in for it (the figure is the encoding, as for every other format).
    let avro: Box<dyn Format> = Box::new(Avro::new(Arc::new(Ids)));
    let formats = FORMAT_NAMES
        .iter()
        .filter_map(|n| by_name(n, &FormatOptions::default()).map(|f| (*n, f)))
        .chain(std::iter::once(("avro", avro)));
    for (name, f) in formats {
        let mut bytes = 0usize;
        let t0 = Instant::now();
        for i in 0..n {
            let rec = Record {
                change: Change::Row(&row),
                source: &source,
                sequence: Some(i),
                last_in_txn: true,
                txn_number: i,
                key_change: None,
            };
            match f.encode_message(&rec, "sbtest.sbtest1") {
                Ok(Some(b)) => bytes += b.value.len(),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("{name}: {e}");
                    std::process::exit(1);
                }
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "serialize_{}: {:.0} events/s ({} bytes per message)",
            name.replace('-', "_"),
            n as f64 / secs,
            bytes as u64 / n.max(1)
        );
    }
}
