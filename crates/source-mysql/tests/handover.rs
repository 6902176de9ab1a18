//! The hand-over position of a full sync, against the harness's real MariaDB under concurrent
//! writers: every transaction the binlog holds before the position must already be visible to a
//! read that starts after it. Otherwise replaying from the position skips a change the copy did
//! not see, and the destination keeps the old row for good.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sluice_core::{Event, Value};
use sluice_source_mysql::decode::SchemaHistory;
use sluice_source_mysql::live::{self, current_position, LiveConfig, StartAt};
use sluice_testkit::{ensure_up, unique_name, Service, MARIADB};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WRITERS: i64 = 8;

/// A binlog place as (file number, offset).
type At = (u64, u64);
const STRIDE: i64 = 10_000_000;

fn opts() -> Opts {
    Opts::from_url(&format!("mysql://root@{}", MARIADB.get())).expect("harness URL")
}

/// The binlog offset of a position (file, offset) as comparable numbers.
fn key(file: &str, offset: u64) -> At {
    let n = file
        .rsplit_once('.')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0);
    (n, offset)
}

/// Writers insert increasing ids (one transaction each) while positions are taken and the table
/// read; then the binlog says where each insert's transaction began. A transaction that began
/// before a position but was not visible to the read after it is a lost change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_transaction_before_the_handover_position_is_visible_to_the_copy() -> TestResult {
    check(Method::Snapshot).await
}

/// The same with the read-lock method a server without snapshot positions (MySQL) gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_read_lock_position_is_as_safe() -> TestResult {
    check(Method::ReadLock).await
}

/// The snapshot method for a user who may not take the read lock (no RELOAD): at a rotation
/// it waits instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_snapshot_position_without_reload_is_as_safe() -> TestResult {
    check(Method::SnapshotWithoutReload).await
}

#[derive(Clone, Copy)]
enum Method {
    Snapshot,
    SnapshotWithoutReload,
    ReadLock,
}

