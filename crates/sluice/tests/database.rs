//! The database destination: MariaDB -> OceanBase seekdb and MariaDB -> MariaDB, schema + full +
//! incremental under a concurrent writer, and `kill -9` cycles; the destination must end equal
//! to the source, row for row.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::dbdest::*;
use common::*;
use sluice_testkit::{MARIADB_SHARD1, OCEANBASE};

async fn seeded(c: &mut mysql_async::Conn, db: &str, rows: u32) -> TestResult {
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL DEFAULT 'none', \
         amt DECIMAL(8,2), note TEXT, KEY v (v))"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('s', seq), seq / 4, IF(seq % 3 = 0, NULL, 'ü') FROM {db}.seq_1_to_{rows}"
    ))
    .await?;
    Ok(())
}

/// Inserts, updates (some moving the primary key), deletes, single and multi-statement
/// transactions, until stopped.
fn writer(
    db: String,
    max: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<u64, mysql_async::Error>> {
    writer_loop(
        MARIADB.get(),
        u64::from(std::process::id()) * 17,
        stop,
        move |rng, n| {
            let id = rng.next(max) + 1;
            match rng.next(6) {
            0 | 1 => format!("REPLACE INTO {db}.t VALUES ({id}, 'w{n}', {n}.25, NULL)"),
            2 => format!("UPDATE {db}.t SET v = 'u{n}', amt = amt + 1 WHERE id = {id}"),
            3 => format!("DELETE FROM {db}.t WHERE id = {id}"),
            4 => format!(
                "UPDATE IGNORE {db}.t SET id = {} WHERE id = {id}",
                rng.next(max) + 1
            ),
            _ => format!(
                "BEGIN; UPDATE {db}.t SET note = 'b{n}' WHERE id = {id}; \
                 INSERT INTO {db}.t VALUES ({}, 'm{n}', 1.00, 'x') ON DUPLICATE KEY UPDATE v = 'm{n}'; COMMIT",
                rng.next(max) + 1
            ),
        }
        },
    )
}

/// The destination copy against the source table: a checksum per range of 500 ids on each
/// side, then row by row in the ranges that differ.
async fn equal_to_source(dest: &str, dest_db: &str, db: &str, what: &str) -> TestResult {
    let rows = table_equal(dest, dest_db, db, "t", what).await?;
    assert!(rows > 1_000, "{what}: only {rows} rows compared");
    Ok(())
}

/// Table `t` of the destination copy against the source's, as [`equal_to_source`] compares;
/// the rows compared.
async fn table_equal(
    dest: &str,
    dest_db: &str,
    db: &str,
    t: &str,
    what: &str,
) -> Result<i64, Box<dyn std::error::Error>> {
    let shape = Shape {
        key: "id",
        columns: &["id", "v", "CAST(amt AS CHAR)", "note"],
        width: 500,
    };
    let c = compare(
        &Side::new(dest, vec![format!("{dest_db}.{t}")]),
        &[Side::new(MARIADB.get(), vec![format!("{db}.{t}")])],
        &shape,
    )
    .await?;
    c.equal(what)?;
    Ok(c.rows)
}

async fn full_and_incremental_into(kind: &str, dest: &str) -> TestResult {
    let (db, dest_db, dir) = names(&format!("dbd{kind}"));
    let mut c = conn().await?;
    seeded(&mut c, &db, 5_000).await?;
    let file = db_project(&dir, &db, &dest_db, kind, dest);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 6_000, stop.clone());
    let mut child = spawn_run(&file)?;
    full_sync_finished(&file, &mut child, 120).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 100, "the writer made only {written} changes");
    sigterm(&child)?;
    assert!(child.wait()?.success());
    run_until_caught_up(&file)?;
    equal_to_source(
        dest,
        &dest_db,
        &db,
        &format!("{kind}: destination vs source"),
    )
    .await?;
    let mut d = dest_conn(dest).await?;
    // The destination holds the checkpoint of every writer that applied changes.
    let writers: Vec<u32> = d
        .exec(
            "SELECT writer FROM sluice.sluice_checkpoint WHERE project = ?",
            (&db,),
        )
        .await?;
    assert!(!writers.is_empty(), "no checkpoint rows at the destination");
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_to_oceanbase_full_and_incremental_equals_the_source() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Oceanbase]);
    full_and_incremental_into("oceanbase", &OCEANBASE.get()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_to_mariadb_full_and_incremental_equals_the_source() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    full_and_incremental_into("mariadb", &MARIADB_SHARD1.get()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9_cycles_into_mariadb_end_equal_to_the_source() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let dest = MARIADB_SHARD1.get();
    let (db, dest_db, dir) = names("dbcrash");
    let mut c = conn().await?;
    seeded(&mut c, &db, 8_000).await?;
    let file = db_project(&dir, &db, &dest_db, "mariadb", &dest);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 9_000, stop.clone());
    let mut rng = Lcg(5 + u64::from(std::process::id()));
    let mut saw_full = false;
    for _ in 0..20 {
        saw_full |= !status_of(&file).contains("full sync:  finished");
        let mut child = spawn_run(&file)?;
        tokio::time::sleep(Duration::from_millis(300 + rng.next(1200))).await;
        child.kill()?;
        child.wait()?;
    }
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 200, "the writer made only {written} changes");
    assert!(saw_full, "no kill landed during full sync");
    run_until_caught_up(&file)?;
    equal_to_source(&dest, &dest_db, &db, "after 20 kill -9 cycles").await?;
    let mut d = dest_conn(&dest).await?;
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

