//! Full sync then incremental sync, under a concurrent writer: the hand-over loses nothing, a
//! `kill -9` at any moment loses nothing, and tables without a key are refused clearly.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// A project with full sync on, small chunks (many progress records) and three readers.
fn full_project(dir: &Path, db: &str, kafka: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let path = project(dir, db, db, "oms", "now", "hash");
    let yaml = std::fs::read_to_string(&path)?
        .replace("  start: \"now\"", "  full: true")
        .replace(
            "  heartbeat_secs: 1",
            "  heartbeat_secs: 1\n  full_chunk_rows: 500\n  full_readers: 3",
        )
        .replace(&KAFKA.get(), kafka);
    std::fs::write(&path, yaml)?;
    Ok(path)
}

/// A table of `rows` rows, written in one statement.
async fn seeded_table(c: &mut mysql_async::Conn, db: &str, rows: u32) -> TestResult {
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20), amt DECIMAL(8,2))"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('s', seq), seq / 4 FROM {db}.seq_1_to_{rows}"
    ))
    .await?;
    Ok(())
}

/// Inserts, updates and deletes over ids 1..=max (beyond the seeded rows too, and rows not
/// yet copied), until stopped; returns how many statements it ran.
fn writer(
    db: String,
    max: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<u64, mysql_async::Error>> {
    mixed_writer(db, max, u64::from(std::process::id()) * 31, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_then_incremental_under_a_concurrent_writer_equals_the_source() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    // A broker of its own, in memory: tens of thousands of records read back at once.
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("full");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    seeded_table(&mut c, &db, 20_000).await?;
    let file = full_project(&dir, &db, &kafka.addr)?;

    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 25_000, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut child = spawn_run(&file)?;
    // Let the writer run through the whole full sync and a little beyond it.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while !status_of(&file).contains("full sync:  finished") {
        assert!(
            std::time::Instant::now() < deadline,
            "full sync did not finish: {}",
            status_of(&file)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 100, "the writer made only {written} changes");
    // SIGTERM: a graceful stop; then a run to the end of what was written.
    sigterm(&child)?;
    assert!(child.wait()?.success(), "sluice run did not stop cleanly");
    run_until_caught_up(&file)?;

    let msgs = consume_from(&kafka.addr, &format!("{db}.t"), 0)?;
    let copied = msgs
        .iter()
        .filter(|m| m["value"]["recordType"] == "ROW")
        .count();
    assert!(copied >= 19_000, "only {copied} rows copied by full sync");
    let rebuilt = check_sequences_and_rebuild(&msgs)?;
    assert_eq!(
        rebuilt,
        source_rows(&mut c, &db).await?,
        "state rebuilt from Kafka"
    );
    let st = status_of(&file);
    assert!(
        st.contains(&format!("full:       {db}.t")) && st.contains("done"),
        "{st}"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9_cycles_during_full_and_incremental_sync_lose_nothing() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("fullcrash");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    seeded_table(&mut c, &db, 30_000).await?;
    let file = full_project(&dir, &db, &kafka.addr)?;

    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 32_000, stop.clone());
    let mut rng = Lcg(11 + u64::from(std::process::id()));
    let mut saw_full = false;
    for _ in 0..20 {
        saw_full |= !status_of(&file).contains("full sync:  finished");
        let mut child = spawn_run(&file)?;
        tokio::time::sleep(Duration::from_millis(300 + rng.next(1200))).await;
        child.kill()?; // SIGKILL: no flush, no checkpoint
        child.wait()?;
    }
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 200, "the writer made only {written} changes");
    assert!(saw_full, "no kill landed during full sync");
    run_until_caught_up(&file)?;
    assert!(status_of(&file).contains("full sync:  finished"));

    let msgs = consume_from(&kafka.addr, &format!("{db}.t"), 0)?;
    let rebuilt = check_sequences_and_rebuild(&msgs)?;
    assert_eq!(
        rebuilt,
        source_rows(&mut c, &db).await?,
        "state rebuilt after 20 kill -9 cycles through full and incremental sync"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

/// A table without a primary key is read by its NOT NULL unique key (found by itself, as
/// InnoDB would pick it); one with no usable key is copied whole in one consistent read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_without_a_primary_key_are_copied_by_a_unique_key_or_whole() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Kafka]);
    let db = unique_name("nokey");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT NOT NULL, v VARCHAR(20), amt DECIMAL(8,2), UNIQUE KEY (id)); \
         CREATE TABLE {db}.bag (id INT, v VARCHAR(20))"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, 'x', 1 FROM {db}.seq_1_to_1200; \
         INSERT INTO {db}.bag SELECT seq % 7, 'x' FROM {db}.seq_1_to_1300"
    ))
    .await?;
    let file = full_project(&dir, &db, &KAFKA.get())?;
    let err = run_until_caught_up(&file)?;
    assert!(
        err.contains(&format!(
            "`{db}`.`bag` has no primary key and no NOT NULL unique key"
        )) && !err.contains(&format!("`{db}`.`t` has no primary key and")),
        "{err}"
    );
    assert_eq!(consume(&format!("{db}.t"), 1200)?.len(), 1200);
    assert_eq!(consume(&format!("{db}.bag"), 1300)?.len(), 1300);
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
