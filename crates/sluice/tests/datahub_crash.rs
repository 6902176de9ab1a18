//! No loss into DataHub through crashes, outages and shard changes: `kill -9` cycles under a
//! concurrent writer, the server stopped for a minute, a shard split while the project runs,
//! and puts that partly fail. Each test has a DataHub-protocol server of its own
//! (`TempDatahub`), so stopping it disturbs no other.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::datahub::*;
use common::*;
use sluice_testkit::TempDatahub;

fn writer(
    db: String,
    max: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<u64, mysql_async::Error>> {
    mixed_writer(db, max, u64::from(std::process::id()) * 31, stop)
}

/// A project of `db` into the test's own server; `extra` goes to the destination section.
fn project_into(dh: &TempDatahub, dir: &Path, db: &str, start: &str, extra: &str) -> PathBuf {
    std::env::set_var("SLUICE_TEST_DATAHUB_KEY", "sluice-secret");
    datahub_project(dir, db, db, &dh.endpoint(), start, extra)
}

/// The TUPLE state of `db.t` rebuilt from the server equals the source, per-key order kept.
async fn tuple_equal(
    dh: &TempDatahub,
    c: &mut mysql_async::Conn,
    db: &str,
    what: &str,
) -> TestResult {
    let recs = datahub_read(&dh.endpoint(), &format!("{db}_t"))?;
    let got = rebuild_tuple_replayed(&recs, "id", &["id", "v", "amt"])?;
    assert_eq!(got, source_rows(c, db).await?, "{what}");
    Ok(())
}

/// The OMS BLOB records of `db.t`: every source sequence delivered, per-shard order kept, and
/// the state equal to the source.
async fn oms_equal(
    dh: &TempDatahub,
    c: &mut mysql_async::Conn,
    db: &str,
    what: &str,
) -> TestResult {
    let recs = datahub_read(&dh.endpoint(), &format!("{db}_t"))?;
    let msgs = blob_messages(&recs)?;
    let rebuilt = check_sequences_and_rebuild(&msgs)?;
    assert_eq!(rebuilt, source_rows(c, db).await?, "{what}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9_cycles_under_a_concurrent_writer_lose_nothing() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let dh = TempDatahub::start()?;
    let db = unique_name("dhcrash");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    let file = project_into(&dh, &dir, &db, &start, "shard_count: 3");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 150, stop.clone());
    kill_9_cycles(&file, 20, 7 + u64::from(std::process::id())).await?;
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 200, "the writer made only {written} changes");
    run_until_caught_up(&file)?;
    tuple_equal(&dh, &mut c, &db, "state rebuilt after 20 kill -9 cycles").await?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_for_a_minute_during_incremental_sync_loses_nothing() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut dh = TempDatahub::start()?;
    let db = unique_name("dhout");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    let file = project_into(
        &dh,
        &dir,
        &db,
        &start,
        "record_type: blob\nformat: oms\nshard_count: 3",
    );
    let mut child = spawn_run(&file)?;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 300, stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    dh.stop();
    let said = retrying_said(&file, 60).await;
    dh.resume()?;
    let written = stop_writer_and_catch_up(
        &mut child,
        &stop,
        w,
        &file,
        3,
        "the run must wait the outage out, not end",
    )
    .await?;
    assert!(
        said.contains("retrying") && said.contains("datahub"),
        "status during the outage: {said}"
    );
    assert!(written > 500, "the writer made only {written} changes");
    oms_equal(&dh, &mut c, &db, "state rebuilt across the outage").await?;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

/// Splits shard `shard` of `topic` through the SDK; returns the shards it lists afterwards.
fn split(endpoint: &str, topic: &str, shard: &str) -> Result<String, Box<dyn std::error::Error>> {
    let script = "import sys\nfrom datahub import DataHub\n\
        dh = DataHub('sluice', 'sluice-secret', sys.argv[1])\n\
        dh.split_shard(sys.argv[2], sys.argv[3], sys.argv[4])\n\
        print([(s.shard_id, str(s.state)) for s in dh.list_shard(sys.argv[2], sys.argv[3]).shards])\n";
    let out = Command::new(repo_root().join("dev/services"))
        .args([
            "datahub-python",
            "-c",
            script,
            endpoint,
            DH_PROJECT,
            topic,
            shard,
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!("split failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_split_while_the_project_runs_loses_nothing_and_keeps_key_order() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let dh = TempDatahub::start()?;
    let db = unique_name("dhsplit");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    let file = project_into(&dh, &dir, &db, &start, "shard_count: 2");
    let mut child = spawn_run(&file)?;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 200, stop.clone());
    // Split once records flow.
    let deadline = Instant::now() + Duration::from_secs(60);
    while datahub_read(&dh.endpoint(), &format!("{db}_t")).map_or(0, |r| r.len()) < 50 {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            return Err(format!("no records reached the topic: {}", status_of(&file)).into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let shards = split(&dh.endpoint(), &format!("{db}_t"), "0")?;
    assert!(shards.contains("('2', 'ShardState.ACTIVE')"), "{shards}");
    let written = stop_writer_and_catch_up(
        &mut child,
        &stop,
        w,
        &file,
        4,
        "the run must carry on after the split",
    )
    .await?;
    assert!(written > 300, "the writer made only {written} changes");
    let recs = datahub_read(&dh.endpoint(), &format!("{db}_t"))?;
    // Records went to the split shard's children after the split.
    let children = recs
        .iter()
        .filter(|r| r["shard"] == "2" || r["shard"] == "3")
        .count();
    assert!(children > 20, "{children} records in the new shards");
    // The batches in flight when the closed shard refused are put again (at least once), so
    // records may repeat; each key's last record is its newest.
    let got = rebuild_tuple_replayed(&recs, "id", &["id", "v", "amt"])?;
    assert_eq!(
        got,
        source_rows(&mut c, &db).await?,
        "state rebuilt across the split"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_that_partly_fail_are_completed_in_order() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    // Every 13th record a put carries fails, as a partial failure.
    let dh = TempDatahub::start_with_env(&[("SLUICE_DATAHUB_FAIL_EVERY", "13")])?;
    let db = unique_name("dhpart");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 100, stop.clone());
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    assert!(w.await?? > 200);
    for (protocol, kind) in [("protobuf", "record_type: blob\nformat: oms"), ("json", "")] {
        let sub = format!("{db}_{protocol}");
        let file = project_into(
            &dh,
            &temp_dir(&sub),
            &db,
            &start,
            &format!("{kind}\nprotocol: {protocol}\nshard_count: 2\ntopic: \"{{db}}_{{table}}_{protocol}\"\nbatch_records: 50"),
        );
        let yaml = std::fs::read_to_string(&file)?
            .replace(&format!("name: {db}"), &format!("name: {sub}"));
        std::fs::write(&file, yaml)?;
        run_until_caught_up(&file)?;
        let recs = datahub_read(&dh.endpoint(), &format!("{db}_t_{protocol}"))?;
        let want = source_rows(&mut c, &db).await?;
        if kind.is_empty() {
            assert_eq!(
                rebuild_tuple(&recs, "id", &["id", "v", "amt"])?,
                want,
                "{protocol}"
            );
        } else {
            assert_eq!(
                check_sequences_and_rebuild(&blob_messages(&recs)?)?,
                want,
                "{protocol}"
            );
        }
    }
    let _ = dir;
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
