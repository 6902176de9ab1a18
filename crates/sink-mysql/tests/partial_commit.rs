//! A batch whose writers did not all commit (a crash, or a failure of one writer, between their
//! commits) against the harness's real MariaDB: the writers that did not commit must apply their
//! share when the batch comes again. The destination's checkpoint rows are all that tells them
//! apart after a restart.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use sluice_core::sink::{DeliveryItem, Sink};
use sluice_core::{
    Column, ColumnType, Event, Op, Position, RowChange, TableId, TableSchema, Value,
};
use sluice_sink_mysql::MysqlSink;
use sluice_testkit::{ensure_up, unique_name, Service};

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn batch(db: &str, keys: i64) -> Vec<DeliveryItem> {
    let table = Arc::new(TableSchema {
        id: TableId::new(db, "t"),
        columns: vec![
            Column {
                name: "id".into(),
                ty: ColumnType::Integer {
                    bytes: 8,
                    unsigned: false,
                },
                sql_type: "bigint".into(),
                nullable: false,
            },
            Column {
                name: "v".into(),
                ty: ColumnType::Text {
                    charset: "utf8mb4".into(),
                },
                sql_type: "varchar(20)".into(),
                nullable: true,
            },
        ],
        primary_key: vec![0],
    });
    (1..=keys)
        .map(|k| {
            let pos = Position::new("binlog", "mariadb-bin.000001", 1000 + k as u64);
            DeliveryItem {
                event: Event::Row(RowChange {
                    op: Op::Insert,
                    table: table.clone(),
                    before: None,
                    after: Some(vec![Value::Int(k), Value::Text(format!("v{k}"))]),
                    ts_ms: 0,
                    txn: k.to_string(),
                    seq: 0,
                    pos,
                }),
                snapshot: false,
                sequence: Some(k as u64),
                txn_number: k as u64,
                last_in_txn: true,
                key_change: None,
            }
        })
        .collect()
}

fn sink(project: &str) -> Result<MysqlSink, Box<dyn std::error::Error>> {
    Ok(common::sink(project, 3)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_did_not_commit_applies_its_share_after_a_restart() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let u = unique_name("partial");
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&common::url())?).await?;
    c.query_drop(format!("CREATE DATABASE {u}")).await?;
    // One key the destination refuses for now: its writer's share fails, the others commit.
    c.query_drop(format!(
        "CREATE TABLE {u}.t (id BIGINT PRIMARY KEY, v VARCHAR(20), CONSTRAINT no7 CHECK (v <> 'v7'))"
    ))
    .await?;
    let items = batch(&u, 30);
    let first = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), String> {
            let mut k = sink(&u).map_err(|e| e.to_string())?;
            k.start_afresh().map_err(|e| e.to_string())?;
            k.deliver(&items).map_err(|e| e.to_string())
        })
        .join()
    })
    .map_err(|_| "sink thread panicked")?;
    assert!(first.is_err(), "the refused key fails its writer");
    let count = format!("SELECT COUNT(*) FROM {u}.t");
    let committed: i64 = c.query_first(&count).await?.ok_or("no count")?;
    assert!(
        committed > 0 && committed < 29,
        "only some writers committed: {committed} rows"
    );
    // The cause is fixed; the project restarts (a new sink) and the batch comes again.
    c.query_drop(format!("ALTER TABLE {u}.t DROP CONSTRAINT no7"))
        .await?;
    let second = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), String> {
            let mut k = sink(&u).map_err(|e| e.to_string())?;
            k.deliver(&items).map_err(|e| e.to_string())
        })
        .join()
    })
    .map_err(|_| "sink thread panicked")?;
    second?;
    let rows: Vec<(i64, String)> = c
        .query(format!("SELECT id, v FROM {u}.t ORDER BY id"))
        .await?;
    let want: Vec<(i64, String)> = (1..=30).map(|k| (k, format!("v{k}"))).collect();
    assert_eq!(
        rows, want,
        "every key of every writer is at the destination"
    );
    c.query_drop(format!("DROP DATABASE {u}")).await?;
    c.query_drop(format!(
        "DELETE FROM sluice.sluice_checkpoint WHERE project = '{u}'"
    ))
    .await?;
    Ok(())
}