/// The whole type matrix through full sync (rows 1-2) and incremental sync (rows 3-4 and an
/// update) into `dest`; every value read back equals the source's, except `skip` columns.
async fn type_matrix_into(kind: &str, dest: &str, skip: &[&str]) -> TestResult {
    let (db, dest_db, dir) = names(&format!("dbt{kind}"));
    let mut c = conn().await?;
    type_table(&mut c, &db, &TYPE_ROWS[..2]).await?;
    let file = db_project(&dir, &db, &dest_db, kind, dest);
    run_until_caught_up(&file)?;
    for row in &TYPE_ROWS[2..] {
        c.query_drop(format!("INSERT INTO {db}.t VALUES {row}"))
            .await?;
    }
    c.query_drop(format!(
        "UPDATE {db}.t SET vc = 'changed ✓', dt6 = '2000-01-01 00:00:00.5', j = '{{\"k\":[1]}}', biu = 42, e = 'a' WHERE id = 1"
    ))
    .await?;
    run_until_caught_up(&file)?;
    let mut d = dest_conn(dest).await?;
    let want = rendered(&mut c, &db, skip).await?;
    let got = rendered(&mut d, &dest_db, skip).await?;
    same_values(kind, &want, &got, TYPE_ROWS.len());
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_type_matrix_round_trips_into_mariadb() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    type_matrix_into("mariadb", &MARIADB_SHARD1.get(), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_type_matrix_round_trips_into_oceanbase_seekdb() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Oceanbase]);
    type_matrix_into("oceanbase", &OCEANBASE.get(), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_and_index_ddl_reaches_oceanbase_and_other_ddl_stops_the_project() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Oceanbase]);
    let (db, dest_db, dir) = names("dbddl");
    let mut c = conn().await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(10) CHARACTER SET latin1)"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('s', seq) FROM {db}.seq_1_to_100"
    ))
    .await?;
    let file = db_project(&dir, &db, &dest_db, "oceanbase", &OCEANBASE.get());
    let yaml = std::fs::read_to_string(&file)?.replace("  ddl: false\n", "");
    std::fs::write(&file, yaml)?;
    run_until_caught_up(&file)?;
    c.query_drop(format!("USE {db}")).await?;
    for sql in [
        "ALTER TABLE t ADD COLUMN w INT NOT NULL DEFAULT 7",
        "INSERT INTO t VALUES (101, 'new', 8)",
        "ALTER TABLE t MODIFY COLUMN v VARCHAR(50) CHARACTER SET latin1",
        "UPDATE t SET v = 'a value longer than ten' WHERE id <= 3",
        "CREATE INDEX iw ON t (w)",
        "ALTER TABLE t ADD COLUMN gone INT",
        "ALTER TABLE t DROP COLUMN gone",
        "DELETE FROM t WHERE id = 50",
        // Table DDL, translated for seekdb (latin1 becomes utf8mb4).
        "CREATE TABLE n (id INT PRIMARY KEY, w VARCHAR(10) CHARACTER SET latin1) DEFAULT CHARSET=latin1",
        "INSERT INTO n VALUES (1, 'é'), (2, 'x')",
        "RENAME TABLE n TO n2",
        "INSERT INTO n2 VALUES (3, 'ü')",
        "TRUNCATE TABLE n2",
        "INSERT INTO n2 VALUES (4, 'ß')",
    ] {
        c.query_drop(sql).await?;
    }
    run_until_caught_up(&file)?;
    let mut d = dest_conn(&OCEANBASE.get()).await?;
    let n2: Vec<(i64, String)> = d
        .query(format!("SELECT id, w FROM {db}.n2 ORDER BY id"))
        .await?;
    assert_eq!(n2, vec![(4, "ß".to_string())], "table DDL at seekdb");
    d.query_drop(format!("DROP DATABASE {db}")).await?;
    let q = |db: &str| format!("SELECT id, v, w FROM {db}.t ORDER BY id");
    let src: Vec<(i64, String, i64)> = c.query(q(&db)).await?;
    let dst: Vec<(i64, String, i64)> = d.query(q(&dest_db)).await?;
    assert_eq!(dst, src);
    let v_type: Option<String> = d
        .exec_first(
            "SELECT CAST(column_type AS CHAR) FROM information_schema.columns WHERE table_schema = ? AND table_name = 't' AND column_name = 'v'",
            (&dest_db,),
        )
        .await?;
    assert_eq!(v_type.as_deref(), Some("varchar(50)"));
    let idx: Option<String> = d
        .exec_first(
            "SELECT CAST(index_name AS CHAR) FROM information_schema.statistics WHERE table_schema = ? AND table_name = 't' AND index_name = 'iw'",
            (&dest_db,),
        )
        .await?;
    assert_eq!(idx.as_deref(), Some("iw"));
    // A replay (no destination rows were lost) applies nothing twice: a second run is quiet.
    run_until_caught_up(&file)?;
    // Anything else stops the project, naming the statement.
    c.query_drop("ALTER TABLE t ADD CONSTRAINT positive CHECK (id > 0)")
        .await?;
    let err = run_until_caught_up(&file)
        .expect_err("a CHECK constraint stops")
        .to_string();
    assert!(
        err.contains("CHECK (id > 0)") && err.contains("options.ddl: false"),
        "{err}"
    );
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

