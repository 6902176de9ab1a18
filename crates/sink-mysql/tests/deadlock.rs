//! Writers of one batch that lock each other (a deadlock, not a duplicate key) against the
//! harness's real MariaDB: rows of different keys swap the values of a unique column, so one
//! writer's insert waits for another's delete and the other way round. Retried as it was, in
//! parallel, the batch can collide with itself again and again (a livelock: a full sync was
//! seen retrying `1213 Deadlock found` for minutes without progress); the sink must instead
//! finish the batch on its own, by applying it on one connection in source order; and a writer
//! that failed must release its locks at once (its dropped transaction used to hold them until
//! the connection was next used, so the others waited out the 50 s lock wait timeout; the
//! table here is small, so each writer's DELETE scans it and meets every other writer's rows,
//! as on a destination whose statistics are stale).

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use sluice_core::sink::{DeliveryItem, Sink};
use sluice_core::{
    Column, ColumnType, Event, Op, Position, RowChange, TableId, TableSchema, Value,
};
use sluice_testkit::{ensure_up, unique_name, Service};

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PAIRS: i64 = 30;

fn column(name: &str) -> Column {
    Column {
        name: name.into(),
        ty: ColumnType::Integer {
            bytes: 8,
            unsigned: false,
        },
        sql_type: "bigint".into(),
        nullable: false,
    }
}

/// Round `round` of swaps: in every pair of rows (2p+1, 2p+2) the two exchange their `u`, as
/// a source can (a unique column holds no duplicate after any single row change): the first
/// moves to a free value, the second takes the first's, the first takes the second's. `u` of
/// row `id` is `id * 10` after an even number of rounds.
fn swaps(table: &Arc<TableSchema>, round: i64, sequence: &mut u64) -> Vec<DeliveryItem> {
    let now = |id: i64, r: i64| {
        let partner = if id % 2 == 1 { id + 1 } else { id - 1 };
        if r % 2 == 0 {
            id * 10
        } else {
            partner * 10
        }
    };
    let mut items = Vec::new();
    let mut change = |id: i64, from: i64, to: i64, last: bool| {
        *sequence += 1;
        items.push(DeliveryItem {
            event: Event::Row(RowChange {
                op: Op::Update,
                table: table.clone(),
                before: Some(vec![Value::Int(id), Value::Int(from)]),
                after: Some(vec![Value::Int(id), Value::Int(to)]),
                ts_ms: 0,
                txn: format!("r{round}"),
                seq: *sequence,
                pos: Position::new("binlog", "mariadb-bin.000001", *sequence),
            }),
            snapshot: false,
            sequence: Some(*sequence),
            txn_number: round as u64 + 1,
            last_in_txn: last,
            key_change: None,
        });
    };
    for p in 0..PAIRS {
        let (a, b) = (2 * p + 1, 2 * p + 2);
        let (ua, ub) = (now(a, round), now(b, round));
        change(a, ua, -a, false);
        change(b, ub, ua, false);
        change(a, -a, ub, p == PAIRS - 1);
    }
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_that_deadlock_each_other_still_deliver_the_batch() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let u = unique_name("deadlock");
    let url = common::url();
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url)?).await?;
    c.query_drop(format!("CREATE DATABASE {u}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {u}.t (id BIGINT PRIMARY KEY, u BIGINT NOT NULL, UNIQUE KEY u (u))"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {u}.t SELECT seq, seq * 10 FROM {u}.seq_1_to_{}",
        2 * PAIRS
    ))
    .await?;
    let table = Arc::new(TableSchema {
        id: TableId::new(&u, "t"),
        columns: vec![column("id"), column("u")],
        primary_key: vec![0],
    });
    let rounds = 8;
    let result = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), String> {
            let mut k = common::sink(&u, 4).map_err(|e| e.to_string())?;
            k.start_afresh().map_err(|e| e.to_string())?;
            let mut sequence = 0;
            for round in 0..rounds {
                let items = swaps(&table, round, &mut sequence);
                let t0 = std::time::Instant::now();
                k.deliver(&items)
                    .map_err(|e| format!("round {round}: {e}"))?;
                // Well under InnoDB's 50 s lock wait timeout: no writer waited on another's
                // dead transaction (each round takes well under a second when none does).
                if t0.elapsed() > std::time::Duration::from_secs(20) {
                    return Err(format!("round {round} took {:?}", t0.elapsed()));
                }
            }
            Ok(())
        })
        .join()
    })
    .map_err(|_| "sink thread panicked")?;
    result?;
    let rows: Vec<(i64, i64)> = c
        .query(format!("SELECT id, u FROM {u}.t ORDER BY id"))
        .await?;
    let want: Vec<(i64, i64)> = (1..=2 * PAIRS).map(|id| (id, id * 10)).collect();
    assert_eq!(
        rows, want,
        "after an even number of swaps every row is back"
    );
    c.query_drop(format!("DROP DATABASE {u}")).await?;
    c.query_drop(format!(
        "DELETE FROM sluice.sluice_checkpoint WHERE project = '{u}'"
    ))
    .await?;
    Ok(())
}