async fn check(method: Method) -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let db = unique_name("handover");
    let mut conn = Conn::new(opts()).await?;
    conn.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, pad VARCHAR(200))"
    ))
    .await?;
    let (file0, offset0) = current_position(&mut conn).await?;
    // Positions are taken on this connection: as root, or as a user without RELOAD.
    let user = unique_name("snap");
    let mut positions = match method {
        Method::SnapshotWithoutReload => {
            conn.query_drop(format!(
                "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; \
                 GRANT SELECT, REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO '{user}'@'%'"
            ))
            .await?;
            Conn::new(Opts::from_url(&format!(
                "mysql://{user}:pw@{}",
                MARIADB.get()
            ))?)
            .await?
        }
        _ => Conn::new(opts()).await?,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (stop, db) = (stop.clone(), db.clone());
        writers.push(tokio::spawn(async move {
            let mut c = Conn::new(opts()).await?;
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                c.exec_drop(
                    format!("INSERT INTO {db}.t VALUES (?, REPEAT('x', 150))"),
                    (w * STRIDE + n,),
                )
                .await?;
            }
            Ok::<i64, mysql_async::Error>(n)
        }));
    }

    // Binlog rotations, often: MariaDB moves its snapshot position to a new file when a commit
    // group fills the old one, before that group is visible (seen once in CI at a 16 MB
    // rotation). Small files make that happen hundreds of times in the run.
    let size: u64 = conn
        .query_first("SELECT @@GLOBAL.max_binlog_size")
        .await?
        .unwrap_or(16 << 20);
    conn.query_drop("SET GLOBAL max_binlog_size = 65536")
        .await?;

    // (position, per writer the highest id visible to a read that started after it)
    let mut samples: Vec<(At, HashMap<i64, i64>)> = Vec::new();
    let sampled = sample(method, &mut positions, &db, &mut samples).await;
    stop.store(true, Ordering::Relaxed);
    // Restored before anything can fail (the tests that change it run one at a time).
    conn.query_drop(format!("SET GLOBAL max_binlog_size = {size}"))
        .await?;
    sampled?;
    let mut total = 0;
    for w in writers {
        total += w.await??;
    }
    assert!(total > 1000, "the writers wrote only {total} rows");

    // Where each insert's transaction began.
    let cfg = LiveConfig {
        endpoint: sluice_mysql_client::Endpoint::from_opts(opts()),
        server_id: 1_100_000 + (std::process::id() % 1_000_000),
        start: StartAt::FileOffset {
            file: file0,
            offset: offset0,
        },
        heartbeat: Duration::from_secs(1),
        reconnect_for: Duration::from_secs(30),
        precheck_tables: Vec::new(),
    };
    let mut began: Vec<(i64, At)> = Vec::new();
    let mut begin = (0, 0);
    let mut history = SchemaHistory::new();
    let read = live::read(&cfg, &mut history, |e: Event| {
        match &e {
            Event::Begin { pos: p, .. } => begin = key(p.file(), p.offset()),
            Event::Row(r) if r.table.id.db == db => {
                if let Some(Some(Value::Int(id))) = r.after.as_ref().map(|a| a.first().cloned()) {
                    began.push((id, begin));
                }
            }
            _ => {}
        }
        if began.len() as i64 >= total {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(Ok(()))
        }
    });
    tokio::time::timeout(Duration::from_secs(120), read).await??;
    assert_eq!(began.len() as i64, total, "every insert is in the binlog");

    // One connection per writer commits in order, so per writer both the ids and the positions
    // where their transactions began increase: the last id that began before a position must be
    // visible after it.
    let mut per_writer: HashMap<i64, Vec<(i64, At)>> = HashMap::new();
    for (id, at) in &began {
        per_writer.entry(id / STRIDE).or_default().push((*id, *at));
    }
    let mut lost = Vec::new();
    for (pos, visible) in &samples {
        for (w, txns) in &per_writer {
            let before = txns.partition_point(|(_, at)| at < pos);
            if before == 0 {
                continue;
            }
            let (id, at) = txns[before - 1];
            if visible.get(w).is_none_or(|max| id > *max) {
                lost.push((id, at, *pos));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} transactions began before a hand-over position but were not visible to the read \
         after it (id, began at, position): {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    conn.query_drop(format!("DROP DATABASE {db}")).await?;
    if matches!(method, Method::SnapshotWithoutReload) {
        drop(positions);
        conn.query_drop(format!("DROP USER '{user}'@'%'")).await?;
    }
    Ok(())
}

/// Takes hand-over positions for 4 s, each followed by a read of what every writer's rows
/// show: (position, per writer the highest id visible to a read that started after it).
async fn sample(
    method: Method,
    positions: &mut Conn,
    db: &str,
    samples: &mut Vec<(At, HashMap<i64, i64>)>,
) -> TestResult {
    let mut reader = Conn::new(opts()).await?;
    let until = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < until {
        let (file, offset) = match method {
            Method::Snapshot | Method::SnapshotWithoutReload => {
                live::snapshot_position(positions).await?
            }
            Method::ReadLock => live::position_under_read_lock(positions).await?,
        };
        let rows: Vec<(i64, Option<i64>)> = reader
            .query(
                (0..WRITERS)
                    .map(|w| {
                        format!(
                            "SELECT {w}, MAX(id) FROM {db}.t WHERE id BETWEEN {lo} AND {hi}",
                            lo = w * STRIDE,
                            hi = w * STRIDE + STRIDE - 1
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" UNION ALL "),
            )
            .await?;
        samples.push((
            key(&file, offset),
            rows.into_iter()
                .filter_map(|(w, m)| Some((w, m?)))
                .collect(),
        ));
    }
    Ok(())
}

/// Without the RELOAD privilege the read-lock method is refused with the grant that fixes it.
#[tokio::test]
async fn the_read_lock_without_reload_names_the_grant() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let user = unique_name("norl");
    let mut root = Conn::new(opts()).await?;
    root.query_drop(format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; \
         GRANT SELECT, REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO '{user}'@'%'"
    ))
    .await?;
    let url = format!("mysql://{user}:pw@{}", MARIADB.get());
    let mut conn = Conn::new(Opts::from_url(&url)?).await?;
    let err = live::position_under_read_lock(&mut conn)
        .await
        .expect_err("FLUSH TABLES WITH READ LOCK needs RELOAD")
        .to_string();
    assert!(err.contains("GRANT RELOAD ON *.*"), "{err}");
    // The snapshot method needs no such privilege.
    live::snapshot_position(&mut conn).await?;
    drop(conn);
    root.query_drop(format!("DROP USER '{user}'@'%'")).await?;
    Ok(())
}