/// A project re-created under the same name (a new data directory) reads from its start again:
/// the destination's checkpoint rows of the earlier run must not make it skip those changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_project_applies_again_what_an_earlier_run_applied() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let dest = MARIADB_SHARD1.get();
    let (db, dest_db, dir) = names("dbre");
    let mut c = conn().await?;
    c.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, \
         v VARCHAR(20) NOT NULL DEFAULT 'none', amt DECIMAL(8,2), note TEXT, KEY v (v))"
    ))
    .await?;
    let (file, offset): (String, u64) = c
        .query_first("SHOW MASTER STATUS")
        .await?
        .map(|r: mysql_async::Row| (r.get(0).unwrap_or_default(), r.get(1).unwrap_or(4)))
        .ok_or("no binlog")?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('s', seq), seq / 4, NULL FROM {db}.seq_1_to_1500; \
         UPDATE {db}.t SET note = 'x' WHERE id % 7 = 0; DELETE FROM {db}.t WHERE id % 11 = 0"
    ))
    .await?;
    let project = db_project(&dir, &db, &dest_db, "mariadb", &dest);
    let yaml = std::fs::read_to_string(&project)?.replace(
        "stages:\n  full: true\n",
        &format!("stages:\n  start: \"{file}:{offset}\"\n"),
    );
    std::fs::write(&project, yaml)?;
    run_until_caught_up(&project)?;
    equal_to_source(&dest, &dest_db, &db, "first run").await?;

    // Start over: a new data directory, the destination table gone, its checkpoint rows kept.
    let mut d = dest_conn(&dest).await?;
    d.query_drop(format!("DROP DATABASE {dest_db}")).await?;
    std::fs::remove_dir_all(dir.join("sluice-data"))?;
    run_until_caught_up(&project)?;
    equal_to_source(&dest, &dest_db, &db, "the re-created project").await?;
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

