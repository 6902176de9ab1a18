//! The database destination: MariaDB -> OceanBase seekdb and MariaDB -> MariaDB, schema + full +
//! incremental under a concurrent writer, and `kill -9` cycles; the destination must end equal
//! to the source, row for row.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use sluice_testkit::{MARIADB_SHARD1, OCEANBASE};

async fn dest_conn(addr: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(mysql_async::Opts::from_url(&format!(
        "mysql://root@{addr}"
    ))?)
    .await
}

/// A project from the source database `db` into `dest_db` at `dest` (type `kind`).
fn db_project(dir: &Path, db: &str, dest_db: &str, kind: &str, dest: &str) -> PathBuf {
    let yaml = format!(
        "name: {db}
source:
  type: mariadb
  url: mysql://root@{mariadb}
  server_id: {sid}
destination:
  type: {kind}
  url: mysql://root@{dest}
  writers: 3
objects:
  include: [\"{db}.*\"]
  rename:
    {db}.t: {dest_db}.t
stages:
  full: true
options:
  ddl: false
  heartbeat_secs: 1
  full_chunk_rows: 400
  full_readers: 2
",
        mariadb = MARIADB.get(),
        sid = 3_100_000 + std::process::id() % 1_000_000,
    );
    let path = dir.join("project.yaml");
    let _ = std::fs::write(&path, yaml);
    path
}

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
    tokio::spawn(async move {
        let mut c = conn().await?;
        let mut rng = Lcg(u64::from(std::process::id()) * 17);
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let id = rng.next(max) + 1;
            let sql = match rng.next(6) {
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
            };
            c.query_drop(sql).await?;
            n += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(n)
    })
}

type Rows = Vec<(i64, String, Option<String>, Option<String>)>;

async fn rows_of(c: &mut mysql_async::Conn, db: &str) -> Result<Rows, mysql_async::Error> {
    c.query(format!(
        "SELECT id, v, CAST(amt AS CHAR), note FROM {db}.t ORDER BY id"
    ))
    .await
}

fn status(file: &Path) -> String {
    sluice()
        .args(["status", "-f"])
        .arg(file)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

async fn full_and_incremental_into(kind: &str, dest: &str) -> TestResult {
    let db = unique_name(&format!("dbd{kind}"));
    let dest_db = format!("{db}_copy");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    seeded(&mut c, &db, 5_000).await?;
    let file = db_project(&dir, &db, &dest_db, kind, dest);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 6_000, stop.clone());
    let mut child = sluice()
        .args(["run", "-f"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !status(&file).contains("full sync:  finished") {
        if std::time::Instant::now() > deadline || child.try_wait()?.is_some() {
            return Err(format!("full sync did not finish: {}", status(&file)).into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 100, "the writer made only {written} changes");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(child.wait()?.success());
    run_until_caught_up(&file)?;
    let mut d = dest_conn(dest).await?;
    assert_eq!(
        rows_of(&mut d, &dest_db).await?,
        rows_of(&mut c, &db).await?,
        "{kind}: destination vs source"
    );
    // The destination holds the checkpoint of every writer that applied changes.
    let writers: Vec<u32> = d
        .exec(
            "SELECT writer FROM sluice.sluice_checkpoint WHERE project = ?",
            (&db,),
        )
        .await?;
    assert!(!writers.is_empty(), "no checkpoint rows at the destination");
    d.query_drop(format!("DROP DATABASE {dest_db}")).await?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
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
    let db = unique_name("dbcrash");
    let dest_db = format!("{db}_copy");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    seeded(&mut c, &db, 8_000).await?;
    let file = db_project(&dir, &db, &dest_db, "mariadb", &dest);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 9_000, stop.clone());
    let mut rng = Lcg(5 + u64::from(std::process::id()));
    let mut saw_full = false;
    for _ in 0..20 {
        saw_full |= !status(&file).contains("full sync:  finished");
        let mut child = sluice()
            .args(["run", "-f"])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        tokio::time::sleep(Duration::from_millis(300 + rng.next(1200))).await;
        child.kill()?;
        child.wait()?;
    }
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 200, "the writer made only {written} changes");
    assert!(saw_full, "no kill landed during full sync");
    run_until_caught_up(&file)?;
    let mut d = dest_conn(&dest).await?;
    assert_eq!(
        rows_of(&mut d, &dest_db).await?,
        rows_of(&mut c, &db).await?,
        "after 20 kill -9 cycles"
    );
    d.query_drop(format!("DROP DATABASE {dest_db}")).await?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
