//! Several batches in flight at the database destination, against the harness's real MariaDB:
//! each writer applies its shares in send order without waiting for the other writers, so
//! one writer held up on a batch does not hold the others; a writer whose share failed applies
//! nothing after it, and the batches sent again land whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use sluice_core::sink::{DeliveryItem, Sink};
use sluice_core::{
    Column, ColumnType, Event, Op, Position, RowChange, TableId, TableSchema, Value,
};
use sluice_sink_mysql::MysqlSink;
use sluice_testkit::{ensure_up, unique_name, Service};

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEYS: i64 = 40;

fn table(db: &str) -> Arc<TableSchema> {
    let column = |name: &str, ty: ColumnType, sql_type: &str| Column {
        name: name.into(),
        ty,
        sql_type: sql_type.into(),
        nullable: false,
    };
    Arc::new(TableSchema {
        id: TableId::new(db, "t"),
        columns: vec![
            column(
                "id",
                ColumnType::Integer {
                    bytes: 8,
                    unsigned: false,
                },
                "bigint",
            ),
            column(
                "v",
                ColumnType::Text {
                    charset: "utf8mb4".into(),
                },
                "varchar(20)",
            ),
        ],
        primary_key: vec![0],
    })
}

/// Round 0 inserts every key with `v` = "r0"; round r > 0 updates every key from "r{r-1}" to
/// "r{r}". Sequences continue from `sequence`.
fn round(t: &Arc<TableSchema>, r: usize, sequence: &mut u64) -> Vec<DeliveryItem> {
    (1..=KEYS)
        .map(|k| {
            *sequence += 1;
            let image = |r: usize| vec![Value::Int(k), Value::Text(format!("r{r}"))];
            DeliveryItem {
                event: Event::Row(RowChange {
                    op: if r == 0 { Op::Insert } else { Op::Update },
                    table: t.clone(),
                    before: (r > 0).then(|| image(r - 1)),
                    after: Some(image(r)),
                    ts_ms: 0,
                    txn: sequence.to_string(),
                    seq: 0,
                    pos: Position::new("binlog", "mariadb-bin.000001", 1000 + *sequence),
                }),
                snapshot: false,
                sequence: Some(*sequence),
                txn_number: *sequence,
                last_in_txn: true,
                key_change: None,
            }
        })
        .collect()
}

fn sink(project: &str) -> Result<MysqlSink, Box<dyn std::error::Error>> {
    Ok(common::sink(project, 3)?)
}

async fn conn() -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(mysql_async::Opts::from_url(&common::url())?).await
}

/// A database of its own named after `prefix` with an empty table `t`, a session, and `t`'s
/// schema.
async fn fresh(
    prefix: &str,
) -> Result<(String, mysql_async::Conn, Arc<TableSchema>), Box<dyn std::error::Error>> {
    ensure_up(&[Service::Mariadb]);
    let u = unique_name(prefix);
    let mut c = conn().await?;
    c.query_drop(format!(
        "CREATE DATABASE {u}; CREATE TABLE {u}.t (id BIGINT PRIMARY KEY, v VARCHAR(20) NOT NULL)"
    ))
    .await?;
    let t = table(&u);
    Ok((u, c, t))
}

/// Removes what a test made: its database and its project's checkpoint rows.
async fn drop_all(c: &mut mysql_async::Conn, u: &str) -> TestResult {
    c.query_drop(format!(
        "DROP DATABASE {u}; DELETE FROM sluice.sluice_checkpoint WHERE project = '{u}'"
    ))
    .await?;
    Ok(())
}

/// Rows `(id, v)` in key order.
async fn rows(
    c: &mut mysql_async::Conn,
    db: &str,
) -> Result<Vec<(i64, String)>, mysql_async::Error> {
    c.query(format!("SELECT id, v FROM {db}.t ORDER BY id"))
        .await
}

fn want(r: usize) -> Vec<(i64, String)> {
    (1..=KEYS).map(|k| (k, format!("r{r}"))).collect()
}

