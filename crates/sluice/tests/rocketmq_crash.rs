//! No loss into RocketMQ through crashes and outages: `kill -9` cycles under a concurrent
//! writer, the broker stopped for a minute during incremental and during full sync. Each test
//! has a name server and broker of its own (`TempRocketmq`), so stopping it disturbs no other.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::rocketmq::rocketmq_project;
use common::*;

/// Every message of `topic` on the name server at `namesrv`, in the consumer shape the Kafka
/// helpers read.
fn consume_at(namesrv: &str, topic: &str) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    common::rocketmq::rocketmq_consume_at(namesrv, topic)
}

/// Writes to `db.t` over ids 1..=max until stopped (see `mixed_writer`).
fn writer(
    db: String,
    max: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<u64, mysql_async::Error>> {
    mixed_writer(db, max, u64::from(std::process::id()) * 17, stop)
}

/// A project into the test's own name server `rmq` (topics created, 3 queues), plus `extra`.
fn temp_project(
    rmq: &sluice_testkit::TempRocketmq,
    dir: &Path,
    name: &str,
    db: &str,
    start: &str,
    extra: &str,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let file = rocketmq_project(
        dir,
        name,
        db,
        "oms",
        start,
        &format!("create_topics: true\nqueues: 3\n{extra}"),
    );
    let yaml = std::fs::read_to_string(&file)?
        .replace(&sluice_testkit::ROCKETMQ_NAMESRV.get(), &rmq.namesrv_addr);
    std::fs::write(&file, yaml)?;
    Ok(file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9_cycles_under_a_concurrent_writer_lose_nothing() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let rmq = sluice_testkit::TempRocketmq::start()?;
    let db = unique_name("rmqcrash");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    let file = temp_project(&rmq, &dir, &db, &db, &start, "")?;

    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 150, stop.clone());
    kill_9_cycles(&file, 20, 11 + u64::from(std::process::id())).await?;
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    assert!(written > 200, "the writer made only {written} changes");
    run_until_caught_up(&file)?;

    let msgs = consume_at(&rmq.namesrv_addr, &format!("{db}_t"))?;
    let rebuilt = check_sequences_and_rebuild(&msgs)?;
    assert_eq!(
        rebuilt,
        source_rows(&mut c, &db).await?,
        "state rebuilt after 20 kill -9 cycles"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

/// Stops the broker for `secs` while `child` runs and the writer writes; returns what `sluice
/// status` said during the outage.
async fn outage(
    rmq: &mut sluice_testkit::TempRocketmq,
    file: &Path,
    secs: u64,
) -> Result<String, Box<dyn std::error::Error>> {
    rmq.stop_broker();
    let said = retrying_said(file, secs).await;
    rmq.resume()?;
    Ok(said)
}

/// A project into a broker of its own, running for 3 s under the writer (ids 1..=300).
struct UnderWriter {
    rmq: sluice_testkit::TempRocketmq,
    db: String,
    c: mysql_async::Conn,
    file: PathBuf,
    child: Running,
    stop: Arc<AtomicBool>,
    writer: tokio::task::JoinHandle<Result<u64, mysql_async::Error>>,
}

async fn under_writer(prefix: &str) -> Result<UnderWriter, Box<dyn std::error::Error>> {
    ensure_up(&[Service::Mariadb]);
    let rmq = sluice_testkit::TempRocketmq::start()?;
    let db = unique_name(prefix);
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    let file = temp_project(&rmq, &dir, &db, &db, &start, "")?;
    let child = spawn_run(&file)?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = writer(db.clone(), 300, stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(UnderWriter {
        rmq,
        db,
        c,
        file,
        child,
        stop,
        writer,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stopped_for_a_minute_during_incremental_sync_loses_nothing() -> TestResult {
    let UnderWriter {
        mut rmq,
        db,
        mut c,
        file,
        mut child,
        stop,
        writer: w,
    } = under_writer("rmqout").await?;
    let said = outage(&mut rmq, &file, 60).await?;
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
        said.contains("retrying") && said.contains("rocketmq"),
        "status during the outage: {said}"
    );
    assert!(written > 500, "the writer made only {written} changes");
    let msgs = consume_at(&rmq.namesrv_addr, &format!("{db}_t"))?;
    let rebuilt = check_sequences_and_rebuild(&msgs)?;
    assert_eq!(
        rebuilt,
        source_rows(&mut c, &db).await?,
        "state rebuilt across the outage"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stopped_for_a_minute_during_full_sync_loses_nothing() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut rmq = sluice_testkit::TempRocketmq::start()?;
    let db = unique_name("rmqfull");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20), amt DECIMAL(8,2))"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, CONCAT('s', seq), seq / 4 FROM {db}.seq_1_to_30000"
    ))
    .await?;
    let file = temp_project(&rmq, &dir, &db, &db, "now", "")?;
    let yaml = std::fs::read_to_string(&file)?.replace("  start: \"now\"", "  full: true")
        + "options:\n  full_chunk_rows: 500\n  full_readers: 2\n  throttle_rows: 3000\n";
    std::fs::write(&file, yaml)?;
    let mut child = spawn_run(&file)?;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), 35_000, stop.clone());
    // Mid-copy: some rows are at the broker, most are not.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !status_of(&file).contains("full sync") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mid = status_of(&file);
    let said = outage(&mut rmq, &file, 60).await?;
    full_sync_finished(&file, &mut child, 240).await?;
    stop.store(true, Ordering::SeqCst);
    w.await??;
    sigterm(&child)?;
    let _ = child.wait()?;
    run_until_caught_up(&file)?;
    assert!(
        !mid.contains("full sync:  finished"),
        "the outage must come mid-copy: {mid}"
    );
    assert!(
        said.contains("retrying"),
        "status during the outage: {said}"
    );
    let msgs = consume_at(&rmq.namesrv_addr, &format!("{db}_t"))?;
    let rebuilt = rebuild_oms(&msgs)?;
    assert_eq!(
        rebuilt,
        source_rows(&mut c, &db).await?,
        "state rebuilt across the outage"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_credentials_sign_every_request_and_a_wrong_secret_is_refused_without_showing_it(
) -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let rmq = sluice_testkit::TempRocketmq::start_with_auth("sluice", "rmq-Secret-4242")?;
    let db = unique_name("rmqacl");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    write_range(&mut c, &db, 1, 11).await?;
    let dir = temp_dir(&db);
    let with = |secret: &str| -> Result<PathBuf, Box<dyn std::error::Error>> {
        temp_project(
            &rmq,
            &dir,
            &format!("{db}-{}", secret.len()),
            &db,
            &start,
            &format!(
                "access_key: sluice
secret_key: {secret}"
            ),
        )
    };
    // A wrong secret: refused, named as an ACL problem, the secret itself nowhere.
    let err =
        run_until_caught_up(&with("not-Secret-99")?).expect_err("a wrong secret must be refused");
    let err = err.to_string();
    assert!(
        err.contains("Authentication credentials are invalid"),
        "{err}"
    );
    assert!(err.contains("access_key and secret_key"), "{err}");
    assert!(!err.contains("not-Secret-99"), "the secret shows: {err}");
    // No credentials at all: refused too (the broker really checks).
    let file = temp_project(&rmq, &dir, &format!("{db}-none"), &db, &start, "")?;
    assert!(
        run_until_caught_up(&file).is_err(),
        "an unsigned request must be refused"
    );
    // The right secret: every change delivered, and the secret in no output.
    let out = run_until_caught_up(&with("rmq-Secret-4242")?)?;
    assert!(out.contains("delivered 11 changes"), "{out}");
    assert!(!out.contains("rmq-Secret-4242"), "the secret shows: {out}");
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_server_down_for_a_minute_stops_no_delivery() -> TestResult {
    let UnderWriter {
        mut rmq,
        db,
        mut c,
        file,
        mut child,
        stop,
        writer: w,
    } = under_writer("rmqns").await?;
    rmq.stop_namesrv();
    // Routes are known: the broker takes every change while the name server is away, and
    // status never says the project is retrying.
    let retrying = retrying_said(&file, 60).await;
    stop.store(true, Ordering::SeqCst);
    let written = w.await??;
    // The last changes reach the broker too (a graceful stop flushes what was read).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        retrying.is_empty(),
        "delivery stalled without the name server: {retrying}"
    );
    assert!(child.try_wait()?.is_none(), "the run must go on");
    sigterm(&child)?;
    let _ = child.wait()?;
    rmq.resume_namesrv()?;
    assert!(written > 500, "the writer made only {written} changes");
    // The consumer needs the route again: the broker registers with its next heartbeat.
    let deadline = Instant::now() + Duration::from_secs(90);
    let msgs = loop {
        match consume_at(&rmq.namesrv_addr, &format!("{db}_t")) {
            Ok(m) if !m.is_empty() => break m,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_secs(2)).await,
            other => {
                return Err(format!("no route after the name server came back: {other:?}").into())
            }
        }
    };
    let rebuilt = check_sequences_and_rebuild(&msgs)?;
    assert_eq!(
        rebuilt,
        source_rows(&mut c, &db).await?,
        "everything delivered while the name server was down"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