/// Full sync inserts copied rows without deleting first; keys already at the destination (a
/// chunk copied again after a crash, or rows left there before) must still end as the source's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copied_rows_replace_what_the_destination_already_holds() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let dest = MARIADB_SHARD1.get();
    let (db, dest_db, dir) = names("dbpre");
    let mut c = conn().await?;
    seeded(&mut c, &db, 2_000).await?;
    let mut d = dest_conn(&dest).await?;
    d.query_drop(format!(
        "CREATE DATABASE {dest_db}; CREATE TABLE {dest_db}.t (id INT PRIMARY KEY, \
         v VARCHAR(20) NOT NULL DEFAULT 'none', amt DECIMAL(8,2), note TEXT, KEY v (v)); \
         INSERT INTO {dest_db}.t SELECT seq * 3, 'stale', 0, 'old' FROM {dest_db}.seq_1_to_600"
    ))
    .await?;
    let project = db_project(&dir, &db, &dest_db, "mariadb", &dest);
    run_until_caught_up(&project)?;
    equal_to_source(&dest, &dest_db, &db, "after copying over stale rows").await?;
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

/// Changes are written in place (`INSERT ... ON DUPLICATE KEY UPDATE`) where the destination
/// table's only unique key is the source's key, and as delete-then-insert where it has another
/// unique key (which a row written in place could silently meet instead of its own) or a
/// primary key of other columns. What tells them apart: a column only the destination has keeps
/// its value through an update written in place, and is back to its default after a delete and
/// an insert. Both destinations end equal to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_go_in_place_only_where_no_other_unique_key_can_collide() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let dest = MARIADB_SHARD1.get();
    let (db, dest_db, dir) = names("dbinpl");
    let mut c = conn().await?;
    seeded(&mut c, &db, 2_000).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.u LIKE {db}.t; INSERT INTO {db}.u SELECT * FROM {db}.t; \
         CREATE TABLE {db}.w LIKE {db}.t; INSERT INTO {db}.w SELECT * FROM {db}.t"
    ))
    .await?;
    let mut d = dest_conn(&dest).await?;
    let columns = "id INT, v VARCHAR(20) NOT NULL DEFAULT 'none', amt DECIMAL(8,2), note TEXT, \
                   mine VARCHAR(10) NOT NULL DEFAULT 'default'";
    d.query_drop(format!(
        "CREATE DATABASE {dest_db}; \
         CREATE TABLE {dest_db}.t ({columns}, PRIMARY KEY (id), KEY v (v)); \
         CREATE TABLE {dest_db}.u ({columns}, PRIMARY KEY (id), UNIQUE KEY amt (amt, id)); \
         CREATE TABLE {dest_db}.w ({columns}, v2 INT NOT NULL AUTO_INCREMENT, PRIMARY KEY (v2), KEY id (id))"
    ))
    .await?;
    let project = db_project(&dir, &db, &dest_db, "mariadb", &dest);
    let yaml = std::fs::read_to_string(&project)?.replace(
        &format!("    {db}.t: {dest_db}.t\n"),
        &format!("    {db}.t: {dest_db}.t\n    {db}.u: {dest_db}.u\n    {db}.w: {dest_db}.w\n"),
    );
    std::fs::write(&project, yaml)?;
    run_until_caught_up(&project)?;
    for t in ["t", "u", "w"] {
        d.query_drop(format!("UPDATE {dest_db}.{t} SET mine = 'kept'"))
            .await?;
        c.query_drop(format!(
            "UPDATE {db}.{t} SET v = CONCAT(v, '-u'), amt = amt + 1 WHERE id % 2 = 0"
        ))
        .await?;
    }
    run_until_caught_up(&project)?;
    for (t, updated_mine) in [("t", "kept"), ("u", "default"), ("w", "default")] {
        let got: Vec<(String, i64)> = d
            .query(format!(
                "SELECT mine, COUNT(*) FROM {dest_db}.{t} WHERE id % 2 = 0 GROUP BY mine"
            ))
            .await?;
        assert_eq!(got, vec![(updated_mine.to_string(), 1000)], "table {t}");
        let untouched: i64 = d
            .query_first(format!(
                "SELECT COUNT(*) FROM {dest_db}.{t} WHERE id % 2 = 1 AND mine = 'kept'"
            ))
            .await?
            .unwrap_or(0);
        assert_eq!(
            untouched, 1000,
            "table {t}: rows not updated keep their value"
        );
        table_equal(&dest, &dest_db, &db, t, &format!("table {t} after updates")).await?;
    }
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