/// Many batches of the same keys in flight: every key ends at its last change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_flight_keep_the_order_of_each_key() -> TestResult {
    let (u, mut c, t) = fresh("inflight").await?;
    let mut sequence = 0;
    let batches: Vec<Vec<DeliveryItem>> = (0..12).map(|r| round(&t, r, &mut sequence)).collect();
    let project = u.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut k = sink(&project).map_err(|e| e.to_string())?;
        k.start_afresh().map_err(|e| e.to_string())?;
        // Four in flight at a time, as the pipeline keeps them.
        let mut tickets = std::collections::VecDeque::new();
        for (i, b) in batches.iter().enumerate() {
            if tickets.len() == 4 {
                let (t, j): (u64, usize) = tickets.pop_front().ok_or("none")?;
                k.wait(t, &batches[j]).map_err(|e| e.to_string())?;
            }
            tickets.push_back((k.send(b).map_err(|e| e.to_string())?, i));
        }
        for (t, j) in tickets {
            k.wait(t, &batches[j]).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await?;
    outcome?;
    assert_eq!(
        rows(&mut c, &u).await?,
        want(11),
        "every key at its last change"
    );
    let marks: Vec<(u32, u64)> = c
        .query(format!(
            "SELECT writer, sequence FROM sluice.sluice_checkpoint WHERE project = '{u}' ORDER BY writer"
        ))
        .await?;
    let last_round = sequence - KEYS as u64;
    assert!(
        marks.len() == 3 && marks.iter().all(|(_, s)| *s > last_round && *s <= sequence),
        "every writer recorded a change of the last batch as the last it applied: {marks:?}"
    );
    drop_all(&mut c, &u).await
}

/// One writer is held on the first batch (another session locks one of its rows) while three
/// batches are in flight: the other writers apply all three meanwhile. The held writer's
/// connection is then lost: that batch and the ones after it fail, nothing after the failure
/// is applied for that writer, and when the batches are sent again every key lands at its last
/// change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_writer_does_not_hold_the_others_and_its_lost_batches_land_when_sent_again(
) -> TestResult {
    let (u, mut c, t) = fresh("inflhold").await?;
    let mut sequence = 0;
    let first = round(&t, 0, &mut sequence);
    let later: Vec<Vec<DeliveryItem>> = (1..=3).map(|r| round(&t, r, &mut sequence)).collect();
    let project = u.clone();
    let mut k = tokio::task::spawn_blocking(move || -> Result<MysqlSink, String> {
        let mut k = sink(&project).map_err(|e| e.to_string())?;
        k.start_afresh().map_err(|e| e.to_string())?;
        k.deliver(&first).map_err(|e| e.to_string())?;
        Ok(k)
    })
    .await??;
    // Key 7 is locked by another session.
    let mut holder = conn().await?;
    holder
        .query_drop(format!(
            "START TRANSACTION; SELECT * FROM {u}.t WHERE id = 7 FOR UPDATE"
        ))
        .await?;
    let batches = later.clone();
    let sent = tokio::task::spawn_blocking(move || -> Result<(MysqlSink, Vec<u64>), String> {
        let tickets = batches
            .iter()
            .map(|b| k.send(b).map_err(|e| e.to_string()))
            .collect::<Result<Vec<u64>, String>>()?;
        Ok((k, tickets))
    });
    // The writer of key 7 waits for the lock; the others go on to the third batch.
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        let waiting: Option<u64> = c
            .query_first(format!(
                "SELECT id FROM information_schema.processlist \
                 WHERE info LIKE 'INSERT INTO `{u}`.%'"
            ))
            .await?;
        let ahead: i64 = c
            .query_first(format!("SELECT COUNT(*) FROM {u}.t WHERE v = 'r3'"))
            .await?
            .unwrap_or(0);
        if let (Some(id), true) = (waiting, ahead > 0) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "a writer waiting for key 7 ({waiting:?}) while others applied the third batch ({ahead} rows)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stuck: String = c
        .query_first(format!("SELECT v FROM {u}.t WHERE id = 7"))
        .await?
        .ok_or("no row 7")?;
    assert_eq!(stuck, "r0", "key 7 waits at its first change");
    c.query_drop(format!("KILL CONNECTION {waiting}")).await?;
    holder.query_drop("ROLLBACK").await?;
    let (mut k, tickets) = sent.await??;
    let batches = later.clone();
    let (k_back, outcomes) = tokio::task::spawn_blocking(move || {
        let outcomes: Vec<bool> = tickets
            .iter()
            .zip(&batches)
            .map(|(t, b)| k.wait(*t, b).is_ok())
            .collect();
        (k, outcomes)
    })
    .await?;
    k = k_back;
    assert!(!outcomes[0], "the batch of the lost writer fails");
    let after: Vec<(i64, String)> = rows(&mut c, &u).await?;
    let seven = after.iter().find(|(id, _)| *id == 7).ok_or("no row 7")?;
    assert_eq!(
        seven.1, "r0",
        "nothing after the failure is applied for that writer"
    );
    // Sent again, oldest first, as the pipeline does after a failure.
    let batches = later.clone();
    let again = tokio::task::spawn_blocking(move || -> Result<(), String> {
        for b in &batches {
            let t = k.send(b).map_err(|e| e.to_string())?;
            k.wait(t, b).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await?;
    again?;
    assert_eq!(
        rows(&mut c, &u).await?,
        want(3),
        "every key at its last change"
    );
    drop_all(&mut c, &u).await
}