/// An update that keeps its key is written as the columns it changed (one `UPDATE ... CASE`
/// per run of rows) when every row of the run is at the destination: a column the source did
/// not change keeps what the destination holds. A run meeting a row the destination lacks is
/// written as whole images instead, so that row comes back complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_writes_the_columns_it_changed_and_a_missing_row_whole() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let dest = MARIADB_SHARD1.get();
    let (db, dest_db, dir) = names("dbcols");
    let mut c = conn().await?;
    seeded(&mut c, &db, 2_000).await?;
    let project = db_project(&dir, &db, &dest_db, "mariadb", &dest);
    run_until_caught_up(&project)?;
    let mut d = dest_conn(&dest).await?;
    // Drift in a column the coming update leaves alone, on the rows it updates.
    d.query_drop(format!(
        "UPDATE {dest_db}.t SET note = 'drift' WHERE id <= 1000"
    ))
    .await?;
    c.query_drop(format!("UPDATE {db}.t SET amt = amt + 1 WHERE id <= 1000"))
        .await?;
    run_until_caught_up(&project)?;
    let source: Vec<(i64, String)> = c
        .query(format!(
            "SELECT id, amt FROM {db}.t WHERE id <= 1000 ORDER BY id"
        ))
        .await?;
    let got: Vec<(i64, String, Option<String>)> = d
        .query(format!(
            "SELECT id, amt, note FROM {dest_db}.t WHERE id <= 1000 ORDER BY id"
        ))
        .await?;
    let want: Vec<(i64, String, Option<String>)> = source
        .into_iter()
        .map(|(id, amt)| (id, amt, Some("drift".to_string())))
        .collect();
    assert_eq!(
        got, want,
        "every updated row has the new amt and kept the destination's note"
    );
    // Rows the destination lost: the runs holding them are written whole.
    d.query_drop(format!(
        "DELETE FROM {dest_db}.t WHERE id BETWEEN 1401 AND 1450; \
         UPDATE {dest_db}.t SET note = IF(id % 3 = 0, NULL, 'ü') WHERE id <= 1000"
    ))
    .await?;
    c.query_drop(format!("UPDATE {db}.t SET amt = amt + 1 WHERE id > 1000"))
        .await?;
    run_until_caught_up(&project)?;
    equal_to_source(&dest, &dest_db, &db, "after updates over missing rows").await?;
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

/// The destination server crashes (kill -9) during full sync and again during incremental
/// sync, under a concurrent writer, and comes back seconds later: the project waits and
/// retries instead of failing, then goes on, and the destination ends equal to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_crashes_and_returns_loses_nothing() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut dest = sluice_testkit::TempMariadb::start(&[])?;
    let (db, dest_db, dir) = names("dbout");
    let mut c = conn().await?;
    seeded(&mut c, &db, 20_000).await?;
    let file = db_project(&dir, &db, &dest_db, "mariadb", &dest.addr);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 21_000, stop.clone());
    let mut child = spawn_run(&file)?;
    let copied = format!("SELECT COUNT(*) FROM {dest_db}.t");
    // Down during full sync: once some rows are there.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n: Option<i64> = match dest_conn(&dest.addr).await {
            Ok(mut d) => d.query_first(&copied).await.unwrap_or(None),
            Err(_) => None,
        };
        if n.is_some_and(|n| n > 0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nothing copied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let full_during = !status_of(&file).contains("full sync:  finished");
    dest.crash();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        child.try_wait()?.is_none(),
        "the run gave up while the destination was down"
    );
    dest.start_again()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !status_of(&file).contains("full sync:  finished") {
        assert!(
            std::time::Instant::now() < deadline && child.try_wait()?.is_none(),
            "full sync did not finish after the destination came back: {}",
            status_of(&file)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Down during incremental sync.
    tokio::time::sleep(Duration::from_secs(1)).await;
    dest.crash();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = status_of(&file);
    assert!(st.contains("retrying"), "the outage shows in status: {st}");
    assert!(
        child.try_wait()?.is_none(),
        "the run gave up while the destination was down"
    );
    dest.start_again()?;
    // Once it is back, status stops showing the outage.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while status_of(&file).contains("retrying") {
        assert!(
            std::time::Instant::now() < deadline,
            "still retrying: {}",
            status_of(&file)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 200, "the writer made only {written} changes");
    sigterm(&child)?;
    assert!(child.wait()?.success());
    run_until_caught_up(&file)?;
    assert!(full_during, "the first crash came after the full sync");
    equal_to_source(&dest.addr, &dest_db, &db, "after two destination crashes").await?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

/// A second `sluice run` of a project that is running is refused at once, naming the run that
/// holds it; the first run goes on undisturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_a_running_project_is_refused_naming_the_first() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let dest = MARIADB_SHARD1.get();
    let (db, dest_db, dir) = names("dbtwice");
    let mut c = conn().await?;
    seeded(&mut c, &db, 1_000).await?;
    let file = db_project(&dir, &db, &dest_db, "mariadb", &dest);
    let mut first = spawn_run(&file)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !status_of(&file).contains("full sync:  finished") {
        assert!(
            std::time::Instant::now() < deadline && first.try_wait()?.is_none(),
            "the first run did not get going: {}",
            status_of(&file)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t0 = std::time::Instant::now();
    let second = sluice().args(["run", "-f"]).arg(&file).output()?;
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second run ran: {err}");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "refused only after {:?}",
        t0.elapsed()
    );
    assert!(
        err.contains("already running") && err.contains(&format!("pid {}", first.id())),
        "the refusal names the running process: {err}"
    );
    assert!(first.try_wait()?.is_none(), "the first run was disturbed");
    assert!(status_of(&file).contains("state:      Running"));
    // The first run still delivers.
    c.query_drop(format!("UPDATE {db}.t SET v = 'after' WHERE id = 7"))
        .await?;
    let mut d = dest_conn(&dest).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v: Option<String> = d
            .query_first(format!("SELECT v FROM {dest_db}.t WHERE id = 7"))
            .await?;
        if v.as_deref() == Some("after") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered: {v:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sigterm(&first)?;
    assert!(first.wait()?.success());
    drop_both(&mut c, &mut d, &db, &dest_db).await
}

/// With `incremental: false` the project ends by itself once full sync is done, Completed and
/// saying what it copied; the database destination counts the bytes it acknowledged, and so
/// `throttle_bytes` holds it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_alone_completes_and_its_bytes_are_counted_and_throttled() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::MariadbShards]);
    let dest = MARIADB_SHARD1.get();
    let (db, dest_db, dir) = names("dbfullonly");
    let mut c = conn().await?;
    seeded(&mut c, &db, 3_000).await?;
    // What the copy writes, by the sink's measure: every value's length (8 per number).
    let text: Option<u64> = c
        .query_first(format!(
            "SELECT SUM(LENGTH(v) + IFNULL(LENGTH(note), 0) + LENGTH(CAST(amt AS CHAR))) FROM {db}.t"
        ))
        .await?;
    let bytes = text.unwrap_or(0) + 3_000 * 8;
    let limit = bytes / 8;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let file = db_project(&dir, &db, &dest_db, "mariadb", &dest);
    let yaml = std::fs::read_to_string(&file)?
        .replace("  full: true\n", "  full: true\n  incremental: false\n")
        .replace(
            "  heartbeat_secs: 1\n",
            &format!(
                "  heartbeat_secs: 1\n  throttle_bytes: {limit}\n  metrics_listen: \"{metrics}\"\n"
            ),
        );
    std::fs::write(&file, &yaml)?;
    let t0 = std::time::Instant::now();
    let mut child = sluice()
        .args(["run", "-f"])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // While it copies, the writer's byte counter moves.
    let mut counted = 0.0;
    while child.try_wait()?.is_none() && counted == 0.0 {
        if let Ok(page) = http_get(&metrics, "/metrics") {
            counted = page
                .lines()
                .find(|l| l.starts_with("sluice_bytes_total{component=\"writer\""))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output()?;
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(counted > 0.0, "the database destination counted no bytes");
    // Eight seconds' worth of bytes; the chunks still in flight at the end are not waited
    // for, so at least half of that (unthrottled, the copy takes under a second here).
    assert!(
        took > Duration::from_secs(4),
        "{bytes} bytes at {limit} bytes/s took only {took:?}"
    );
    assert!(
        err.contains("completed: copied 3000 rows"),
        "the run says what it copied: {err}"
    );
    let st = status_of(&file);
    assert!(st.contains("state:      Completed"), "{st}");
    equal_to_source(&dest, &dest_db, &db, "after a full sync alone").await?;
    let mut d = dest_conn(&dest).await?;
    drop_both(&mut c, &mut d, &db, &dest_db).await
}
